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

#[test]
fn a_new_max_line_length_or_delimiter_keeps_the_open_connection() {
    let dir = scratch_dir("reload-line-length");
    let sink = Sink::start(&dir, "sink");
    let bootstrap = |length: usize| {
        format!(
            "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0, max_line_length: {length}}}}}\n  \
             output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {}}}}}\n\
             routingtable:\n  - input.outbox -> output.inbox\n",
            sink.port
        )
    };
    let mut wishbone = Wishbone::start(&dir, &bootstrap(10), &[]);
    let mut client = TcpStream::connect(("127.0.0.1", wishbone.input_port("input"))).unwrap();
    client.write_all(b"0123456789ABCDEF\n").unwrap();
    sink.wait_for_lines(1, MINUTE);
    reload(
        &wishbone,
        &dir,
        &bootstrap(100),
        "reloaded: kept 2, started 0, replaced 0, stopped 0",
        1,
    );
    wishbone.output.wait_for("new line cutting", MINUTE);
    client.write_all(b"0123456789ABCDEF\n").unwrap();
    sink.wait_for_lines(2, MINUTE);
    assert_eq!(
        sink.received(),
        b"0123456789\n0123456789ABCDEF\n",
        "the same connection, the new limit"
    );
    drop(client);
    assert!(wishbone.stop().success());
}

#[test]
fn new_listening_settings_keep_the_input_and_its_clients() {
    let dir = scratch_dir("reload-listening");
    let sink = Sink::start(&dir, "sink");
    let bootstrap = |slots: usize| {
        format!(
            "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0, max_connections: {slots}}}}}\n  \
             output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {}}}}}\n\
             routingtable:\n  - input.outbox -> output.inbox\n",
            sink.port
        )
    };
    let mut wishbone = Wishbone::start(&dir, &bootstrap(1), &[]);
    let port = wishbone.input_port("input");
    let mut first = TcpStream::connect(("127.0.0.1", port)).unwrap();
    first.write_all(b"first\n").unwrap();
    sink.wait_for_lines(1, MINUTE);
    reload(
        &wishbone,
        &dir,
        &bootstrap(3),
        "reloaded: kept 2, started 0, replaced 0, stopped 0",
        1,
    );
    wishbone.output.wait_for("new listening settings", MINUTE);
    let mut others: Vec<TcpStream> = ["second\n", "third\n"]
        .iter()
        .map(|line| {
            let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
            client.write_all(line.as_bytes()).unwrap();
            client
        })
        .collect();
    sink.wait_for_lines(3, MINUTE);
    first.write_all(b"first again\n").unwrap();
    sink.wait_for_lines(4, MINUTE);
    others.clear();
    drop(first);
    assert!(wishbone.stop().success());
    let totals = wishbone.output.text();
    let totals = totals
        .lines()
        .find(|line| line.contains("input totals"))
        .unwrap();
    assert!(
        totals.contains("connections=3") && totals.contains("evicted=0"),
        "{totals}"
    );
}

#[test]
fn removing_an_output_whose_peer_is_down_drains_on_its_own_within_the_drain_timeout() {
    let dir = scratch_dir("reload-remove-down");
    let sink = Sink::start(&dir, "sink");
    let up = format!(
        "  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {}}}}}\n",
        sink.port
    );
    let down = format!(
        "  other: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         down: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {}, reconnect_max: 0.2}}}}\n",
        free_port()
    );
    let both = format!(
        "modules:\n{up}{down}routingtable:\n  - input.outbox -> output.inbox\n  - other.outbox -> down.inbox\n"
    );
    let mut wishbone = Wishbone::start(&dir, &both, &["--drain-timeout", "1"]);
    let other = wishbone.input_port("other");
    send(other, &numbered_lines(100));
    wishbone.output.wait_for("peer unavailable", MINUTE);
    std::thread::sleep(Duration::from_millis(300));
    let began = Instant::now();
    let only_up = format!("modules:\n{up}routingtable:\n  - input.outbox -> output.inbox\n");
    reload(
        &wishbone,
        &dir,
        &only_up,
        "reloaded: kept 2, started 0, replaced 0, stopped 2",
        1,
    );
    let took = began.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "bounded by the drain timeout: {took:?}"
    );
    let reloaded = wishbone.output.wait_for("reloaded: kept 2", MINUTE);
    let elapsed: f64 = field(&reloaded, "elapsed_ms")
        .unwrap()
        .trim_matches('"')
        .parse()
        .unwrap();
    assert!(
        elapsed < 1000.0,
        "the reload does not wait for a removed module's drain: {elapsed} ms"
    );
    let report = wishbone
        .output
        .wait_for("a module stopped by the reload ended with an error", MINUTE);
    assert!(
        report.contains("module=down") && report.contains("undelivered=100"),
        "{report}"
    );
    send(wishbone.input_port("input"), &numbered_lines(10));
    sink.wait_for_lines(10, MINUTE);
    wishbone.stop();
}

