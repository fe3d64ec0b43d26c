//! Scenario III of the article: a backend is killed with SIGKILL while a
//! million numbered lines stream; output_2 fails over through its failed
//! queue and a funnel to output_1.
//!
//! What SIGKILL destroys that no sender can know of: bytes the backend's
//! kernel acknowledged that its program had not read yet. The test measures
//! that window at the moment of the kill (the backend is frozen, its receive
//! queue read from /proc/net/tcp, then killed) and requires every missing
//! line to lie inside it, or in the one read the backend program had taken
//! but not yet written; every other line must arrive at least once.
//! Half of the runs kill while the window is empty (wishbone is paused until
//! the backend has read everything), and there no line may be missing.

use std::time::Duration;

use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);
const LINES: usize = 1_000_000;
const LINE_LENGTH: u64 = NUMBERED_LINE_LENGTH as u64;
/// The killed backend's read size: what it may have taken from its kernel
/// and not yet written when it dies.
const READ_SIZE: u64 = 16 * 1024;

struct Run {
    killed_after: usize,
    window_bytes: u64,
    lost_in_window: usize,
    duplicates: usize,
    failed_over: u64,
}

fn kill_mid_stream(run: usize, kill_after: usize, empty_window: bool) -> Run {
    let dir = scratch_dir(&format!("kill-{run}"));
    let one = Sink::start(&dir, "one");
    let mut two = Sink::start_on(
        &dir,
        "two",
        0,
        &["--rcvbuf", "65536", "--read-size", &READ_SIZE.to_string()],
    );
    let logs = ["--log-level", "info,wishbone_modules::input::client=debug"];
    let mut wishbone = Wishbone::start(&dir, &scenario_3_bootstrap(one.port, two.port), &logs);
    let input = wishbone.input_port("input");
    let data = numbered_lines(LINES);
    let sender = {
        let data = data.clone();
        std::thread::spawn(move || send(input, &data))
    };
    wait_until(MINUTE, "the backend to get its first lines", || {
        two.byte_count() >= kill_after as u64 * LINE_LENGTH
    });
    let window_bytes = if empty_window {
        wishbone.signal(libc::SIGSTOP);
        wait_until(MINUTE, "the backend to read everything", || {
            unread_bytes(two.port) == 0
        });
        std::thread::sleep(Duration::from_millis(50));
        let unread = unread_bytes(two.port);
        two.kill();
        wishbone.signal(libc::SIGCONT);
        unread
    } else {
        two.signal(libc::SIGSTOP);
        let last = settled_unread_bytes(two.port);
        two.kill();
        last
    };
    sender.join().unwrap();
    wishbone.output.wait_for("client disconnected", MINUTE); // read to the end: all of it was accepted
    let status = wishbone.stop();
    assert!(
        status.success(),
        "run {run}: exit {status:?}\n{}",
        wishbone.output.text()
    );
    let totals = wishbone
        .output
        .wait_for("output totals module=output_2", MINUTE);
    let failed_over: u64 = field(&totals, "failed_over").unwrap().parse().unwrap();
    let (first, second) = (one.received(), two.received());
    assert!(
        line_numbers(&second).count() < LINES / 2,
        "run {run}: the kill came after the stream; the backend already had its whole share"
    );
    let mut seen = vec![0u32; LINES];
    for number in line_numbers(&first).chain(line_numbers(&second)) {
        seen[number] += 1;
    }
    let missing: Vec<usize> = (0..LINES).filter(|number| seen[*number] == 0).collect();
    let duplicates = seen
        .iter()
        .map(|count| count.saturating_sub(1) as usize)
        .sum();
    if !missing.is_empty() {
        // Lost lines must be output_2's next lines after the last it wrote
        // (it gets the odd numbers) and fit in the measured window, plus the
        // one line the backend had begun reading.
        let last = line_numbers(&second).last().unwrap_or(0);
        let expected: Vec<usize> = (1..=missing.len()).map(|step| last + 2 * step).collect();
        assert!(
            missing == expected,
            "run {run}: {} lines lost outside the window; first missing {:?}, last at the backend {last}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        assert!(
            missing.len() as u64 * LINE_LENGTH <= window_bytes + READ_SIZE + LINE_LENGTH,
            "run {run}: {} lines lost; the backend's kernel held {window_bytes} unread bytes, its program at most one read\n{}",
            missing.len(),
            wishbone
                .output
                .text()
                .lines()
                .filter(|line| line.contains("output_2"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    Run {
        killed_after: kill_after,
        window_bytes,
        lost_in_window: missing.len(),
        duplicates,
        failed_over,
    }
}

#[test]
fn a_backend_killed_mid_stream_loses_nothing_outside_the_kernel_window() {
    let mut runs = Vec::new();
    for run in 0..10 {
        let empty_window = run % 2 == 0;
        let outcome = kill_mid_stream(run, 10_000 + run * 25_000, empty_window);
        if empty_window {
            assert_eq!(
                outcome.lost_in_window, 0,
                "run {run}: the window was empty, so nothing may be missing"
            );
        }
        runs.push(outcome);
    }
    for (run, outcome) in runs.iter().enumerate() {
        println!(
            "run {run}: killed after {} lines at the backend; failed over {}; unread in its kernel {} bytes; lost there {} lines; duplicates {}",
            outcome.killed_after,
            outcome.failed_over,
            outcome.window_bytes,
            outcome.lost_in_window,
            outcome.duplicates
        );
    }
}
