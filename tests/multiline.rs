//! Multi-line events with real processes: Java stack traces of varying
//! length (with `Caused by:` sections) between plain log lines, through the
//! tcp input and tailed by the file input with `multiline: java`; each
//! trace must arrive whole. Events go on as `{"message": ...}` (decode
//! `text`), so that a trace's newlines travel inside one JSON line.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);

/// Plain line `n`, then trace `n`: 1 to 7 frames, a cause every third.
fn entry(n: usize) -> (String, String) {
    let plain = format!("2026-12-07 10:00:00,{n:06} INFO [main] request {n} served");
    let mut trace = format!(
        "2026-12-07 10:00:01,{n:06} ERROR [worker-{}] request {n} failed\njava.lang.IllegalStateException: failure {n}",
        n % 4
    );
    for frame in 0..1 + n % 7 {
        trace += &format!(
            "\n\tat com.example.Service.step{frame}(Service.java:{})",
            n % 100
        );
    }
    if n.is_multiple_of(3) {
        trace += &format!(
            "\nCaused by: java.io.IOException: disk {n}\n\tat com.example.Disk.write(Disk.java:7)\n\t... 3 more"
        );
    }
    (plain, trace)
}

/// The text of entries `range`, each plain line and trace ended by `\n`.
fn text(range: std::ops::Range<usize>) -> String {
    range
        .map(|n| {
            let (plain, trace) = entry(n);
            format!("{plain}\n{trace}\n")
        })
        .collect()
}

/// How many times each message arrived.
fn arrived(sink: &Sink) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for line in String::from_utf8(sink.received()).unwrap().lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        let message = value["message"].as_str().unwrap().to_string();
        *counts.entry(message).or_default() += 1;
    }
    counts
}

/// Every message that arrived is a whole plain line or a whole trace of
/// `0..count`, and every one of those arrived; the most times any did.
fn whole(sink: &Sink, count: usize) -> usize {
    let mut expected = BTreeMap::new();
    for n in 0..count {
        let (plain, trace) = entry(n);
        expected.insert(plain, 0);
        expected.insert(trace, 0);
    }
    for (message, times) in arrived(sink) {
        match expected.get_mut(&message) {
            Some(seen) => *seen += times,
            None => panic!("not a whole entry: {message:?}"),
        }
    }
    let missing: Vec<_> = expected
        .iter()
        .filter(|(_, times)| **times == 0)
        .take(3)
        .collect();
    assert!(missing.is_empty(), "never arrived: {missing:?}");
    expected.values().copied().max().unwrap_or(0)
}

fn pipeline(input: &str, sink: u16) -> String {
    format!(
        "modules:\n  input: {input}\n  text: {{module: wishbone.process.decode, arguments: {{format: text}}}}\n  \
         output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {sink}, reconnect_max: 0.2}}}}\n\
         routingtable:\n  - input.outbox -> text.inbox\n  - text.outbox -> output.inbox\n"
    )
}

fn lines_of(sink: &Sink) -> usize {
    sink.received()
        .iter()
        .filter(|byte| **byte == b'\n')
        .count()
}

#[test]
fn traces_sent_over_tcp_in_pieces_arrive_whole_once_and_a_last_one_at_its_timeout() {
    let dir = scratch_dir("multiline-tcp");
    let sink = Sink::start(&dir, "output");
    let input =
        "{module: wishbone.input.tcp, arguments: {address: 127.0.0.1, port: 0, multiline: java}}";
    let mut wishbone = Wishbone::start(&dir, &pipeline(input, sink.port), &[]);
    const TRACES: usize = 2_000;
    let data = text(0..TRACES);
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", wishbone.input_port("input"))).unwrap();
    // Writes that end inside traces and inside lines.
    for piece in data.as_bytes().chunks(777) {
        stream.write_all(piece).unwrap();
    }
    // The last trace is open until its group times out (1 s), the
    // connection still up.
    wait_until(MINUTE, "every entry", || lines_of(&sink) >= 2 * TRACES);
    assert_eq!(whole(&sink, TRACES), 1);
    drop(stream);
    assert!(wishbone.stop().success());
    assert_eq!(lines_of(&sink), 2 * TRACES);
}