#[test]
fn a_wal_with_a_path_survives_a_new_read_count_and_delivers_each_event_once() {
    let dir = scratch_dir("reload-wal");
    let sink = Sink::start(&dir, "sink");
    let wal = dir.join("wal");
    let bootstrap = |read_count: usize| {
        format!(
            "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
             wal: {{module: wishbone.flow.wal, arguments: {{path: \"{}\", read_count: {read_count}, max_elements: 1000000, max_bytes: 100000000, when_full: block}}}}\n  \
             output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {}, reconnect_max: 0.2}}}}\n\
             routingtable:\n  - input.outbox -> wal.inbox\n  - wal.outbox -> output.inbox\n",
            wal.display(),
            sink.port
        )
    };
    let mut wishbone = Wishbone::start(&dir, &bootstrap(20), &[]);
    const LINES: usize = 200_000;
    let data = numbered_lines(LINES);
    let input = wishbone.input_port("input");
    let client = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", input)).unwrap();
        for chunk in data.chunks(data.len() / 40 + 1) {
            stream.write_all(chunk).expect("the connection holds");
            std::thread::sleep(Duration::from_millis(25));
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    reload(&wishbone, &dir, &bootstrap(100), "reloaded:", 1);
    std::thread::sleep(Duration::from_millis(300));
    reload(&wishbone, &dir, &bootstrap(20), "reloaded:", 2);
    client.join().unwrap();
    wait_until(MINUTE, "every line at the sink", || {
        sink.line_count() >= LINES
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(wishbone.stop().success());
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    for number in line_numbers(&sink.received()) {
        *counts.entry(number).or_default() += 1;
    }
    assert_eq!(counts.len(), LINES);
    let twice = counts.values().filter(|times| **times > 1).count();
    assert_eq!(twice, 0, "each kept event once");
    assert!(wishbone.output.text().contains("replaced 1"));
}

/// Descriptors, threads and resident memory of a process now.
fn resources(pid: u32) -> (usize, u64, u64) {
    let descriptors = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count());
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|value| value.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (descriptors, field("Threads:"), field("VmRSS:"))
}

#[test]
fn a_hundred_reloads_under_traffic_grow_nothing() {
    let dir = scratch_dir("reload-hundred");
    let sinks: Vec<Sink> = (0..3)
        .map(|index| Sink::start(&dir, &format!("sink_{index}")))
        .collect();
    let ports = [sinks[0].port, sinks[1].port, sinks[2].port];
    let mut wishbone = Wishbone::start(&dir, &scenario(ports, false), &[]);
    let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let traffic = steady_traffic(wishbone.input_port("input"), running.clone());
    // Ten reloads first, so that what a reload allocates once is in place.
    let mut done = 0;
    let switch = |wishbone: &Wishbone, done: &mut usize| {
        *done += 1;
        reload(
            wishbone,
            &dir,
            &scenario(ports, *done % 2 == 1),
            "reloaded:",
            *done,
        );
    };
    for _ in 0..10 {
        switch(&wishbone, &mut done);
    }
    std::thread::sleep(Duration::from_millis(300));
    let before = resources(wishbone.pid());
    for _ in 0..100 {
        switch(&wishbone, &mut done);
    }
    std::thread::sleep(Duration::from_millis(300));
    let after = resources(wishbone.pid());
    running.store(false, std::sync::atomic::Ordering::Relaxed);
    let sent = traffic.join().unwrap();
    wait_until(MINUTE, "every line at the sinks", || {
        sinks.iter().map(Sink::line_count).sum::<usize>() >= sent
    });
    assert!(wishbone.stop().success());
    eprintln!(
        "after 10 reloads: {} descriptors, {} threads, {} KiB resident; after 100 more: {} descriptors, {} threads, {} KiB",
        before.0, before.1, before.2, after.0, after.1, after.2
    );
    // Both counts are taken with the same file running (10 and 110 reloads).
    assert_eq!(after.0, before.0, "descriptors");
    assert_eq!(after.1, before.1, "threads");
    assert!(
        after.2 < before.2 + 8 * 1024,
        "resident memory grew by {} KiB",
        after.2 - before.2
    );
    assert_eq!(
        sinks.iter().map(Sink::line_count).sum::<usize>(),
        sent,
        "every line once"
    );
}

#[test]
fn the_metrics_of_a_removed_module_are_no_longer_reported() {
    let dir = scratch_dir("reload-metrics");
    let sinks: Vec<Sink> = (0..3)
        .map(|index| Sink::start(&dir, &format!("sink_{index}")))
        .collect();
    let ports = [sinks[0].port, sinks[1].port, sinks[2].port];
    let metrics = PlaintextMetrics::start();
    let address = metrics.address();
    let mut wishbone = Wishbone::start(
        &dir,
        &scenario(ports, true),
        &["--graphite", &address, "--frequency", "0.05"],
    );
    send(wishbone.input_port("input"), &numbered_lines(3_000));
    wait_until(MINUTE, "the third output's metrics", || {
        metrics.latest(".module.output_3.delivered") == Some(1_000.0)
            && metrics.latest(".queue.output_3.inbox.out_total") == Some(1_000.0)
    });
    reload(&wishbone, &dir, &scenario(ports, false), "reloaded:", 1);
    std::thread::sleep(Duration::from_millis(200));
    metrics.clear();
    wait_until(MINUTE, "reports after the reload", || {
        metrics.latest(".queue.output_1.inbox.out_total").is_some()
            && metrics.latest(".module.output_1.delivered").is_some()
    });
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(metrics.latest(".module.output_3.delivered"), None);
    assert_eq!(metrics.latest(".queue.output_3.inbox.out_total"), None);
    assert!(wishbone.stop().success());
}

#[test]
fn the_graph_api_shows_the_reloaded_pipeline() {
    let dir = scratch_dir("reload-graph");
    let sinks: Vec<Sink> = (0..3)
        .map(|index| Sink::start(&dir, &format!("sink_{index}")))
        .collect();
    let ports = [sinks[0].port, sinks[1].port, sinks[2].port];
    let mut wishbone = Wishbone::start(&dir, &scenario(ports, false), &["--graph", "127.0.0.1:0"]);
    let graph = wishbone.logged_port("graph page");
    let names = || -> Vec<String> {
        wishbone_e2e::http::get(graph, "/api/pipeline").json()["modules"]
            .as_array()
            .map(|modules| {
                modules
                    .iter()
                    .filter_map(|module| Some(module["name"].as_str()?.to_string()))
                    .collect()
            })
            .unwrap_or_default()
    };
    wait_until(MINUTE, "the first pipeline", || names().len() == 4);
    reload(&wishbone, &dir, &scenario(ports, true), "reloaded:", 1);
    wait_until(MINUTE, "the third output on the page", || {
        names().contains(&"output_3".to_string())
    });
    reload(&wishbone, &dir, &scenario(ports, false), "reloaded:", 2);
    wait_until(MINUTE, "the third output gone from the page", || {
        names() == ["input", "roundrobin", "output_1", "output_2"]
    });
    assert!(wishbone.stop().success());
}

#[test]
fn an_output_replaced_while_its_peer_is_down_hands_what_it_held_to_its_replacement() {
    let dir = scratch_dir("reload-replace-down");
    let port = free_port();
    let bootstrap = |more: &str| {
        format!(
            "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
             funnel: {{module: wishbone.flow.funnel}}\n  \
             output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {port}, reconnect_max: 0.2{more}}}}}\n\
             routingtable:\n  - input.outbox -> funnel.inbox\n  - funnel.outbox -> output.inbox\n"
        )
    };
    let mut wishbone = Wishbone::start(&dir, &bootstrap(""), &["--drain-timeout", "2"]);
    send(wishbone.input_port("input"), &numbered_lines(2000));
    wishbone.output.wait_for("peer unavailable", MINUTE);
    // Time for the output to take what its inbox has and hold it (a
    // queue's worth); the rest waits in the queue. Both must arrive.
    std::thread::sleep(Duration::from_millis(500));
    reload(
        &wishbone,
        &dir,
        &bootstrap(", timeout: 11"),
        "reloaded: kept 2, started 0, replaced 1",
        1,
    );
    assert_eq!(
        wishbone.output.count("aborted"),
        0,
        "nothing aborted:\n{}",
        wishbone.output.text()
    );
    let sink = Sink::start_on(&dir, "sink", port, &[]);
    sink.wait_for_lines(2000, MINUTE);
    let status = wishbone.stop();
    assert!(
        status.success(),
        "exit {status:?}\n{}",
        wishbone.output.text()
    );
    let received = sink.received();
    let mut numbers: Vec<usize> = line_numbers(&received).collect();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), 2000, "every line");
    assert_eq!(sink.line_count(), 2000, "each once");
}

