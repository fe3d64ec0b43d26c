//! NATS JetStream in and out against real nats-server processes on
//! loopback: a 3-node cluster keeps every published line exactly once
//! while a node is killed, and consumers sharing one durable consumer lose
//! nothing when one of them is killed.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use wishbone_e2e::nats::{consumer_state, create_stream, publish, stream_contents, stream_count};
use wishbone_e2e::*;

const THREE_MINUTES: Duration = Duration::from_secs(180);

/// These tests run one at a time: each keeps a disk busy with fsyncs, and
/// two at once on this machine's one disk slow both past their deadlines.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How many times each line number arrived.
fn arrivals<'a>(lines: impl IntoIterator<Item = &'a [u8]>) -> BTreeMap<usize, usize> {
    let mut counts = BTreeMap::new();
    for line in lines {
        for number in line_numbers(line) {
            *counts.entry(number).or_default() += 1;
        }
    }
    counts
}

#[test]
fn a_cluster_keeps_every_line_once_while_a_node_is_killed_and_restarted() {
    let _serial = one_at_a_time();
    let dir = scratch_dir("nats-out");
    let mut nodes = Nats::cluster(&dir);
    create_stream(&nodes[0].url(), "EVENTS", "events.>", 3);
    let servers: Vec<String> = nodes
        .iter()
        .map(|node| format!("\"{}\"", node.url()))
        .collect();
    let bootstrap = format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         output: {{module: wishbone.output.nats, arguments: {{servers: [{}], subject: events.in, timeout: 5, reconnect_initial: 0.05, reconnect_max: 0.5}}}}\n\
         routingtable:\n  - input.outbox -> output.inbox\n",
        servers.join(", ")
    );
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    let input = wishbone.input_port("input");
    const LINES: usize = 1_000_000;
    let sender = std::thread::spawn(move || send(input, &numbered_lines(LINES)));
    let url = nodes[0].url();
    wait_until(THREE_MINUTES, "a third of the lines in the stream", || {
        stream_count(&url, "EVENTS") >= LINES as u64 / 3
    });
    nodes[1].restart_after_kill();
    sender.join().unwrap();
    wait_until(THREE_MINUTES, "every line in the stream", || {
        stream_count(&url, "EVENTS") >= LINES as u64
    });
    let status = wishbone.stop();
    assert!(status.success(), "{status:?}: {}", wishbone.output.text());
    let contents = stream_contents(&nodes[0].url(), "EVENTS");
    let counts = arrivals(contents.iter().map(Bytes::as_ref));
    let missing = (0..LINES).filter(|n| !counts.contains_key(n)).count();
    let twice = counts.values().filter(|count| **count > 1).count();
    eprintln!(
        "the stream holds {} messages: {missing} lines missing, {twice} twice",
        contents.len()
    );
    assert_eq!(
        (missing, twice, contents.len()),
        (0, 0, LINES),
        "every line exactly once"
    );
}

/// Workers: the stream's durable consumer `workers` → round robin → a tcp
/// output per backend.
fn worker(url: &str, backends: [u16; 2]) -> String {
    let mut text = format!(
        "modules:\n  input: {{module: wishbone.input.nats, arguments: {{servers: [\"{url}\"], stream: EVENTS, consumer: workers, ack_wait: 2}}}}\n  \
         roundrobin: {{module: wishbone.flow.roundrobin}}\n"
    );
    for (index, port) in backends.iter().enumerate() {
        text += &format!(
            "  out{index}: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {port}, reconnect_initial: 0.05, reconnect_max: 0.2}}}}\n"
        );
    }
    text += "routingtable:\n  - input.outbox -> roundrobin.inbox\n  - roundrobin.out0 -> out0.inbox\n  - roundrobin.out1 -> out1.inbox\n";
    text
}

fn lines_at(sinks: &[&Sink]) -> usize {
    sinks.iter().map(|sink| sink.line_count()).sum()
}

fn received(sinks: &[&Sink]) -> BTreeMap<usize, usize> {
    let data: Vec<Vec<u8>> = sinks.iter().map(|sink| sink.received()).collect();
    arrivals(data.iter().map(Vec::as_slice))
}

