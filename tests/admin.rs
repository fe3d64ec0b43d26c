//! The operator listener (`--admin`): `/health`, `/ready` turning 200 only
//! once an output's peer is up, and `wishbone tap` printing the events of
//! a running scenario II, waiting on an idle queue, and never holding the
//! pipeline back when it reads nothing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);

fn admin_port(wishbone: &Wishbone) -> u16 {
    wishbone.logged_port("graph page")
}

fn tap(port: u16, args: &[&str]) -> std::process::Child {
    Command::new(binary("wishbone"))
        .args(["tap", "--admin", &format!("127.0.0.1:{port}")])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn ready_only_once_the_outputs_peer_is_up_and_healthy_all_along() {
    let dir = scratch_dir("admin-ready");
    let port = free_port();
    let bootstrap = format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{port: 0}}}}\n  output_1: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {port}, reconnect_max: 0.2}}}}\nroutingtable:\n  - input.outbox -> output_1.inbox\n"
    );
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &["--admin", "127.0.0.1:0"]);
    let admin = admin_port(&wishbone);
    wishbone.input_port("input");
    assert_eq!(http::get(admin, "/health").status, 200);
    let waiting = http::get(admin, "/ready");
    assert_eq!(waiting.status, 503);
    assert!(
        waiting
            .text()
            .contains("module `output_1`: not connected to its peer yet"),
        "{}",
        waiting.text()
    );
    let sink = Sink::start_on(&dir, "late", port, &[]);
    wait_until(MINUTE, "/ready to answer 200", || {
        http::get(admin, "/ready").status == 200
    });
    send(wishbone.input_port("input"), &numbered_lines(10));
    sink.wait_for_lines(10, MINUTE);
    assert!(wishbone.stop().success());
}

/// Scenario II with the operator listener on a free port: its sinks, the
/// server and the listener's port.
fn scenario_two_with_admin(dir: &std::path::Path) -> ([Sink; 2], Wishbone, u16) {
    let (one, two) = (Sink::start(dir, "one"), Sink::start(dir, "two"));
    let wishbone = Wishbone::start(
        dir,
        &scenario_2_bootstrap(one.port, two.port, ""),
        &["--admin", "127.0.0.1:0"],
    );
    let admin = admin_port(&wishbone);
    ([one, two], wishbone, admin)
}

#[test]
fn a_tap_prints_what_scenario_two_was_sent_and_waits_on_an_idle_queue() {
    let dir = scratch_dir("admin-tap");
    let ([one, two], mut wishbone, admin) = scenario_two_with_admin(&dir);
    let input = wishbone.input_port("input");
    let mut idle = tap(admin, &["output_1.failed"]);
    let mut five = tap(admin, &["input.outbox", "--limit", "5"]);
    // Lines keep coming until the tap has its five.
    let started = Instant::now();
    let mut sent = 0;
    while five.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < MINUTE, "the tap never got five events");
        send(input, &numbered_lines(100));
        sent += 100;
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = five.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 5, "{printed}");
    let numbers: Vec<usize> = line_numbers(printed.as_bytes()).collect();
    assert_eq!(
        numbers.len(),
        5,
        "each one of the numbered lines sent: {printed}"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("tap: 5 events"));
    assert!(
        idle.try_wait().unwrap().is_none(),
        "a tap on an idle queue waits"
    );
    idle.kill().unwrap();
    idle.wait().unwrap();
    one.wait_for_lines(sent / 2, MINUTE);
    two.wait_for_lines(sent / 2, MINUTE);
    assert!(wishbone.stop().success());
}

#[test]
fn a_tap_that_reads_nothing_does_not_hold_the_pipeline_back() {
    let dir = scratch_dir("admin-stuck-tap");
    let ([one, two], mut wishbone, admin) = scenario_two_with_admin(&dir);
    // The operator listener answers before the pipeline's queues exist;
    // once the input listens, they do.
    let input = wishbone.input_port("input");
    let mut stuck = TcpStream::connect(("127.0.0.1", admin)).unwrap();
    write!(
        stuck,
        "GET /api/tap?queue=input.outbox HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 12];
    stuck.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200", "the tap is attached");
    // Never read again: a million lines go through all the same.
    const LINES: usize = 1_000_000;
    send(input, &numbered_lines(LINES));
    one.wait_for_lines(LINES / 2, MINUTE);
    two.wait_for_lines(LINES / 2, MINUTE);
    assert!(wishbone.stop().success());
    drop(stuck);
}
