//! A jq condition that would never end, or would allocate without end,
//! beside a plain path in the same process: the condition is stopped per
//! event by its budget and counted; the plain path, the Prometheus page
//! and the stop signals keep working. Run with the suite's placement of
//! modules (every core, or `WISHBONE_THREADS=1`).

use std::time::{Duration, Instant};

use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);

/// A filter running `condition` from `busy_input` to `busy`'s sink, and a
/// plain path from `plain_input` to `plain`'s, with the Prometheus page.
fn bootstrap(condition: &str, busy: u16, plain: u16) -> String {
    format!(
        "modules:\n  \
         busy_input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         busy: {{module: wishbone.flow.filter, arguments: {{condition: '{condition}'}}}}\n  \
         busy_output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {busy}}}}}\n  \
         plain_input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         plain_output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {plain}}}}}\n  \
         prometheus: {{module: wishbone.metrics.prometheus, arguments: {{port: 0}}}}\n\
         routingtable:\n  \
         - busy_input.outbox -> busy.inbox\n  \
         - busy.outbox -> busy_output.inbox\n  \
         - plain_input.outbox -> plain_output.inbox\n"
    )
}

/// `count` JSON objects, one a line.
fn json_lines(count: usize) -> Vec<u8> {
    (0..count)
        .flat_map(|number| format!("{{\"n\":{number}}}\n").into_bytes())
        .collect()
}

/// The condition errors of module `busy` on the Prometheus page, which
/// must answer within a second.
fn condition_errors(port: u16) -> u64 {
    let began = Instant::now();
    let page = wishbone_e2e::http::get(port, "/metrics");
    assert_eq!(page.status, 200);
    assert!(
        began.elapsed() < Duration::from_secs(1),
        "the page took {:?}",
        began.elapsed()
    );
    page.text()
        .lines()
        .find(|line| line.contains("condition_errors") && line.contains("\"busy\""))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse::<f64>().ok())
        .map_or(0, |value| value as u64)
}

#[test]
fn a_condition_that_never_ends_holds_nothing_else_and_a_stop_ends_in_time() {
    let dir = scratch_dir("runaway-loop");
    let (busy, plain) = (Sink::start(&dir, "busy"), Sink::start(&dir, "plain"));
    let text = bootstrap("last(range(1e12)) > 0", busy.port, plain.port);
    let mut wishbone = Wishbone::start(&dir, &text, &["--drain-timeout", "2"]);
    let metrics = wishbone.logged_port("serving metrics for Prometheus");
    // A hundred events, each stopped by the budget (a tenth of a second
    // or more each): many seconds of work for the filter.
    send(wishbone.input_port("busy_input"), &json_lines(100));
    wait_until(MINUTE, "the filter at work", || {
        condition_errors(metrics) > 0
    });
    const LINES: usize = 20_000;
    send(wishbone.input_port("plain_input"), &numbered_lines(LINES));
    plain.wait_for_lines(LINES, MINUTE);
    let errors = condition_errors(metrics);
    assert!(
        errors < 100,
        "the plain path delivered while the filter was still busy ({errors} done)"
    );
    let stopping = Instant::now();
    wishbone.signal(libc::SIGTERM);
    // The drain timeout (2 s) and the grace after the abort (5 s).
    let status = wishbone.wait(Duration::from_secs(15));
    let took = stopping.elapsed();
    let log = wishbone.output.text();
    assert!(
        took < Duration::from_secs(10),
        "the stop took {took:?}: {log}"
    );
    assert!(log.contains("signal=\"SIGTERM\""), "{log}");
    assert_eq!(
        status.code(),
        Some(1),
        "what was abandoned is an error: {log}"
    );
    assert!(log.contains("past the budget of one event"), "{log}");
    assert_eq!(busy.line_count(), 0, "no event passed the condition");
}

#[test]
fn a_condition_that_would_allocate_without_end_is_stopped_and_counted() {
    let dir = scratch_dir("runaway-memory");
    let (busy, plain) = (Sink::start(&dir, "busy"), Sink::start(&dir, "plain"));
    let text = bootstrap("[range(1e9)] | length > 0", busy.port, plain.port);
    let mut wishbone = Wishbone::start(&dir, &text, &[]);
    let metrics = wishbone.logged_port("serving metrics for Prometheus");
    const EVENTS: usize = 30;
    send(wishbone.input_port("busy_input"), &json_lines(EVENTS));
    wait_until(MINUTE, "every event's error counted", || {
        condition_errors(metrics) == EVENTS as u64
    });
    send(wishbone.input_port("plain_input"), &numbered_lines(1000));
    plain.wait_for_lines(1000, MINUTE);
    let peak = peak_rss_kib(wishbone.pid());
    assert!(peak < 1024 * 1024, "peak resident memory {peak} KiB");
    assert!(wishbone.stop().success());
    assert_eq!(busy.line_count(), 0);
    eprintln!("{EVENTS} events stopped by the budget; peak resident memory {peak} KiB");
}
