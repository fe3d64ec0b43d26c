//! `wishbone.flow.wal` with `path` on a disk that fills up (a small tmpfs
//! the test mounts): what was kept is still delivered, a fully delivered
//! log gives its room back so the rest follows, a restart replays nothing
//! that was delivered, and a stop ends within the drain timeout however
//! full the disk is. Real processes on loopback.
//!
//! Mounting needs root (CI runs as root); elsewhere each test says it was
//! skipped and why, and passes.

use std::time::{Duration, Instant};

use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);
/// 16 MB of numbered lines through a disk of 8 MB.
const LINES: usize = 160_000;
const DISK: &str = "size=8m";

/// tcp input → wal on the small disk (one segment of 25 MB: larger than
/// the disk) → tcp output to `port`.
fn bootstrap(disk: &SmallDisk, port: u16) -> String {
    format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         wal: {{module: wishbone.flow.wal, arguments: {{path: \"{}\", read_count: 1000, max_elements: 10000000, max_bytes: 200000000}}}}\n  \
         output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {port}, reconnect_initial: 0.02, reconnect_max: 0.1}}}}\n\
         routingtable:\n  - input.outbox -> wal.inbox\n  - wal.outbox -> output.inbox\n",
        disk.0.join("wal").display()
    )
}

#[test]
fn a_full_disk_gives_its_room_back_as_outputs_deliver_and_nothing_is_replayed() {
    let dir = scratch_dir("wal-full-disk");
    let disk = small_disk_or_skip!(dir, DISK);
    let port = free_port();
    let bootstrap = bootstrap(&disk, port);
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    let input = wishbone.input_port("input");
    let sender = std::thread::spawn(move || send(input, &numbered_lines(LINES)));
    wishbone.output.wait_for("cannot write the wal", MINUTE);

    // The output comes back: what was kept goes, the log empties, and
    // the rest is written and follows.
    let sink = Sink::start_on(&dir, "backend", port, &[]);
    wishbone.output.wait_for("writing the wal again", MINUTE);
    sender.join().unwrap();
    sink.wait_for_lines(LINES, MINUTE);
    let numbers: Vec<usize> = line_numbers(&sink.received()).collect();
    assert_eq!(
        numbers,
        (0..LINES).collect::<Vec<_>>(),
        "each line once, in order"
    );

    let stopping = Instant::now();
    assert!(wishbone.stop().success(), "{}", wishbone.output.text());
    assert!(stopping.elapsed() < Duration::from_secs(10));
    // What was delivered is not sent again.
    let mut again = Wishbone::start(&dir, &bootstrap, &[]);
    let opened = again.output.wait_for("opened the wal", MINUTE);
    assert!(opened.contains("events=0 "), "{opened}");
    assert!(again.stop().success());
    assert_eq!(sink.line_count(), LINES);
}

#[test]
fn a_stop_ends_within_the_drain_timeout_while_the_disk_is_full() {
    let dir = scratch_dir("wal-full-disk-stop");
    let disk = small_disk_or_skip!(dir, DISK);
    let port = free_port();
    let bootstrap = bootstrap(&disk, port);
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &["--drain-timeout", "2"]);
    let input = wishbone.input_port("input");
    let sender = std::thread::spawn(move || send(input, &numbered_lines(LINES)));
    wishbone.output.wait_for("cannot write the wal", MINUTE);

    let stopping = Instant::now();
    wishbone.signal(libc::SIGTERM);
    let status = wishbone.wait(Duration::from_secs(30));
    let took = stopping.elapsed();
    let log = wishbone.output.text();
    assert_eq!(status.code(), Some(1), "an aborted drain: {log}");
    eprintln!("stopped {took:?} after SIGTERM with --drain-timeout 2");
    assert!(
        took < Duration::from_secs(8),
        "stopped after {took:?}: {log}"
    );
    assert!(log.contains("were never kept"), "{log}");
    let _ = sender.join();

    // What was kept is delivered by the next start, once each.
    let sink = Sink::start_on(&dir, "backend", port, &[]);
    let mut again = Wishbone::start(&dir, &bootstrap, &[]);
    let opened = again.output.wait_for("opened the wal", MINUTE);
    let kept: usize = field(&opened, "events").unwrap().parse().unwrap();
    assert!(kept > 10_000, "the disk held what it kept: {opened}");
    sink.wait_for_lines(kept, MINUTE);
    assert!(again.stop().success());
    let numbers: Vec<usize> = line_numbers(&sink.received()).collect();
    assert_eq!(
        numbers,
        (0..kept).collect::<Vec<_>>(),
        "each kept line once, in order"
    );
}
