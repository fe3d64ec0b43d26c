//! `wishbone.output.http` against a store that misbehaves: a server in the
//! test answers 503 and 429 with Retry-After, resets connections, answers
//! too late, and refuses whole batches that hold a poison line (400, or 500
//! as ClickHouse does). Every line must reach the store or `failed`: the
//! poison lines alone go to `failed`, and nothing else is lost.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use wishbone_e2e::store::Store;
use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);

/// A store whose answer depends on each request's number and its lines.
fn start_store() -> Store {
    Store::start(|number, body| {
        let poison = |marker: &[u8]| {
            body.split(|byte| *byte == b'\n')
                .any(|line| line.starts_with(marker))
        };
        if poison(b"POISON-400") {
            return Some("400 Bad Request\r\nContent-Length: 11\r\n\r\nbad request".into());
        }
        if poison(b"POISON-500") {
            return Some(
                "500 Internal Server Error\r\nContent-Length: 15\r\n\r\nCannot parse it".into(),
            );
        }
        match number {
            3 => Some(
                "503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 4\r\n\r\nbusy".into(),
            ),
            6 => Some(
                "429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 4\r\n\r\nslow".into(),
            ),
            // Gone without a word.
            9 => Some(String::new()),
            12 => {
                // Later than the output waits: it gives up and sends
                // again, so these lines may arrive twice.
                std::thread::sleep(Duration::from_millis(1_500));
                None
            }
            _ => None,
        }
    })
}

/// The lines a sink received, as text, sorted.
fn sorted_text_lines(sink: &Sink) -> Vec<String> {
    let mut lines: Vec<String> = String::from_utf8(sink.received())
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    lines.sort();
    lines
}

