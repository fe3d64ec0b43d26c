//! Scenario II of the article: one input balanced over two TCP backends.

use std::time::Duration;

use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);

fn is_in_input_order(received: &[u8]) -> bool {
    line_numbers(received)
        .collect::<Vec<_>>()
        .windows(2)
        .all(|pair| pair[0] < pair[1])
}

fn split_evenly(test: &str, lines: usize) {
    let dir = scratch_dir(test);
    let (one, two) = (Sink::start(&dir, "one"), Sink::start(&dir, "two"));
    let mut wishbone = Wishbone::start(&dir, &scenario_2_bootstrap(one.port, two.port, ""), &[]);
    let data = numbered_lines(lines);
    send(wishbone.input_port("input"), &data);
    one.wait_for_lines(lines / 2, MINUTE);
    two.wait_for_lines(lines / 2, MINUTE);
    assert!(wishbone.stop().success());
    let (first, second) = (one.received(), two.received());
    assert_eq!(one.line_count(), lines / 2, "exactly half to output_1");
    assert_eq!(two.line_count(), lines / 2, "exactly half to output_2");
    assert!(
        is_in_input_order(&first) && is_in_input_order(&second),
        "each backend in input order"
    );
    let both = [first, second].concat();
    assert_eq!(
        sorted_lines(&both),
        sorted_lines(&data),
        "together, exactly the input"
    );
}

#[test]
fn ten_thousand_lines_split_exactly_in_half() {
    split_evenly("split-10k", 10_000);
}

#[test]
fn a_million_lines_split_exactly_in_half() {
    split_evenly("split-1m", 1_000_000);
}

#[test]
fn with_one_backend_down_from_the_start_the_other_gets_everything() {
    let dir = scratch_dir("one-down");
    let one = Sink::start(&dir, "one");
    let down = free_port();
    let mut wishbone = Wishbone::start(&dir, &scenario_2_bootstrap(one.port, down, ""), &[]);
    let data = numbered_lines(100_000);
    send(wishbone.input_port("input"), &data);
    one.wait_for_lines(100_000, MINUTE);
    assert_eq!(
        one.received(),
        data,
        "everything, in order, to the backend that is up"
    );
    let second = Sink::start_on(&dir, "two", down, &[]);
    send(wishbone.input_port("input"), &numbered_lines(10));
    wishbone
        .output
        .wait_for("connected module=output_2", MINUTE);
    assert!(wishbone.stop().success());
    assert_eq!(
        second.line_count() + one.line_count(),
        100_010,
        "the late backend rejoins the rotation"
    );
}

#[test]
fn with_both_backends_down_the_input_is_held_back_until_they_return() {
    let dir = scratch_dir("both-down");
    let (port_1, port_2) = (free_port(), free_port());
    let mut wishbone = Wishbone::start(
        &dir,
        &scenario_2_bootstrap(port_1, port_2, ""),
        &["--queue-size", "100"],
    );
    let input = wishbone.input_port("input");
    let data = numbered_lines(200_000);
    let sender = {
        let data = data.clone();
        std::thread::spawn(move || send(input, &data))
    };
    std::thread::sleep(Duration::from_secs(1)); // the backends stay away a while
    assert!(
        !sender.is_finished(),
        "with every backend down, the input must push back"
    );
    let (one, two) = (
        Sink::start_on(&dir, "one", port_1, &[]),
        Sink::start_on(&dir, "two", port_2, &[]),
    );
    sender.join().unwrap();
    wait_until(MINUTE, "every line", || {
        one.line_count() + two.line_count() >= 200_000
    });
    assert!(wishbone.stop().success());
    let both = [one.received(), two.received()].concat();
    assert_eq!(sorted_lines(&both), sorted_lines(&data), "every line once");
}

#[test]
fn a_backend_that_stops_reading_is_routed_around_and_loses_nothing() {
    let dir = scratch_dir("not-reading");
    let one = Sink::start(&dir, "one");
    let slow = Sink::start_on(&dir, "two", 0, &["--pause-ms", "3000"]);
    let bootstrap = scenario_2_bootstrap(one.port, slow.port, ", timeout: 0.5");
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    let data = numbered_lines(500_000);
    send(wishbone.input_port("input"), &data);
    wishbone.output.wait_for("peer stopped reading", MINUTE);
    wait_until(MINUTE, "all lines", || {
        one.line_count() + slow.line_count() >= 500_000
    });
    assert!(wishbone.stop().success());
    assert!(
        one.line_count() > 300_000,
        "the reading backend kept flowing: {} lines",
        one.line_count()
    );
    let both = [one.received(), slow.received()].concat();
    assert_eq!(sorted_lines(&both), sorted_lines(&data), "every line once");
}

#[test]
fn a_stop_that_cannot_drain_aborts_after_the_timeout_and_says_what_was_left() {
    let dir = scratch_dir("abort");
    let (port_1, port_2) = (free_port(), free_port());
    let args = ["--drain-timeout", "1"];
    let mut wishbone = Wishbone::start(&dir, &scenario_2_bootstrap(port_1, port_2, ""), &args);
    let input = wishbone.input_port("input");
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", input)).unwrap();
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sender = {
        let written = written.clone();
        std::thread::spawn(move || {
            for chunk in numbered_lines(300_000).chunks(1 << 16) {
                if std::io::Write::write_all(&mut stream, chunk).is_err() {
                    return;
                }
                written.fetch_add(chunk.len(), std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    // Written minus what the kernel still holds: what wishbone read, and cannot deliver.
    wait_until(MINUTE, "wishbone to accept 50 kB", || {
        written.load(std::sync::atomic::Ordering::Relaxed) as u64 >= in_transit(input) + 50_000
    });
    wishbone.signal(libc::SIGTERM);
    let status = wishbone.wait(Duration::from_secs(30));
    let _ = sender.join();
    assert_eq!(
        status.code(),
        Some(1),
        "an abort with events left is a failure"
    );
    let log = wishbone.output.text();
    assert!(
        log.contains("queues did not drain in time: aborting"),
        "{log}"
    );
    let total = wishbone
        .output
        .wait_for("events were left undelivered", MINUTE);
    let undelivered: u64 = field(&total, "undelivered").unwrap().parse().unwrap();
    assert!(undelivered > 0, "{log}");
}
