//! RELP in and out against real rsyslog processes on loopback: lines
//! arrive once each and in order, and none is lost while receivers and
//! `wishbone` itself are SIGKILLed mid-stream. Duplicates (RELP resends
//! what was not answered) are counted and reported.

use std::collections::BTreeMap;
use std::time::Duration;

use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);
const TWO_MINUTES: Duration = Duration::from_secs(120);

/// How many times each line number arrived.
fn arrivals(data: &[u8]) -> BTreeMap<usize, usize> {
    let mut counts = BTreeMap::new();
    for number in line_numbers(data) {
        *counts.entry(number).or_default() += 1;
    }
    counts
}

/// Every number below `lines` arrived; returns how many arrived twice or more.
fn all_arrived(counts: &BTreeMap<usize, usize>, lines: usize) -> usize {
    let missing: Vec<usize> = (0..lines)
        .filter(|n| !counts.contains_key(n))
        .take(10)
        .collect();
    assert!(missing.is_empty(), "lines missing (first 10): {missing:?}");
    assert_eq!(counts.len(), lines, "no line that was not sent");
    counts.values().map(|count| count - 1).sum()
}

#[test]
fn rsyslog_omrelp_into_the_relp_input_delivers_every_line_once_in_order() {
    let dir = scratch_dir("relp-in");
    const LINES: usize = 1_000_000;
    let wishbone = rsyslog_into_relp_input(&dir, LINES, false);
    assert!(
        wishbone
            .output
            .text()
            .contains(&format!("accepted={LINES} refused=0 malformed=0"))
    );
}

fn relp_output(port: u16, input: &str) -> String {
    format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         output: {{module: wishbone.output.relp, arguments: {{host: 127.0.0.1, port: {port}, timeout: 2, reconnect_initial: 0.05, reconnect_max: 0.2}}}}\n\
         routingtable:\n  - input.outbox -> {input}\n"
    )
}

#[test]
fn the_relp_output_loses_nothing_while_rsyslog_is_frozen_killed_and_restarted() {
    let dir = scratch_dir("relp-out");
    let mut receiver = Rsyslog::relp_sink(&dir.join("receiver"), 0);
    let mut wishbone = Wishbone::start(&dir, &relp_output(receiver.port, "output.inbox"), &[]);
    let input = wishbone.input_port("input");
    const LINES: usize = 1_000_000;
    send(input, &numbered_lines(LINES));
    wait_until(TWO_MINUTES, "every line at rsyslog", || {
        arrivals(&receiver.written()).len() == LINES
    });
    let duplicates = all_arrived(&arrivals(&receiver.written()), LINES);
    eprintln!("rsyslog up throughout: {LINES} lines, {duplicates} twice or more");
    assert_eq!(duplicates, 0, "nothing had to be sent again");

    // Again, with rsyslog frozen and killed five times mid-stream.
    let dir = scratch_dir("relp-out-kills");
    receiver = Rsyslog::relp_sink(&dir.join("receiver"), 0);
    drop(wishbone);
    wishbone = Wishbone::start(&dir, &relp_output(receiver.port, "output.inbox"), &[]);
    let input = wishbone.input_port("input");
    let sender = std::thread::spawn(move || send(input, &numbered_lines(LINES)));
    for kill in 0..5 {
        let reached = (kill + 1) * LINES / 7;
        wait_until(TWO_MINUTES, "lines to arrive before the next kill", || {
            receiver.written().iter().filter(|b| **b == b'\n').count() >= reached
        });
        receiver.signal(libc::SIGSTOP);
        std::thread::sleep(Duration::from_millis(200));
        receiver.restart_after_kill();
    }
    sender.join().unwrap();
    wait_until(TWO_MINUTES, "every line at rsyslog after the kills", || {
        arrivals(&receiver.written()).len() == LINES
    });
    assert!(wishbone.stop().success());
    let duplicates = all_arrived(&arrivals(&receiver.written()), LINES);
    eprintln!(
        "rsyslog frozen and killed 5 times: {LINES} lines, none missing, {duplicates} twice or more"
    );
}

/// rsyslog (imtcp → omrelp) → wishbone (relp in → wal on disk → round
/// robin → 2 × relp out) → 2 × rsyslog imrelp → files.
fn chain(dir: &std::path::Path, relp_port: u16, receivers: [u16; 2]) -> String {
    let mut text = format!(
        "modules:\n  input: {{module: wishbone.input.relp, arguments: {{address: 127.0.0.1, port: {relp_port}}}}}\n  \
         wal: {{module: wishbone.flow.wal, arguments: {{path: \"{}\", read_count: 1000, max_elements: 100000, max_bytes: 100000000, when_full: block}}}}\n  \
         roundrobin: {{module: wishbone.flow.roundrobin}}\n",
        dir.join("wal").display()
    );
    for (index, port) in receivers.iter().enumerate() {
        text += &format!(
            "  out{index}: {{module: wishbone.output.relp, arguments: {{host: 127.0.0.1, port: {port}, timeout: 2, reconnect_initial: 0.05, reconnect_max: 0.2}}}}\n"
        );
    }
    text += "routingtable:\n  - input.outbox -> wal.inbox\n  - wal.outbox -> roundrobin.inbox\n  \
             - roundrobin.out0 -> out0.inbox\n  - roundrobin.out1 -> out1.inbox\n";
    text
}

