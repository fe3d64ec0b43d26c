//! The HTTP output's `concurrency`, `batch_timeout_ms` and `tls`, against
//! a store in the test and against wishbone's own HTTP input over TLS.

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::Duration;

use wishbone_e2e::store::Store;
use wishbone_e2e::tls::certificates;
use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);

/// A tcp input on a free port before an http output with `arguments`.
fn front(url: &str, arguments: &str) -> String {
    format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         http: {{module: wishbone.output.http, arguments: {{url: \"{url}\", timeout: 2, reconnect_initial: 0.05, reconnect_max: 0.2{arguments}}}}}\n\
         routingtable:\n  - input.outbox -> http.inbox\n"
    )
}

/// How many times each numbered line reached the store.
fn counts(store: &Store) -> std::collections::BTreeMap<usize, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for line in &store.seen.lock().unwrap().accepted {
        for number in line_numbers(line) {
            *counts.entry(number).or_insert(0) += 1;
        }
    }
    counts
}

#[test]
fn concurrency_keeps_requests_in_flight_at_once_and_a_failure_loses_nothing() {
    let dir = scratch_dir("http-concurrency");
    // Each answer takes a while; the 5th request is refused once.
    let store = Store::start(|number, _| {
        std::thread::sleep(Duration::from_millis(20));
        (number == 5).then(|| "503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy".into())
    });
    let url = format!("http://127.0.0.1:{}/", store.port);
    let bootstrap = front(
        &url,
        ", concurrency: 4, batch_max_events: 100, batch_timeout_ms: 0",
    );
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    const LINES: usize = 20_000;
    send(wishbone.input_port("input"), &numbered_lines(LINES));
    wait_until(MINUTE, "every line at the store", || {
        counts(&store).len() >= LINES
    });
    assert!(wishbone.stop().success());
    let counts = counts(&store);
    assert_eq!(counts.len(), LINES);
    let most = store.most_in_flight.load(Ordering::SeqCst);
    assert!((2..=4).contains(&most), "{most} requests at once");
    let duplicates: usize = counts.values().map(|times| times - 1).sum();
    assert!(
        duplicates <= 3 * 100,
        "only the requests after the refused one are sent again: {duplicates}"
    );
    eprintln!("at most {most} requests at once; {duplicates} lines accepted twice");
}

#[test]
fn a_batch_waits_batch_timeout_ms_for_more_events() {
    for (timeout_ms, one_request) in [(3_000, true), (0, false)] {
        let dir = scratch_dir("http-batch-timeout");
        let store = Store::start(|_, _| None);
        let url = format!("http://127.0.0.1:{}/", store.port);
        let bootstrap = front(&url, &format!(", batch_timeout_ms: {timeout_ms}"));
        let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
        let mut client = TcpStream::connect(("127.0.0.1", wishbone.input_port("input"))).unwrap();
        for line in numbered_lines(10).split_inclusive(|byte| *byte == b'\n') {
            client.write_all(line).unwrap();
            std::thread::sleep(Duration::from_millis(30));
        }
        wait_until(MINUTE, "ten lines at the store", || {
            counts(&store).len() == 10
        });
        assert!(wishbone.stop().success());
        let batches = store.seen.lock().unwrap().batches.clone();
        match one_request {
            true => assert_eq!(batches, [10], "one request, {timeout_ms} ms"),
            false => assert!(batches.len() > 1, "sent as they came: {batches:?}"),
        }
    }
}

#[test]
fn https_reaches_the_http_input_over_tls_and_a_wrong_name_is_refused() {
    let dir = scratch_dir("http-tls");
    certificates(&dir, "http", &["store"]);
    let sink = Sink::start(&dir, "sink");
    let middle_dir = dir.join("middle");
    std::fs::create_dir_all(&middle_dir).unwrap();
    let (cert, key, ca) = (
        dir.join("http-store.pem"),
        dir.join("http-store.key"),
        dir.join("http-ca.pem"),
    );
    let middle = format!(
        "modules:\n  input: {{module: wishbone.input.http, arguments: {{address: 127.0.0.1, port: 0, tls: {{cert: {}, key: {}}}}}}}\n  \
         output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {}}}}}\n\
         routingtable:\n  - input.outbox -> output.inbox\n",
        cert.display(),
        key.display(),
        sink.port
    );
    let mut middle = Wishbone::start(&middle_dir, &middle, &[]);
    let port = middle.input_port("input");
    for (server_name, delivered) in [("localhost", true), ("elsewhere", false)] {
        let front_dir = dir.join(format!("front-{server_name}"));
        std::fs::create_dir_all(&front_dir).unwrap();
        let url = format!("https://localhost:{port}/");
        let tls = format!(
            ", tls: {{ca: {}, server_name: {server_name}}}",
            ca.display()
        );
        let mut wishbone =
            Wishbone::start(&front_dir, &front(&url, &tls), &["--drain-timeout", "1"]);
        let before = sink.line_count();
        send(wishbone.input_port("input"), &numbered_lines(5_000));
        if delivered {
            sink.wait_for_lines(before + 5_000, MINUTE);
            assert!(wishbone.stop().success());
        } else {
            wishbone.output.wait_for("TLS handshake failed", MINUTE);
            // What it holds cannot be delivered: the drain ends at its
            // timeout.
            wishbone.stop();
            assert_eq!(
                sink.line_count(),
                before,
                "nothing over a refused handshake"
            );
        }
    }
    assert!(middle.stop().success());
    assert_eq!(line_numbers(&sink.received()).count(), 5_000);
}

/// Posts `body` with `encoding` to the HTTP input on `port`; the status
/// line of the answer.
fn post_encoded(port: u16, encoding: &str, body: &[u8]) -> String {
    use std::io::{BufRead, BufReader};
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!(
        "POST /events HTTP/1.1\r\nHost: x\r\nContent-Encoding: {encoding}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut status = String::new();
    BufReader::new(stream).read_line(&mut status).unwrap();
    status.trim().to_string()
}

#[test]
fn compressed_bodies_go_out_and_come_in_and_an_unknown_encoding_is_refused() {
    let dir = scratch_dir("http-compression");
    let sink = Sink::start(&dir, "sink");
    let http_port = free_port();
    let bootstrap = format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         gzip: {{module: wishbone.output.http, arguments: {{url: \"http://127.0.0.1:{http_port}/events\", compression: gzip}}}}\n  \
         zstd: {{module: wishbone.output.http, arguments: {{url: \"http://127.0.0.1:{http_port}/events\", compression: zstd}}}}\n  \
         fanout: {{module: wishbone.flow.fanout}}\n  \
         http: {{module: wishbone.input.http, arguments: {{address: 127.0.0.1, port: {http_port}, path: /events}}}}\n  \
         output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {}}}}}\n\
         routingtable:\n  - input.outbox -> fanout.inbox\n  - fanout.one -> gzip.inbox\n  - fanout.two -> zstd.inbox\n  \
         - http.outbox -> output.inbox\n",
        sink.port
    );
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    send(wishbone.input_port("input"), &numbered_lines(2000));
    sink.wait_for_lines(4000, Duration::from_secs(60));
    let mut body = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    body.write_all(b"a\nb\n").unwrap();
    let gzipped = body.finish().unwrap();
    assert_eq!(post_encoded(http_port, "gzip", &gzipped), "HTTP/1.1 200 OK");
    assert!(post_encoded(http_port, "br", b"anything").starts_with("HTTP/1.1 415"));
    assert!(post_encoded(http_port, "gzip", b"not gzip").starts_with("HTTP/1.1 400"));
    sink.wait_for_lines(4002, Duration::from_secs(60));
    assert!(wishbone.stop().success());
    let received = sink.received();
    let mut lines = sorted_lines(&received);
    lines.dedup();
    assert_eq!(
        lines.len(),
        2002,
        "2,000 lines twice (gzip and zstd), and a and b"
    );
    assert!(lines.contains(&&b"a\n"[..]) && lines.contains(&&b"b\n"[..]));
}
