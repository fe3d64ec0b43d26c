//! A NATS server's limits against `wishbone.output.nats`: an event larger
//! than the server's `max_payload` is rejected (to `failed`, or dropped and
//! counted where nothing takes that queue) and the events behind it are
//! stored. A real nats-server on loopback, started with `max_payload: 1024`.

use std::time::Duration;

use wishbone_e2e::nats::{Nats, create_stream, stream_contents};
use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);
const LINES: usize = 300;
/// The line among them that the server cannot take.
const LARGE: usize = 150;

/// 300 numbered lines of 100 bytes, and one of 2,000 at [`LARGE`].
fn lines_with_one_too_large() -> Vec<u8> {
    let mut data = Vec::new();
    for (number, line) in numbered_lines(LINES)
        .split_inclusive(|b| *b == b'\n')
        .enumerate()
    {
        if number == LARGE {
            data.extend_from_slice(&line[..line.len() - 1]);
            data.extend(std::iter::repeat_n(b'x', 1900));
            data.push(b'\n');
        } else {
            data.extend_from_slice(line);
        }
    }
    data
}

/// tcp input → nats output; with `rejects`, its `failed` queue to a tcp
/// output to that port.
fn edge(url: &str, rejects: Option<u16>) -> String {
    let mut bootstrap = format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         output: {{module: wishbone.output.nats, arguments: {{servers: [\"{url}\"], subject: events.in, reconnect_initial: 0.05, reconnect_max: 0.2}}}}\n"
    );
    if let Some(port) = rejects {
        bootstrap += &format!(
            "  rejects: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {port}}}}}\n"
        );
    }
    bootstrap += "routingtable:\n  - input.outbox -> output.inbox\n";
    if rejects.is_some() {
        bootstrap += "  - output.failed -> rejects.inbox\n";
    }
    bootstrap
}

/// The line numbers the stream holds.
fn stored(url: &str) -> Vec<usize> {
    stream_contents(url, "EVENTS")
        .iter()
        .flat_map(|message| line_numbers(message).collect::<Vec<_>>())
        .collect()
}

fn all_but_the_large_one() -> Vec<usize> {
    (0..LINES).filter(|number| *number != LARGE).collect()
}

#[test]
fn an_event_over_max_payload_goes_to_failed_and_the_rest_are_stored() {
    let dir = scratch_dir("nats-max-payload-failed");
    let nats = Nats::single_with(&dir.join("nats"), false, "max_payload: 1024");
    create_stream(&nats.url(), "EVENTS", "events.>", 1);
    let rejects = Sink::start(&dir, "rejects");
    let mut wishbone = Wishbone::start(&dir, &edge(&nats.url(), Some(rejects.port)), &[]);
    send(wishbone.input_port("input"), &lines_with_one_too_large());
    rejects.wait_for_lines(1, MINUTE);
    wait_until(MINUTE, "every other line in the stream", || {
        stored(&nats.url()).len() >= LINES - 1
    });
    assert!(wishbone.stop().success());
    assert_eq!(stored(&nats.url()), all_but_the_large_one());
    let rejected: Vec<usize> = line_numbers(&rejects.received()).collect();
    assert_eq!(rejected, [LARGE]);
    assert_eq!(rejects.byte_count(), 100 + 1900);
    let log = wishbone.output.text();
    assert!(
        log.contains("over the server's max_payload of 1024"),
        "{log}"
    );
    assert!(
        !log.contains("peer unavailable"),
        "never disconnected: {log}"
    );
}

#[test]
fn an_event_over_max_payload_with_nothing_routed_from_failed_is_dropped_and_counted() {
    let dir = scratch_dir("nats-max-payload-dropped");
    let nats = Nats::single_with(&dir.join("nats"), false, "max_payload: 1024");
    create_stream(&nats.url(), "EVENTS", "events.>", 1);
    let mut wishbone = Wishbone::start(&dir, &edge(&nats.url(), None), &[]);
    send(wishbone.input_port("input"), &lines_with_one_too_large());
    wait_until(MINUTE, "every other line in the stream", || {
        stored(&nats.url()).len() >= LINES - 1
    });
    assert!(wishbone.stop().success());
    assert_eq!(stored(&nats.url()), all_but_the_large_one());
    assert_eq!(wishbone.queue_total("output.failed", "dropped_total"), 1);
    assert!(wishbone.output.text().contains("it goes to dropped"));
}
