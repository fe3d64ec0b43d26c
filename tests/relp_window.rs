//! The RELP input's `window` holds against a client that sends thousands
//! of frames in one write without reading its answers: at most `window`
//! frames of the session are taken and unanswered at once, and every frame
//! is answered in order once the output can deliver.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);
const WINDOW: usize = 10;
const FRAMES: usize = 2_000;

fn frame(txnr: usize, command: &str, data: &[u8]) -> Vec<u8> {
    let mut out = format!("{txnr} {command} {} ", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.push(b'\n');
    out
}

#[test]
fn a_client_that_does_not_read_answers_has_at_most_window_frames_taken() {
    let dir = scratch_dir("relp-window");
    let metrics = PlaintextMetrics::start();
    let backend = free_port();
    let relp_port = free_port();
    let bootstrap = format!(
        "modules:\n  input: {{module: wishbone.input.relp, arguments: {{address: 127.0.0.1, port: {relp_port}, window: {WINDOW}}}}}\n  \
         wal: {{module: wishbone.flow.wal, arguments: {{max_elements: 100000, max_bytes: 100000000}}}}\n  \
         output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {backend}, reconnect_initial: 0.02, reconnect_max: 0.1}}}}\n\
         routingtable:\n  - input.outbox -> wal.inbox\n  - wal.outbox -> output.inbox\n"
    );
    let mut wishbone = Wishbone::start(
        &dir,
        &bootstrap,
        &["--graphite", &metrics.address(), "--frequency", "0.05"],
    );
    wait_until(MINUTE, "the input to listen", || {
        TcpStream::connect(("127.0.0.1", relp_port)).is_ok()
    });
    let mut client = TcpStream::connect(("127.0.0.1", relp_port)).unwrap();
    let mut all = frame(1, "open", b"relp_version=0\ncommands=syslog");
    for number in 0..FRAMES {
        all.extend(frame(
            number + 2,
            "syslog",
            format!("{number:010}").as_bytes(),
        ));
    }
    client.write_all(&all).unwrap();

    // The backend is down: the wal (in memory) keeps what it is given and
    // acknowledges it only once an output delivered it, so nothing taken
    // is answered, and the session stops taking frames at the window.
    wait_until(MINUTE, "the input to take frames", || {
        metrics
            .latest(".module.input.events")
            .is_some_and(|events| events > 0.0)
    });
    std::thread::sleep(Duration::from_millis(500));
    let taken = metrics.latest(".module.input.events").unwrap() as usize;
    assert_eq!(taken, WINDOW, "frames taken while none is answered");

    let sink = Sink::start_on(&dir, "backend", backend, &[]);
    sink.wait_for_lines(FRAMES, MINUTE);
    let mut answers = BufReader::new(client.try_clone().unwrap());
    let mut line = String::new();
    // The open's answer spans lines (its offers), the last of them `commands`.
    while !line.starts_with("commands=") {
        line.clear();
        answers.read_line(&mut line).unwrap();
    }
    for number in 0..FRAMES {
        line.clear();
        answers.read_line(&mut line).unwrap();
        assert_eq!(line, format!("{} rsp 6 200 OK\n", number + 2));
    }
    assert!(wishbone.stop().success());
    let numbers: Vec<usize> = sink
        .received()
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| std::str::from_utf8(line).unwrap().parse().unwrap())
        .collect();
    assert_eq!(numbers, (0..FRAMES).collect::<Vec<_>>());
}

#[test]
fn a_refusal_is_held_back_so_a_client_that_sends_again_at_once_does_not_spin() {
    let dir = scratch_dir("relp-refusal");
    let relp_port = free_port();
    let nowhere = free_port();
    let bootstrap = format!(
        "modules:\n  input: {{module: wishbone.input.relp, arguments: {{address: 127.0.0.1, port: {relp_port}}}}}\n  \
         output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {nowhere}}}}}\n\
         routingtable:\n  - input.outbox -> output.inbox\n"
    );
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    wait_until(MINUTE, "the input to listen", || {
        TcpStream::connect(("127.0.0.1", relp_port)).is_ok()
    });
    wishbone.output.wait_for("peer unavailable", MINUTE);
    let mut client = TcpStream::connect(("127.0.0.1", relp_port)).unwrap();
    client
        .write_all(&frame(1, "open", b"relp_version=0\ncommands=syslog"))
        .unwrap();
    let mut answers = BufReader::new(client.try_clone().unwrap());
    let mut line = String::new();
    while !line.starts_with("commands=") {
        line.clear();
        answers.read_line(&mut line).unwrap();
    }
    // Like an eager client: each frame sent again as soon as it is refused.
    let started = std::time::Instant::now();
    let mut refusals = 0;
    while started.elapsed() < Duration::from_secs(3) {
        client
            .write_all(&frame(refusals + 2, "syslog", b"again"))
            .unwrap();
        line.clear();
        answers.read_line(&mut line).unwrap();
        assert!(line.contains(" rsp ") && line.contains("500"), "{line}");
        refusals += 1;
    }
    eprintln!("{refusals} refusals in {:?}", started.elapsed());
    assert!(refusals <= 4, "a refusal a second, not a spin: {refusals}");
    wishbone.signal(libc::SIGTERM);
    wishbone.wait(MINUTE);
}