#[test]
fn a_group_that_never_ends_is_cut_at_max_bytes_and_counted() {
    let dir = scratch_dir("multiline-endless");
    let sink = Sink::start(&dir, "output");
    let input = "{module: wishbone.input.tcp, arguments: {address: 127.0.0.1, port: 0, multiline: {start_pattern: '^START', condition_pattern: '^ ', mode: continue_through, max_bytes: 10000}}}";
    let mut wishbone = Wishbone::start(&dir, &pipeline(input, sink.port), &[]);
    let mut data = b"START\n".to_vec();
    for n in 0..100_000 {
        data.extend_from_slice(format!(" continuation {n}\n").as_bytes());
    }
    data.extend_from_slice(b"after\n");
    send(wishbone.input_port("input"), &data);
    wait_until(MINUTE, "two events", || lines_of(&sink) >= 2);
    assert!(wishbone.stop().success());
    let counts = arrived(&sink);
    let cut = counts
        .keys()
        .find(|message| message.starts_with("START"))
        .unwrap();
    assert_eq!(cut.len(), 10_000);
    assert!(counts.contains_key("after"), "{:?}", counts.keys());
    let log = wishbone.output.text();
    assert!(log.contains("multiline_cut=1"), "{log}");
}

fn file_input(logs: &Path, checkpoints: &Path) -> String {
    format!(
        "{{module: wishbone.input.file, arguments: {{paths: [\"{}\"], checkpoints: \"{}\", poll_interval_ms: 100, multiline: java}}}}",
        logs.join("app.log*").display(),
        checkpoints.display()
    )
}

#[test]
fn a_file_of_traces_is_tailed_each_trace_whole_and_once() {
    let dir = scratch_dir("multiline-file");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    const TRACES: usize = 3_000;
    std::fs::write(logs.join("app.log"), text(0..TRACES)).unwrap();
    let sink = Sink::start(&dir, "output");
    let bootstrap = pipeline(&file_input(&logs, &dir.join("checkpoints")), sink.port);
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    wait_until(MINUTE, "every entry", || lines_of(&sink) >= 2 * TRACES);
    assert!(wishbone.stop().success());
    assert_eq!(whole(&sink, TRACES), 1);
}

#[test]
fn traces_tailed_through_logrotate_and_sigkills_arrive_whole() {
    require_installed(
        "command -v logrotate",
        "logrotate is missing: `apt-get install logrotate`",
    );
    let dir = scratch_dir("multiline-rotate");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let app = logs.join("app.log");
    let sink = Sink::start(&dir, "output");
    let bootstrap = pipeline(&file_input(&logs, &dir.join("checkpoints")), sink.port);
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    rotation::logrotate_config(&dir, &app);
    const TRACES: usize = 12_000;
    // 1,500 entries a second, each written whole.
    let items = (0..TRACES).map(|n| text(n..n + 1).into_bytes()).collect();
    let writer = rotation::writer(app.clone(), items, 1_500.0, 50);
    let turbulence = rotation::Turbulence {
        rotate_every: 2.0,
        kill_every: 2.5,
        kills: 2,
    };
    let (rotations, kills) = turbulence.run(&writer, &dir, &bootstrap, &mut wishbone);
    writer.join().unwrap();
    assert!(
        rotations >= 2 && kills == 2,
        "rotations {rotations}, kills {kills}"
    );
    wait_until(MINUTE, "every entry", || arrived(&sink).len() >= 2 * TRACES);
    assert!(wishbone.stop().success());
    let most = whole(&sink, TRACES);
    eprintln!(
        "{TRACES} traces, {rotations} rotations, {kills} SIGKILLs: each arrived at most {most} times"
    );
}
