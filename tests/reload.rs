//! SIGHUP reloads the bootstrap file: kept modules run on untouched (a
//! client's connection to a kept input never breaks), a changed flow is
//! replaced with its queue handed over, outputs come and go, a broken file
//! changes nothing, and every line arrives exactly once.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);

/// Scenario II, and with `third` the same with a third output.
fn scenario(ports: [u16; 3], third: bool) -> String {
    let mut text = scenario_2_bootstrap(ports[0], ports[1], "");
    if third {
        text = text.replace(
            "routingtable:\n",
            &format!(
                "  output_3: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {}, reconnect_max: 0.2}}}}\nroutingtable:\n",
                ports[2]
            ),
        );
        text.push_str("  - roundrobin.three -> output_3.inbox\n");
    }
    text
}

/// Writes `text` as the running bootstrap and sends SIGHUP; waits for the
/// `count`th line holding `outcome`.
fn reload(wishbone: &Wishbone, dir: &std::path::Path, text: &str, outcome: &str, count: usize) {
    std::fs::write(dir.join("bootstrap.yaml"), text).unwrap();
    wishbone.signal(libc::SIGHUP);
    wait_until(MINUTE, &format!("{outcome} #{count}"), || {
        wishbone.output.count(outcome) >= count
    });
}

#[test]
fn switching_files_under_traffic_loses_nothing_and_keeps_the_connection() {
    let dir = scratch_dir("reload-switch");
    let sinks: Vec<Sink> = (0..3)
        .map(|index| Sink::start(&dir, &format!("sink_{index}")))
        .collect();
    let ports = [sinks[0].port, sinks[1].port, sinks[2].port];
    let mut wishbone = Wishbone::start(&dir, &scenario(ports, false), &[]);
    let input = wishbone.input_port("input");
    const LINES: usize = 600_000;
    let data = numbered_lines(LINES);
    // 100,000 lines a second: 1,000 lines every 10 ms, on one connection.
    let client = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", input)).unwrap();
        let started = Instant::now();
        let per_line = data.len() / LINES;
        for (index, chunk) in data.chunks(1_000 * per_line).enumerate() {
            stream.write_all(chunk).expect("the connection holds");
            let due = started + Duration::from_millis(10 * (index as u64 + 1));
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        stream.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let broken = "modules:\n  input: {module: wishbone.input.tcp, arguments: {port: not-a-port}}\n";
    let mut reloaded = 0;
    for switch in 0..6 {
        std::thread::sleep(Duration::from_millis(700));
        match switch {
            3 => reload(&wishbone, &dir, broken, "reload refused", 1),
            _ => {
                reloaded += 1;
                let third = reloaded % 2 == 1;
                reload(
                    &wishbone,
                    &dir,
                    &scenario(ports, third),
                    "reloaded:",
                    reloaded,
                );
            }
        }
    }
    client.join().expect("the client's connection never broke");
    let counts = || {
        let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
        for sink in &sinks {
            for number in line_numbers(&sink.received()) {
                *counts.entry(number).or_default() += 1;
            }
        }
        counts
    };
    wait_until(MINUTE, "every line at the sinks", || {
        sinks.iter().map(Sink::line_count).sum::<usize>() >= LINES
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(wishbone.stop().success());
    let counts = counts();
    assert_eq!(counts.len(), LINES, "every line arrived");
    let twice: Vec<_> = counts
        .iter()
        .filter(|(_, times)| **times > 1)
        .take(5)
        .collect();
    assert!(twice.is_empty(), "exactly once: {twice:?}");
    assert!(sinks[2].line_count() > 0, "the third output took lines");
    let log = wishbone.output.text();
    assert!(
        log.contains("not-a-port"),
        "the broken file's problem is logged"
    );
    assert_eq!(
        log.matches("reloaded: kept 3, started 1, replaced 1, stopped 0")
            .count(),
        3
    );
    assert_eq!(
        log.matches("reloaded: kept 3, started 0, replaced 1, stopped 1")
            .count(),
        2
    );
    for line in log.lines().filter(|line| line.contains("reloaded:")) {
        eprintln!("{line}");
    }
}
