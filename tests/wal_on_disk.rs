//! `wishbone.flow.wal` with `path`: what it reported kept survives a
//! SIGKILL of `wishbone`, a disk that stops taking writes pushes the input
//! back, and a second process on the same directory is refused. Real
//! processes on loopback; the wal's `kept` count is read from the metrics
//! `wishbone` sends (`--graphite` to a plaintext listener of the test).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);
const KEPT: &str = ".module.wal.kept";

/// tcp input → wal on disk → tcp output to `port`.
fn proxy_through_wal(dir: &std::path::Path, port: u16, wal_arguments: &str) -> String {
    format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         wal: {{module: wishbone.flow.wal, arguments: {{path: \"{}\", {wal_arguments}}}}}\n  \
         output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {port}, reconnect_initial: 0.02, reconnect_max: 0.1}}}}\n\
         routingtable:\n  - input.outbox -> wal.inbox\n  - wal.outbox -> output.inbox\n",
        dir.join("wal").display()
    )
}

fn metrics_flags(metrics: &PlaintextMetrics) -> Vec<String> {
    vec![
        "--graphite".into(),
        metrics.address(),
        "--frequency".into(),
        "0.05".into(),
    ]
}

fn start(dir: &std::path::Path, bootstrap: &str, flags: &[String]) -> Wishbone {
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Wishbone::start(dir, bootstrap, &flags)
}

/// How many times each line number arrived.
fn arrivals(data: &[u8]) -> BTreeMap<usize, usize> {
    let mut counts = BTreeMap::new();
    for number in line_numbers(data) {
        *counts.entry(number).or_default() += 1;
    }
    counts
}

#[test]
fn what_the_wal_kept_arrives_after_a_sigkill_and_a_restart() {
    let dir = scratch_dir("wal-disk-kill");
    let metrics = PlaintextMetrics::start();
    let backend_port = free_port();
    let bootstrap = proxy_through_wal(
        &dir,
        backend_port,
        "read_count: 1000, max_elements: 200000, max_bytes: 100000000",
    );
    let mut wishbone = start(&dir, &bootstrap, &metrics_flags(&metrics));
    let input = wishbone.input_port("input");
    const LINES: usize = 100_000;
    send(input, &numbered_lines(LINES));
    wait_until(MINUTE, "the wal to report every line kept", || {
        metrics.latest(KEPT) == Some(LINES as f64)
    });

    // A second process on the same directory is refused, and says why.
    let mut second = start(&dir, &bootstrap, &[]);
    let status = second.wait(MINUTE);
    assert_eq!(status.code(), Some(1), "{}", second.output.text());
    assert!(
        second
            .output
            .text()
            .contains("is in use by another process")
    );

    wishbone.signal(libc::SIGKILL);
    wishbone.wait(MINUTE);
    let sink = Sink::start_on(&dir, "backend", backend_port, &[]);
    let mut restarted = start(&dir, &bootstrap, &[]);
    restarted.output.wait_for("events=100000", MINUTE);
    wait_until(MINUTE, "every line at the backend", || {
        arrivals(&sink.received()).len() == LINES
    });
    assert!(restarted.stop().success());
    let counts = arrivals(&sink.received());
    assert_eq!(
        counts.keys().copied().collect::<Vec<_>>(),
        (0..LINES).collect::<Vec<_>>()
    );
    let duplicates: usize = counts.values().map(|count| count - 1).sum();
    eprintln!("after the SIGKILL: {LINES} lines arrived, {duplicates} of them twice or more");
    assert_eq!(duplicates, 0, "nothing had been sent before the kill");
    // Everything delivered is settled: a third start finds nothing to send.
    let mut third = start(&dir, &bootstrap, &[]);
    third.output.wait_for("opened the wal", MINUTE);
    assert!(third.stop().success());
    assert!(
        third.output.text().contains("events=0 "),
        "{}",
        third.output.text()
    );
}

/// A metronome's events with the number of the process that made them.
fn metronome_through_wal(dir: &std::path::Path, run: usize, ports: [u16; 2]) -> String {
    format!(
        "modules:\n  metronome: {{module: wishbone.input.metronome, arguments: {{interval: 1}}}}\n  \
         mark: {{module: wishbone.process.modify, arguments: {{merge: {{run: {run}}}}}}}\n  \
         wal: {{module: wishbone.flow.wal, arguments: {{path: \"{wal}\", read_count: 20, max_elements: 100000, max_bytes: 100000000}}}}\n  \
         roundrobin: {{module: wishbone.flow.roundrobin}}\n  \
         out0: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {p0}, reconnect_initial: 0.02, reconnect_max: 0.05}}}}\n  \
         out1: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {p1}, reconnect_initial: 0.02, reconnect_max: 0.05}}}}\n\
         routingtable:\n  - metronome.outbox -> mark.inbox\n  - mark.outbox -> wal.inbox\n  - wal.outbox -> roundrobin.inbox\n  \
         - roundrobin.out0 -> out0.inbox\n  - roundrobin.out1 -> out1.inbox\n",
        wal = dir.join("wal").display(),
        p0 = ports[0],
        p1 = ports[1],
    )
}

/// (run, id) of every event in the backends' files.
fn received_events(dir: &std::path::Path) -> Vec<(u64, u64)> {
    let mut events = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if !entry.file_name().to_string_lossy().ends_with(".out") {
            continue;
        }
        for line in std::fs::read_to_string(entry.path()).unwrap().lines() {
            let event: serde_json::Value = serde_json::from_str(line).expect("a JSON event");
            events.push((
                event["run"].as_u64().unwrap(),
                event["id"].as_u64().unwrap(),
            ));
        }
    }
    events
}

/// Ten SIGKILLs at random moments while a metronome feeds the wal 1,000
/// events a second and the backends come and go (every third run with
/// both down throughout, so that what it keeps must come off the disk).
/// A backend is stopped
/// only while no `wishbone` runs and once it has read everything sent to
/// it (what a backend's own kernel held when it died is the documented
/// window of the tcp output, not the wal's), and started at random moments.
#[test]
fn ten_sigkills_at_random_moments_lose_nothing_the_wal_had_kept() {
    let dir = scratch_dir("wal-disk-kills");
    let metrics = PlaintextMetrics::start();
    let mut random = Random::from_clock();
    let first = [
        Sink::start(&dir, "backend0-start"),
        Sink::start(&dir, "backend1-start"),
    ];
    let ports = [first[0].port, first[1].port];
    let mut backends: [Option<Sink>; 2] = first.map(Some);
    let mut required: Vec<(u64, u64)> = Vec::new();
    for run in 0..10 {
        // Between runs, each backend goes down (once it read everything)
        // or comes up at random; while the run lasts, a down one may come
        // up. Every third run has both down throughout: what it keeps
        // reaches a backend only through the disk.
        let outage = run % 3 == 2;
        for (index, backend) in backends.iter_mut().enumerate() {
            match backend.take() {
                Some(sink) if outage || random.below(2) == 0 => {
                    wait_until(MINUTE, "the backend to read what it was sent", || {
                        unread_bytes(ports[index]) == 0
                    });
                    drop(sink);
                }
                Some(sink) => *backend = Some(sink),
                None if !outage && random.below(2) == 0 => {
                    *backend = Some(Sink::start_on(
                        &dir,
                        &format!("backend{index}-run{run}"),
                        ports[index],
                        &[],
                    ));
                }
                None => {}
            }
        }
        metrics.clear();
        let mut wishbone = start(
            &dir,
            &metronome_through_wal(&dir, run, ports),
            &metrics_flags(&metrics),
        );
        wait_until(MINUTE, "the wal to keep events", || {
            metrics.latest(KEPT).is_some_and(|kept| kept > 0.0)
        });
        let lifetime = Duration::from_millis(100 + random.below(900));
        let bring_up = Duration::from_millis(random.below(1000));
        let started = Instant::now();
        while started.elapsed() < lifetime {
            if !outage && started.elapsed() >= bring_up {
                for (index, backend) in backends.iter_mut().enumerate() {
                    if backend.is_none() && random.below(2) == 0 {
                        *backend = Some(Sink::start_on(
                            &dir,
                            &format!("backend{index}-during{run}"),
                            ports[index],
                            &[],
                        ));
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let kept = metrics.latest(KEPT).unwrap() as u64;
        wishbone.signal(libc::SIGKILL);
        wishbone.wait(MINUTE);
        eprintln!("run {run}: killed after {lifetime:?} with {kept} events reported kept");
        required.extend((0..kept).map(|id| (run as u64, id)));
    }
    for (index, backend) in backends.iter_mut().enumerate() {
        if backend.is_none() {
            *backend = Some(Sink::start_on(
                &dir,
                &format!("backend{index}-last"),
                ports[index],
                &[],
            ));
        }
    }
    let mut last = start(&dir, &metronome_through_wal(&dir, 10, ports), &[]);
    let opened = last.output.wait_for("opened the wal", MINUTE);
    eprintln!("the last start: {opened}");
    let required_set: BTreeSet<(u64, u64)> = required.iter().copied().collect();
    let mut missing = required_set.len();
    wait_until(MINUTE, "every event reported kept at the backends", || {
        let received: BTreeSet<(u64, u64)> = received_events(&dir).into_iter().collect();
        missing = required_set.difference(&received).count();
        missing == 0
    });
    let status = last.stop();
    assert!(status.success(), "{status:?}: {}", last.output.text());
    let received = received_events(&dir);
    let distinct: BTreeSet<(u64, u64)> = received.iter().copied().collect();
    eprintln!(
        "{} events reported kept before the kills all arrived; {} arrived twice or more",
        required_set.len(),
        received.len() - distinct.len()
    );
}

/// Sets the file size limit (`ulimit -f`) of a running process.
fn limit_file_size(pid: u32, bytes: u64) {
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain system call on a live process of ours.
    let done =
        unsafe { libc::prlimit(pid as i32, libc::RLIMIT_FSIZE, &limit, std::ptr::null_mut()) };
    assert_eq!(done, 0, "prlimit: {}", std::io::Error::last_os_error());
}

/// A disk that stops taking writes (here: a file size limit, which fails
/// writes with EFBIG as a full disk fails them with ENOSPC): the input is
/// pushed back, nothing is lost, and writing resumes once there is room.
#[test]
fn a_disk_that_takes_no_more_pushes_the_input_back_until_it_does() {
    let dir = scratch_dir("wal-disk-full");
    let sink = Sink::start(&dir, "backend");
    let bootstrap = proxy_through_wal(
        &dir,
        sink.port,
        "read_count: 1000, max_elements: 1000000, max_bytes: 400000000, when_full: drop_oldest",
    );
    let mut wishbone = start(&dir, &bootstrap, &[]);
    let input = wishbone.input_port("input");
    limit_file_size(wishbone.pid(), 1 << 14);
    const LINES: usize = 300_000;
    let sender = std::thread::spawn(move || send(input, &numbered_lines(LINES)));
    wishbone.output.wait_for("cannot write the wal", MINUTE);
    // While the disk takes nothing, the sender is held back and the
    // backend gets only what was kept.
    std::thread::sleep(Duration::from_secs(1));
    let delivered = sink.line_count();
    assert!(!sender.is_finished(), "30 MB cannot all be taken in");
    assert!(
        delivered < LINES / 2,
        "only what was kept is sent: {delivered}"
    );
    // A file size limit holds per file: after a failed write the wal
    // starts a new segment, which takes up to the limit again, so an
    // outage may end and begin again; each is logged once when it begins
    // and once when it ends, never at every retry.
    let log = wishbone.output.text();
    let turns: Vec<bool> = log
        .lines()
        .filter_map(|line| match line {
            line if line.contains("cannot write the wal") => Some(true),
            line if line.contains("writing the wal again") => Some(false),
            _ => None,
        })
        .collect();
    assert!(!turns.is_empty(), "{log}");
    assert!(
        turns
            .iter()
            .enumerate()
            .all(|(index, begins)| *begins == (index % 2 == 0)),
        "each outage logged once when it begins and once when it ends: {turns:?}"
    );
    limit_file_size(wishbone.pid(), libc::RLIM_INFINITY);
    wishbone.output.wait_for("writing the wal again", MINUTE);
    sender.join().unwrap();
    wait_until(MINUTE, "every line at the backend", || {
        arrivals(&sink.received()).len() == LINES
    });
    assert!(wishbone.stop().success());
    assert_eq!(wishbone.queue_total("wal.inbox", "dropped_total"), 0);
    let counts = arrivals(&sink.received());
    assert_eq!(counts.len(), LINES);
    assert!(counts.values().all(|count| *count == 1), "each line once");
}

/// The peak resident memory of process `pid`, in bytes (`VmHWM`).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .expect("VmHWM in /proc/PID/status");
    kib * 1024
}

#[test]
fn a_backlog_larger_than_max_memory_bytes_waits_on_disk_and_arrives_in_order() {
    let dir = scratch_dir("wal-disk-backlog");
    let metrics = PlaintextMetrics::start();
    let backend_port = free_port();
    const MEMORY: usize = 1_000_000;
    let bootstrap = proxy_through_wal(
        &dir,
        backend_port,
        &format!(
            "read_count: 1000, max_elements: 1000000, max_bytes: 400000000, max_memory_bytes: {MEMORY}, when_full: block"
        ),
    );
    let mut wishbone = start(&dir, &bootstrap, &metrics_flags(&metrics));
    let input = wishbone.input_port("input");
    // What the process holds before any line: its threads' heaps.
    let idle = peak_rss(wishbone.pid());
    const LINES: usize = 300_000; // 30 MB, thirty times max_memory_bytes
    send(input, &numbered_lines(LINES));
    wait_until(MINUTE, "the wal to report every line kept", || {
        metrics.latest(KEPT) == Some(LINES as f64)
    });
    std::thread::sleep(Duration::from_millis(200));
    let held = metrics
        .latest(".module.wal.memory_bytes")
        .unwrap_or(f64::MAX);
    let peak = peak_rss(wishbone.pid());
    eprintln!(
        "{LINES} lines kept with the output down: {held} bytes held in memory, peak RSS {:.1} MiB ({:.1} MiB idle)",
        peak as f64 / (1 << 20) as f64,
        idle as f64 / (1 << 20) as f64
    );
    assert!(
        held <= (MEMORY + 200_000) as f64,
        "at most max_memory_bytes (and the next block) held: {held}"
    );
    assert!(
        peak - idle < (LINES * NUMBERED_LINE_LENGTH) as u64,
        "the backlog is not all in memory: peak RSS {peak}, {idle} idle"
    );
    let sink = Sink::start_on(&dir, "backend", backend_port, &[]);
    wait_until(MINUTE, "every line at the backend", || {
        arrivals(&sink.received()).len() == LINES
    });
    assert!(wishbone.stop().success());
    let data = sink.received();
    let received: Vec<usize> = line_numbers(&data).collect();
    let out_of_place = received
        .iter()
        .enumerate()
        .find(|(index, number)| index != *number);
    assert!(
        received.len() == LINES && out_of_place.is_none(),
        "each line once, in order, through the reads back from disk: {} lines, first out of place {out_of_place:?}",
        received.len()
    );
}
