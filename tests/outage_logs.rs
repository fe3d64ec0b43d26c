//! What an outage looks like in the logs: each change of reason once at
//! WARN, never a repeated line per retry, and no "connected" while a peer
//! accepts connections only to drop them. A tcp output against a port with
//! nothing listening, then a peer that hangs up on every connection, then
//! a real one; real processes on loopback.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);

/// The failures of the output's WARN lines, in order.
fn warned_failures(log: &str) -> Vec<String> {
    log.lines()
        .filter(|line| line.contains(" WARN ") && line.contains("module=output"))
        .map(|line| line.split_once("failure=").map_or("", |(_, rest)| rest))
        .map(|rest| {
            rest.rsplit_once(" held=")
                .map_or(rest, |(failure, _)| failure)
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn each_change_of_reason_is_logged_once_and_a_peer_that_hangs_up_is_never_healthy() {
    let dir = scratch_dir("outage-logs");
    let port = free_port();
    let bootstrap = format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {port}, reconnect_initial: 0.02, reconnect_max: 0.2}}}}\n\
         routingtable:\n  - input.outbox -> output.inbox\n"
    );
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    let input = wishbone.input_port("input");
    send(input, b"first\n");
    wishbone.output.wait_for("Connection refused", MINUTE);
    std::thread::sleep(Duration::from_secs(1));

    // A peer that takes every connection and closes it at once.
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let hanging_up = Arc::new(AtomicBool::new(true));
    let accepting = {
        let hanging_up = hanging_up.clone();
        std::thread::spawn(move || {
            let mut accepted = 0;
            while hanging_up.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((socket, _)) => {
                        accepted += 1;
                        drop(socket);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            accepted
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    hanging_up.store(false, Ordering::Relaxed);
    let hangups = accepting.join().unwrap();
    assert!(
        hangups >= 5,
        "the output kept trying: {hangups} connections"
    );
    let during = wishbone.output.text();

    // (The peer that hung up had the first line: its kernel acknowledged
    // it, which is what delivered means for a tcp output.)
    let sink = Sink::start_on(&dir, "backend", port, &[]);
    send(input, b"second\n");
    wait_until(MINUTE, "the second line at the backend", || {
        sink.received().ends_with(b"second\n")
    });
    wishbone
        .output
        .wait_for(" INFO connected module=output", MINUTE);
    assert!(wishbone.stop().success());

    let failures = warned_failures(&during);
    eprintln!("{hangups} connections hung up on; warnings: {failures:#?}");
    assert!(failures[0].contains("Connection refused"), "{during}");
    assert!(
        failures.len() >= 2,
        "the peer hanging up is a new reason, logged: {during}"
    );
    assert!(
        failures.windows(2).all(|pair| pair[0] != pair[1]),
        "a reason is logged again only after another: {failures:?}"
    );
    assert!(
        failures.len() <= 4 && failures.len() < hangups,
        "a line per reason (refused, reset, closed), not per retry: {failures:?}"
    );
    assert_eq!(
        during.matches(" INFO connected").count(),
        0,
        "a connection dropped at once is not reported healthy: {during}"
    );
}