#[test]
fn a_chain_of_relp_hops_and_a_wal_on_disk_loses_nothing_when_any_process_is_killed() {
    let dir = scratch_dir("relp-chain");
    let mut receivers = [
        Rsyslog::relp_sink(&dir.join("receiver0"), 0),
        Rsyslog::relp_sink(&dir.join("receiver1"), 0),
    ];
    let relp_port = free_port();
    let bootstrap = chain(&dir, relp_port, [receivers[0].port, receivers[1].port]);
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    wishbone.output.wait_for("listening module=input", MINUTE);
    let sender = Rsyslog::relp_sender(&dir.join("sender"), relp_port);
    const LINES: usize = 500_000;
    let port = sender.port;
    let feeding = std::thread::spawn(move || send(port, &numbered_lines(LINES)));
    let received = |receivers: &[Rsyslog; 2]| {
        receivers
            .iter()
            .map(|receiver| receiver.written().iter().filter(|b| **b == b'\n').count())
            .sum::<usize>()
    };
    for kill in 0..5 {
        let reached = (kill + 1) * LINES / 8;
        wait_until(TWO_MINUTES, "lines to arrive before the next kill", || {
            received(&receivers) >= reached
        });
        wishbone.signal(libc::SIGKILL);
        wishbone.wait(MINUTE);
        if kill == 2 {
            receivers[1].restart_after_kill();
        }
        wishbone = Wishbone::start(&dir, &bootstrap, &[]);
        wishbone.output.wait_for("listening module=input", MINUTE);
    }
    feeding.join().unwrap();
    let all = |receivers: &[Rsyslog; 2]| {
        let mut data = receivers[0].written();
        data.extend(receivers[1].written());
        arrivals(&data)
    };
    wait_until(
        Duration::from_secs(180),
        "every line at the receivers",
        || all(&receivers).len() == LINES,
    );
    assert!(wishbone.stop().success());
    let duplicates = all_arrived(&all(&receivers), LINES);
    eprintln!(
        "wishbone killed 5 times, a receiver once: {LINES} lines, none missing, {duplicates} twice or more"
    );
}

#[test]
fn rsyslog_sends_relp_over_tls_to_the_relp_input() {
    let dir = scratch_dir("relp-tls");
    wishbone_e2e::tls::certificates(&dir, "a", &["server"]);
    rsyslog_into_relp_input(&dir, 100_000, true);
}

#[test]
fn the_relp_output_sends_over_tls_to_rsyslog() {
    let dir = scratch_dir("relp-tls-out");
    wishbone_e2e::tls::certificates(&dir, "a", &["server"]);
    let receiver = Rsyslog::relp_tls_sink(
        &dir.join("receiver"),
        &dir.join("a-server.pem"),
        &dir.join("a-server.key"),
        &dir.join("a-ca.pem"),
    );
    let bootstrap = format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         output: {{module: wishbone.output.relp, arguments: {{host: localhost, port: {}, reconnect_initial: 0.05, reconnect_max: 0.2, tls: {{ca: \"{}\"}}}}}}\n\
         routingtable:\n  - input.outbox -> output.inbox\n",
        receiver.port,
        dir.join("a-ca.pem").display()
    );
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    const LINES: usize = 100_000;
    let data = numbered_lines(LINES);
    send(wishbone.input_port("input"), &data);
    wait_until(TWO_MINUTES, "every line at rsyslog", || {
        receiver.written().len() == data.len()
    });
    assert!(wishbone.stop().success());
    assert_eq!(
        sha256(&receiver.written()),
        sha256(&data),
        "every line once, in order"
    );
}

/// rsyslog (imtcp → omrelp, over TLS when `tls`) → `wishbone.input.relp` →
/// tcp output → a sink: `lines` numbered lines arrive once each, in order.
/// Returns the stopped `wishbone`, for its log.
fn rsyslog_into_relp_input(dir: &std::path::Path, lines: usize, tls: bool) -> Wishbone {
    let sink = Sink::start(dir, "sink");
    let relp_port = free_port();
    let input_tls = if tls {
        format!(
            ", tls: {{cert: \"{}\", key: \"{}\"}}",
            dir.join("a-server.pem").display(),
            dir.join("a-server.key").display()
        )
    } else {
        String::new()
    };
    let bootstrap = format!(
        "modules:\n  input: {{module: wishbone.input.relp, arguments: {{address: 127.0.0.1, port: {relp_port}{input_tls}}}}}\n  \
         output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {}}}}}\n\
         routingtable:\n  - input.outbox -> output.inbox\n",
        sink.port
    );
    let mut wishbone = Wishbone::start(dir, &bootstrap, &[]);
    wishbone.output.wait_for("listening module=input", MINUTE);
    let sender = if tls {
        Rsyslog::relp_tls_sender(&dir.join("sender"), relp_port, &dir.join("a-ca.pem"))
    } else {
        Rsyslog::relp_sender(&dir.join("sender"), relp_port)
    };
    let data = numbered_lines(lines);
    send(sender.port, &data);
    sink.wait_for_lines(lines, TWO_MINUTES);
    assert!(wishbone.stop().success());
    assert_eq!(
        sha256(&sink.received()),
        sha256(&data),
        "every line once, in order"
    );
    wishbone
}
