//! NATS outages in the logs: a server that refuses the credentials and a
//! stream missing for the subject are each logged once, not once a retry,
//! by the output and the input alike. A real nats-server on loopback.

use std::time::Duration;

use wishbone_e2e::nats::{Nats, create_stream};
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
    let output_dir = dir.join("output");
    std::fs::create_dir_all(&output_dir).unwrap();
    let mut output = Wishbone::start(
        &output_dir,
        &output_to(&nats.url(), "events.in"),
        &["--drain-timeout", "1"],
    );
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
    let output_dir = dir.join("output");
    std::fs::create_dir_all(&output_dir).unwrap();
    let mut output = Wishbone::start(
        &output_dir,
        &output_to(&nats.url(), "events.in"),
        &["--drain-timeout", "1"],
    );
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