#[test]
fn a_reload_that_moves_a_wal_to_another_path_is_refused_with_the_reason() {
    let dir = scratch_dir("reload-wal-path");
    let port = free_port();
    let bootstrap = |path: &str| {
        format!(
            "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
             wal: {{module: wishbone.flow.wal, arguments: {{path: {}}}}}\n  \
             output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {port}, reconnect_max: 0.2}}}}\n\
             routingtable:\n  - input.outbox -> wal.inbox\n  - wal.outbox -> output.inbox\n",
            dir.join(path).display()
        )
    };
    let mut wishbone = Wishbone::start(&dir, &bootstrap("walA"), &[]);
    send(wishbone.input_port("input"), &numbered_lines(1000));
    wishbone.output.wait_for("peer unavailable", MINUTE);
    reload(&wishbone, &dir, &bootstrap("walB"), "reload refused", 1);
    let refused = wishbone.output.wait_for("reload refused", MINUTE);
    assert!(
        refused.contains("module `wal`") && refused.contains("would be stranded"),
        "{refused}"
    );
    let sink = Sink::start_on(&dir, "sink", port, &[]);
    sink.wait_for_lines(1000, MINUTE);
    let status = wishbone.stop();
    assert!(
        status.success(),
        "exit {status:?}\n{}",
        wishbone.output.text()
    );
    assert_eq!(sink.line_count(), 1000, "every line once, from the old log");
}