#[test]
fn two_workers_share_a_durable_consumer_and_one_killed_loses_nothing() {
    let _serial = one_at_a_time();
    let dir = scratch_dir("nats-in");
    let nats = Nats::single(&dir.join("nats"), false);
    create_stream(&nats.url(), "EVENTS", "events.>", 1);
    const LINES: usize = 1_000_000;
    let payloads: Vec<Bytes> = numbered_lines(LINES)
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.is_empty())
        .map(Bytes::copy_from_slice)
        .collect();
    publish(&nats.url(), "events.in", payloads, 4096);
    let backends = [Sink::start(&dir, "backend0"), Sink::start(&dir, "backend1")];
    let bootstrap = worker(&nats.url(), [backends[0].port, backends[1].port]);
    let one = dir.join("one");
    let two = dir.join("two");
    std::fs::create_dir_all(&one).unwrap();
    std::fs::create_dir_all(&two).unwrap();
    let mut first = Wishbone::start(&one, &bootstrap, &[]);
    let mut second = Wishbone::start(&two, &bootstrap, &[]);
    let sinks = [&backends[0], &backends[1]];
    wait_until(
        THREE_MINUTES,
        "a third of the messages at the backends",
        || lines_at(&sinks) >= LINES / 3,
    );
    first.signal(libc::SIGKILL);
    first.wait(THREE_MINUTES);
    let deadline = std::time::Instant::now() + THREE_MINUTES;
    while received(&sinks).len() < LINES {
        if std::time::Instant::now() > deadline {
            panic!(
                "{} of {LINES} messages at the backends after {THREE_MINUTES:?}; the consumer: {}; the surviving worker said:\n{}",
                received(&sinks).len(),
                consumer_state(&nats.url(), "EVENTS", "workers"),
                second.output.text()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(second.stop().success());
    let counts = received(&sinks);
    assert_eq!(counts.len(), LINES, "every message at least once");
    let twice: usize = counts.values().map(|count| count - 1).sum();
    eprintln!("one of two workers killed: {LINES} messages arrived, {twice} more than once");
}

/// Bytes the killed backend of the edge-to-workers test reads at a time.
const SINK_READ: usize = 4096;

#[test]
fn edge_to_workers_through_nats_loses_nothing_outside_the_tcp_window() {
    let _serial = one_at_a_time();
    let dir = scratch_dir("nats-topology");
    let nats = Nats::single(&dir.join("nats"), true);
    create_stream(&nats.url(), "EVENTS", "events.>", 1);
    // The killed backend reads at most SINK_READ bytes at a time: what it
    // had read and not yet written when killed is within one read.
    let mut backends = [
        Sink::start(&dir, "backend0"),
        Sink::start_on(
            &dir,
            "backend1",
            0,
            &["--read-size", &SINK_READ.to_string()],
        ),
    ];
    let edge = format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         output: {{module: wishbone.output.nats, arguments: {{servers: [\"{}\"], subject: events.in}}}}\n\
         routingtable:\n  - input.outbox -> output.inbox\n",
        nats.url()
    );
    let edge_dir = dir.join("edge");
    std::fs::create_dir_all(&edge_dir).unwrap();
    let mut edge = Wishbone::start(&edge_dir, &edge, &[]);
    let bootstrap = worker(&nats.url(), [backends[0].port, backends[1].port]);
    let mut workers = Vec::new();
    for name in ["worker0", "worker1"] {
        let worker_dir = dir.join(name);
        std::fs::create_dir_all(&worker_dir).unwrap();
        workers.push(Wishbone::start(&worker_dir, &bootstrap, &[]));
    }
    let input = edge.input_port("input");
    const LINES: usize = 100_000;
    let sender = std::thread::spawn(move || send(input, &numbered_lines(LINES)));
    wait_until(
        THREE_MINUTES,
        "a third of the lines at the backends",
        || backends[0].line_count() + backends[1].line_count() >= LINES / 3,
    );
    // The documented window: what the backend's kernel acknowledged and
    // its program never read, or read and never wrote (one read).
    backends[1].signal(libc::SIGSTOP);
    let unread = settled_unread_bytes(backends[1].port);
    backends[1].kill();
    sender.join().unwrap();
    let window = (unread as usize + SINK_READ) / NUMBERED_LINE_LENGTH + 1;
    let sinks = [&backends[0], &backends[1]];
    let deadline = std::time::Instant::now() + THREE_MINUTES;
    while received(&sinks).len() + window < LINES {
        if std::time::Instant::now() > deadline {
            let counts = received(&sinks);
            let missing: Vec<usize> = (0..LINES).filter(|n| !counts.contains_key(n)).collect();
            panic!(
                "{} of {LINES} lines at the backends after {THREE_MINUTES:?} (window {window}); missing {} from {:?} to {:?}; the stream holds {}; the consumer: {}; the workers said:\n{}\n---\n{}\n--- the edge said:\n{}",
                counts.len(),
                missing.len(),
                missing.first(),
                missing.last(),
                stream_count(&nats.url(), "EVENTS"),
                consumer_state(&nats.url(), "EVENTS", "workers"),
                workers[0].output.text(),
                workers[1].output.text(),
                edge.output.text()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(edge.stop().success());
    for worker in &mut workers {
        assert!(worker.stop().success());
    }
    let counts = received(&sinks);
    let missing = LINES - counts.len();
    let twice: usize = counts.values().map(|count| count - 1).sum();
    eprintln!(
        "a backend killed: {missing} lines missing (its kernel and one read of it held at most {window}), {twice} more than once"
    );
    assert!(
        missing <= window,
        "lost more than the backend's kernel held, and one read of its program"
    );
}

#[test]
fn the_nats_modules_speak_tls_and_refuse_a_server_they_cannot_verify() {
    let _serial = one_at_a_time();
    let dir = scratch_dir("nats-tls");
    wishbone_e2e::tls::certificates(&dir, "a", &["server"]);
    wishbone_e2e::tls::certificates(&dir, "b", &[]);
    let nats = Nats::single_tls(
        &dir.join("nats"),
        &dir.join("a-server.pem"),
        &dir.join("a-server.key"),
    );
    create_stream(&nats.url(), "EVENTS", "events.>", 1);
    let url = format!("nats://localhost:{}", nats.port);
    let edge = |ca: &str| {
        format!(
            "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
             output: {{module: wishbone.output.nats, arguments: {{servers: [\"{url}\"], subject: events.in, reconnect_initial: 0.05, reconnect_max: 0.2, tls: {{ca: \"{}\"}}}}}}\n\
             routingtable:\n  - input.outbox -> output.inbox\n",
            dir.join(ca).display()
        )
    };
    let wrong_dir = dir.join("wrong");
    std::fs::create_dir_all(&wrong_dir).unwrap();
    let mut wrong = Wishbone::start(&wrong_dir, &edge("b-ca.pem"), &["--drain-timeout", "1"]);
    let line = wrong.output.wait_for("peer unavailable", THREE_MINUTES);
    eprintln!("a server it cannot verify: {line}");
    assert!(line.contains("UnknownIssuer"), "{line}");
    wrong.stop();
    const LINES: usize = 10_000;
    let mut publisher = Wishbone::start(&dir, &edge("a-ca.pem"), &[]);
    send(publisher.input_port("input"), &numbered_lines(LINES));
    wait_until(THREE_MINUTES, "every line in the stream", || {
        stream_count(&nats.url(), "EVENTS") >= LINES as u64
    });
    assert!(publisher.stop().success());
    let sink = Sink::start(&dir, "backend");
    let consumer = format!(
        "modules:\n  input: {{module: wishbone.input.nats, arguments: {{servers: [\"{url}\"], stream: EVENTS, consumer: workers, tls: {{ca: \"{}\"}}}}}}\n  \
         output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {}}}}}\n\
         routingtable:\n  - input.outbox -> output.inbox\n",
        dir.join("a-ca.pem").display(),
        sink.port
    );
    let consumer_dir = dir.join("consumer");
    std::fs::create_dir_all(&consumer_dir).unwrap();
    let mut worker = Wishbone::start(&consumer_dir, &consumer, &[]);
    sink.wait_for_lines(LINES, THREE_MINUTES);
    assert!(worker.stop().success());
    assert_eq!(
        sha256(&sink.received()),
        sha256(&numbered_lines(LINES)),
        "in order, once each"
    );
}
