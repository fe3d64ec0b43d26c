//! NATS outages in the logs: a server that refuses the credentials and a
//! stream missing for the subject are each logged once, not once a retry,
//! by the output and the input alike; a consumer deleted while in use is
//! made again where the input left off. A real nats-server on loopback.

use std::time::Duration;

use std::collections::BTreeMap;

use bytes::Bytes;
use wishbone_e2e::nats::{Nats, create_stream, delete_consumer, publish};
use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);
/// How long each outage is watched.
const WATCH: Duration = Duration::from_secs(4);

fn output_to(url: &str, subject: &str) -> String {
    format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         output: {{module: wishbone.output.nats, arguments: {{servers: [\"{url}\"], subject: {subject}, reconnect_initial: 0.05, reconnect_max: 0.5}}}}\n\
         routingtable:\n  - input.outbox -> output.inbox\n"
    )
}

fn input_from(url: &str, stream: &str) -> String {
    format!(
        "modules:\n  input: {{module: wishbone.input.nats, arguments: {{servers: [\"{url}\"], stream: {stream}, consumer: workers}}}}\n  \
         output: {{module: wishbone.output.null}}\n\
         routingtable:\n  - input.outbox -> output.inbox\n"
    )
}

/// `wishbone` with the output of [`output_to`], in a directory of its own.
fn start_output(dir: &std::path::Path, nats: &Nats) -> Wishbone {
    let output_dir = dir.join("output");
    std::fs::create_dir_all(&output_dir).unwrap();
    Wishbone::start(
        &output_dir,
        &output_to(&nats.url(), "events.in"),
        &["--drain-timeout", "1"],
    )
}

/// Lines at WARN or ERROR in the log, before the stop.
fn complaints(log: &str) -> Vec<&str> {
    log.lines()
        .take_while(|line| !line.contains("signal received"))
        .filter(|line| line.contains(" WARN ") || line.contains(" ERROR "))
        .collect()
}

#[test]
fn refused_credentials_are_logged_once() {
    let dir = scratch_dir("nats-refused");
    let nats = Nats::single_with(
        &dir.join("nats"),
        false,
        "authorization { user: a, password: b }",
    );
    let mut output = start_output(&dir, &nats);
    output.output.wait_for("authorization violation", MINUTE);
    std::thread::sleep(WATCH);
    output.signal(libc::SIGTERM);
    output.wait(MINUTE);
    let log = output.output.text();
    let said = complaints(&log);
    assert_eq!(said.len(), 1, "once per outage: {log}");
    assert!(said[0].contains("authorization violation"), "{log}");
    assert_eq!(log.matches("connected module").count(), 0, "{log}");
}

#[test]
fn a_missing_stream_is_logged_once_by_the_output_and_the_input() {
    let dir = scratch_dir("nats-missing-stream");
    let nats = Nats::single(&dir.join("nats"), false);
    create_stream(&nats.url(), "OTHER", "other.>", 1);
    let mut output = start_output(&dir, &nats);
    send(output.input_port("input"), b"a line\n");
    output.output.wait_for("no stream found", MINUTE);
    let input_dir = dir.join("input");
    std::fs::create_dir_all(&input_dir).unwrap();
    let mut input = Wishbone::start(&input_dir, &input_from(&nats.url(), "EVENTS"), &[]);
    input.output.wait_for("stream unavailable", MINUTE);
    std::thread::sleep(WATCH);
    for process in [&mut output, &mut input] {
        process.signal(libc::SIGTERM);
        process.wait(MINUTE);
    }
    let output_log = output.output.text();
    assert_eq!(complaints(&output_log).len(), 1, "{output_log}");
    assert!(
        output_log.matches(" INFO connected").count() <= 1,
        "not a line per retry: {output_log}"
    );
    let input_log = input.output.text();
    assert_eq!(complaints(&input_log).len(), 1, "{input_log}");
    let before_stop = input_log
        .lines()
        .take_while(|line| !line.contains("signal received"))
        .count();
    assert!(before_stop < 10, "no line per retry: {input_log}");
}

#[test]
fn a_consumer_deleted_while_in_use_is_made_again_where_the_input_left_off() {
    const LINES: usize = 20_000;
    let dir = scratch_dir("nats-consumer-deleted");
    let nats = Nats::single(&dir.join("nats"), false);
    create_stream(&nats.url(), "EVENTS", "events.>", 1);
    let payloads: Vec<Bytes> = numbered_lines(LINES)
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(Bytes::copy_from_slice)
        .collect();
    publish(&nats.url(), "events.in", payloads, 256);
    let sink = Sink::start(&dir, "backend");
    let bootstrap = format!(
        "modules:\n  input: {{module: wishbone.input.nats, arguments: {{servers: [\"{}\"], stream: EVENTS, consumer: workers, max_ack_pending: 100}}}}\n  \
         output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {}}}}}\n\
         routingtable:\n  - input.outbox -> output.inbox\n",
        nats.url(),
        sink.port
    );
    let worker_dir = dir.join("worker");
    std::fs::create_dir_all(&worker_dir).unwrap();
    let mut worker = Wishbone::start(&worker_dir, &bootstrap, &[]);
    wait_until(MINUTE, "half the lines at the backend", || {
        sink.line_count() >= LINES / 2
    });
    delete_consumer(&nats.url(), "EVENTS", "workers");
    let made_again = worker.output.wait_for("the consumer is gone", MINUTE);
    eprintln!("{made_again}");
    wait_until(MINUTE, "every line at the backend", || {
        line_numbers(&sink.received())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            == LINES
    });
    assert!(worker.stop().success());
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    for number in line_numbers(&sink.received()) {
        *counts.entry(number).or_default() += 1;
    }
    assert_eq!(counts.len(), LINES, "none lost");
    let duplicates: usize = counts.values().map(|count| count - 1).sum();
    eprintln!("consumer deleted mid-stream: {duplicates} lines twice");
    assert!(
        duplicates <= 200,
        "at most what was in flight (max_ack_pending 100), not the stream again: {duplicates}"
    );
}