#[test]
fn every_line_reaches_the_store_or_failed_and_only_poison_fails() {
    let dir = scratch_dir("http-faults");
    let store = start_store();
    let port = store.port;
    let rejected = Sink::start(&dir, "rejected");
    let bootstrap = format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         store: {{module: wishbone.output.http, arguments: {{url: \"http://127.0.0.1:{port}/insert?table=logs\", batch_max_events: 100, timeout: 1, reconnect_initial: 0.05, reconnect_max: 0.2}}}}\n  \
         rejected: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {}, reconnect_max: 0.2}}}}\n\
         routingtable:\n  - input.outbox -> store.inbox\n  - store.failed -> rejected.inbox\n",
        rejected.port
    );
    let metrics = PlaintextMetrics::start();
    let address = metrics.address();
    let mut wishbone = Wishbone::start(
        &dir,
        &bootstrap,
        &["--graphite", &address, "--frequency", "0.05"],
    );
    const LINES: usize = 3_000;
    let data = numbered_lines(LINES);
    let mut sent = Vec::new();
    for (index, line) in data.split_inclusive(|byte| *byte == b'\n').enumerate() {
        sent.extend_from_slice(line);
        match index {
            700 => sent.extend_from_slice(b"POISON-400 one\n"),
            1_500 => sent.extend_from_slice(b"POISON-500 two\n"),
            2_200 => sent.extend_from_slice(b"POISON-400 three\n"),
            _ => {}
        }
    }
    let input = wishbone.input_port("input");
    send(input, &sent);
    rejected.wait_for_lines(3, MINUTE);
    wait_until(MINUTE, "every line at the store", || {
        let store = store.seen.lock().unwrap();
        let numbers: std::collections::BTreeSet<usize> = store
            .accepted
            .iter()
            .flat_map(|line| line_numbers(line))
            .collect();
        numbers.len() >= LINES
    });
    // The output's own metrics agree with what the store saw: every
    // request counted, and every 2xx (but one that came after the output
    // stopped waiting, when the 12th request held no poison line).
    wait_until(MINUTE, "the metrics to settle", || {
        let seen = store.seen.lock().unwrap();
        let accepted = seen.batches.len() as f64;
        metrics.latest(".module.store.requests") == Some(seen.requests as f64)
            && metrics
                .latest(".module.store.batches")
                .is_some_and(|batches| batches == accepted || batches == accepted - 1.0)
    });
    let retries = metrics.latest(".module.store.retries").unwrap();
    assert!(retries >= 4.0, "{retries} retries");
    assert_eq!(metrics.latest(".module.store.rejected"), Some(3.0));
    assert!(wishbone.stop().success());
    let store = store.seen.lock().unwrap();
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    for line in &store.accepted {
        assert!(
            !line.starts_with(b"POISON"),
            "the store never accepts a poison line"
        );
        for number in line_numbers(line) {
            *counts.entry(number).or_default() += 1;
        }
    }
    assert_eq!(counts.len(), LINES, "every line reached the store");
    let duplicates: usize = counts.values().map(|times| times - 1).sum();
    let failed = sorted_text_lines(&rejected);
    assert_eq!(
        failed,
        ["POISON-400 one", "POISON-400 three", "POISON-500 two"]
    );
    let log = wishbone.output.text();
    assert!(log.contains("the store refused it alone"), "{log}");
    eprintln!(
        "{} requests; {duplicates} lines accepted twice",
        store.requests
    );
}

#[test]
fn clickhouse_frozen_then_killed_mid_stream_holds_every_valid_row() {
    let dir = scratch_dir("http-clickhouse");
    let mut clickhouse = ClickHouse::start(&dir.join("clickhouse"));
    clickhouse.query("CREATE TABLE logs (id UInt64, msg String) ENGINE = MergeTree ORDER BY id");
    let rejected = Sink::start(&dir, "rejected");
    let url = format!(
        "http://127.0.0.1:{}/?query=INSERT%20INTO%20logs%20FORMAT%20JSONEachRow",
        clickhouse.port
    );
    let bootstrap = format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         store: {{module: wishbone.output.http, arguments: {{url: \"{url}\"}}}}\n  \
         rejected: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {}, reconnect_max: 0.2}}}}\n\
         routingtable:\n  - input.outbox -> store.inbox\n  - store.failed -> rejected.inbox\n",
        rejected.port
    );
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    const ROWS: usize = 300_000;
    let poison_at = [40_000, 150_000, 260_000];
    let mut data = Vec::new();
    for id in 0..ROWS {
        data.extend_from_slice(
            format!("{{\"id\":{id},\"msg\":\"row {id} of the test\"}}\n").as_bytes(),
        );
        if let Some(which) = poison_at.iter().position(|at| *at == id) {
            data.extend_from_slice(format!("not json {which}\n").as_bytes());
        }
    }
    let input = wishbone.input_port("input");
    // Ten parts, 300 ms apart, while the store is frozen and killed.
    let sender = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", input)).unwrap();
        let part = data.len() / 10 + 1;
        for chunk in data.chunks(part) {
            stream.write_all(chunk).unwrap();
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    std::thread::sleep(Duration::from_millis(900));
    clickhouse.signal(libc::SIGSTOP);
    std::thread::sleep(Duration::from_secs(2));
    clickhouse.signal(libc::SIGCONT);
    std::thread::sleep(Duration::from_millis(1_000));
    clickhouse.restart_after_kill();
    sender.join().unwrap();
    // Default arguments: isolating a bad row costs no backoff, so 60 s
    // after the last line every valid row is stored and every bad one out.
    let last_line_sent = std::time::Instant::now();
    rejected.wait_for_lines(3, Duration::from_secs(60));
    let left = Duration::from_secs(60).saturating_sub(last_line_sent.elapsed());
    wait_until(left, "every row in ClickHouse", || {
        clickhouse.query("SELECT uniqExact(id) FROM logs").trim() == ROWS.to_string()
    });
    assert!(wishbone.stop().success());
    let counts = clickhouse.query("SELECT count(), uniqExact(id) FROM logs");
    let mut fields = counts
        .split_whitespace()
        .map(|field| field.parse::<usize>().unwrap());
    let (count, unique) = (fields.next().unwrap(), fields.next().unwrap());
    assert_eq!(unique, ROWS);
    let failed = sorted_text_lines(&rejected);
    assert_eq!(failed, ["not json 0", "not json 1", "not json 2"]);
    eprintln!(
        "{ROWS} rows, {} duplicates; everything in place {:?} after the last line",
        count - unique,
        last_line_sent.elapsed()
    );
}

#[test]
fn a_store_that_answers_404_holds_the_events_until_it_is_fixed() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = scratch_dir("http-404");
    let fixed = Arc::new(AtomicBool::new(false));
    let store = Store::start({
        let fixed = fixed.clone();
        move |_, _| match fixed.load(Ordering::SeqCst) {
            true => None,
            false => Some("404 Not Found\r\nContent-Length: 18\r\n\r\nno table\nat line 2".into()),
        }
    });
    let failed = Sink::start(&dir, "failed");
    let bootstrap = format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         store: {{module: wishbone.output.http, arguments: {{url: \"http://127.0.0.1:{}/\", reconnect_max: 0.2}}}}\n  \
         failed: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {}}}}}\n\
         routingtable:\n  - input.outbox -> store.inbox\n  - store.failed -> failed.inbox\n",
        store.port, failed.port
    );
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    send(wishbone.input_port("input"), &numbered_lines(300));
    wait_until(MINUTE, "a few refused requests", || {
        store.seen.lock().unwrap().requests >= 5
    });
    assert_eq!(
        failed.line_count(),
        0,
        "a configuration fault is not poison"
    );
    let logged = wishbone.output.text();
    assert_eq!(
        logged.matches("peer unavailable").count(),
        1,
        "the cause is logged once:\n{logged}"
    );
    assert!(
        logged.contains("no table\\nat line 2"),
        "on one line:\n{logged}"
    );
    fixed.store(true, Ordering::SeqCst);
    wait_until(MINUTE, "every line at the store", || {
        store.seen.lock().unwrap().accepted.len() >= 300
    });
    assert!(wishbone.stop().success());
    assert_eq!(failed.line_count(), 0);
    assert_eq!(store.seen.lock().unwrap().accepted.len(), 300, "each once");
}