#[test]
fn a_hostile_reload_is_refused_while_delivery_goes_on() {
    let dir = scratch_dir("reload-nested");
    let sink = Sink::start(&dir, "sink");
    let bootstrap = proxy_bootstrap(sink.port);
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    let input = wishbone.input_port("input");
    let nested = format!("modules: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    reload(&wishbone, &dir, &nested, "reload refused", 1);
    send(input, &numbered_lines(1000));
    sink.wait_for_lines(1000, MINUTE);
    let status = wishbone.stop();
    assert!(
        status.success(),
        "exit {status:?}\n{}",
        wishbone.output.text()
    );
    assert!(wishbone.output.text().contains("nested deeper than 64"));
}

#[test]
fn a_fanout_put_in_front_of_an_output_keeps_that_output_and_its_totals() {
    let dir = scratch_dir("reload-fanout");
    let (first, second) = (Sink::start(&dir, "first"), Sink::start(&dir, "second"));
    let output = |name: &str, port: u16| {
        format!(
            "  {name}: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {port}}}}}\n"
        )
    };
    let input = "  input: {module: wishbone.input.tcp, arguments: {port: 0}}\n";
    let direct = format!(
        "modules:\n{input}{}routingtable:\n  - input.outbox -> output_1.inbox\n",
        output("output_1", first.port)
    );
    let fanned = format!(
        "modules:\n{input}  fanout: {{module: wishbone.flow.fanout}}\n{}{}routingtable:\n  - input.outbox -> fanout.inbox\n  - fanout.one -> output_1.inbox\n  - fanout.two -> output_2.inbox\n",
        output("output_1", first.port),
        output("output_2", second.port)
    );
    let mut wishbone = Wishbone::start(&dir, &direct, &[]);
    let port = wishbone.input_port("input");
    send(port, &numbered_lines(1_000));
    first.wait_for_lines(1_000, MINUTE);
    reload(&wishbone, &dir, &fanned, "reloaded:", 1);
    let line = wishbone.output.wait_for("reloaded:", MINUTE);
    assert!(
        line.contains("kept 2, started 2, replaced 0, stopped 0"),
        "{line}"
    );
    assert!(
        field(&line, "started").is_some_and(|names| names.contains("fanout")),
        "{line}"
    );
    assert!(
        line.contains("rewired=\"input output_1\""),
        "the kept modules are named: {line}"
    );
    send(port, &numbered_lines(500));
    first.wait_for_lines(1_500, MINUTE);
    second.wait_for_lines(500, MINUTE);
    assert!(wishbone.stop().success());
    assert_eq!(
        wishbone.queue_total("output_1.inbox", "in_total"),
        1_500,
        "the kept output's queue counts on from before the reload"
    );
    let connections = wishbone
        .output
        .text()
        .lines()
        .filter(|line| line.contains(" connected module=output_1 "))
        .count();
    assert_eq!(connections, 1, "the kept output never reconnected");
    assert_eq!(first.line_count(), 1_500);
    assert_eq!(second.line_count(), 500);
}
