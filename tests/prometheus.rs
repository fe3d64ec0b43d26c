//! `wishbone.metrics.prometheus` scraped by a real Prometheus (Debian's,
//! started by the test on loopback): scenario II's totals as Prometheus
//! reads them, and a page `promtool check metrics` finds nothing wrong
//! with.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);
const LINES: usize = 300_000;

/// Scenario II with the Prometheus module on a free port.
fn scenario_2_with_prometheus(port_1: u16, port_2: u16) -> String {
    scenario_2_bootstrap(port_1, port_2, "").replace(
        "routingtable:",
        "  prometheus: {module: wishbone.metrics.prometheus, arguments: {port: 0}}\nroutingtable:",
    )
}

/// The port the Prometheus module serves on, from its log line.
fn metrics_port(wishbone: &Wishbone) -> u16 {
    wishbone.logged_port("serving metrics for Prometheus")
}

#[test]
fn prometheus_reads_scenario_twos_totals_and_promtool_finds_the_page_clean() {
    let dir = scratch_dir("prometheus");
    let (one, two) = (Sink::start(&dir, "one"), Sink::start(&dir, "two"));
    let mut wishbone = Wishbone::start(&dir, &scenario_2_with_prometheus(one.port, two.port), &[]);
    let port = metrics_port(&wishbone);
    let prometheus = Prometheus::start(&dir.join("prometheus"), port, "/metrics");
    send(wishbone.input_port("input"), &numbered_lines(LINES));
    one.wait_for_lines(LINES / 2, MINUTE);
    two.wait_for_lines(LINES / 2, MINUTE);
    let queue = "sum(wishbone_queue_in_total{module=\"input\",queue=\"outbox\"})";
    let delivered = "sum(wishbone_module_delivered_total)";
    wait_until(MINUTE, "Prometheus to read every line's totals", || {
        prometheus.query(queue) == Some(LINES as f64)
            && prometheus.query(delivered) == Some(LINES as f64)
    });
    assert_eq!(
        prometheus.series("wishbone_module_connected"),
        2,
        "a gauge per output"
    );

    let page = wishbone_e2e::http::get(port, "/metrics");
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .is_some_and(|kind| kind.starts_with("text/plain; version=0.0.4"))
    );
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(page.text().as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    let post = wishbone_e2e::http::request(port, "POST", "/metrics", Some("x")).unwrap();
    assert_eq!(post.status, 405);
    assert_eq!(wishbone_e2e::http::get(port, "/other").status, 404);
    assert!(wishbone.stop().success());
}

/// Every PromQL expression of the Prometheus dashboard, with its panel's
/// title, the dashboard's variables given values.
fn dashboard_queries(instance: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("dashboards/grafana-wishbone-prometheus.json"),
    )
    .unwrap();
    let board: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut queries = Vec::new();
    for panel in board["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$instance", instance)
                .replace("$module", ".*")
                .replace("$__rate_interval", "30s");
            queries.push((panel["title"].as_str().unwrap().to_string(), expr));
        }
    }
    queries
}

#[test]
fn every_panel_of_the_prometheus_dashboard_has_data() {
    let dir = scratch_dir("prometheus-dashboard");
    let (one, two) = (Sink::start(&dir, "one"), Sink::start(&dir, "two"));
    let mut wishbone = Wishbone::start(&dir, &scenario_2_with_prometheus(one.port, two.port), &[]);
    let port = metrics_port(&wishbone);
    let prometheus = Prometheus::start(&dir.join("prometheus"), port, "/metrics");
    let input = wishbone.input_port("input");
    // Traffic over several scrapes, so that every rate has two samples.
    for _ in 0..4 {
        send(input, &numbered_lines(10_000));
        std::thread::sleep(Duration::from_millis(1500));
    }
    let queries = dashboard_queries(&format!("127.0.0.1:{port}"));
    assert_eq!(queries.len(), 9, "one query per panel");
    for (title, query) in &queries {
        wait_until(MINUTE, &format!("data for `{title}`: {query}"), || {
            prometheus.series(query) > 0
        });
    }
    assert!(wishbone.stop().success());
}

/// A value of the page on `port`; none while the page or the sample is
/// missing.
fn sample(port: u16, series: &str) -> Option<f64> {
    let page = wishbone_e2e::http::request(port, "GET", "/metrics", None).ok()?;
    page.text()
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// A free port whose next port is free too.
fn two_free_ports() -> u16 {
    loop {
        let port = free_port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

#[test]
fn under_instances_each_serves_its_own_port_and_their_sum_is_the_servers_total() {
    const CLIENTS: usize = 10;
    let dir = scratch_dir("prometheus-instances");
    let sink = Sink::start(&dir, "backend");
    let (input, metrics) = (free_port(), two_free_ports());
    let config = dir.join("service.yaml");
    std::fs::write(
        &config,
        format!(
            "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: {input}}}}}\n  \
             output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {}}}}}\n  \
             prometheus: {{module: wishbone.metrics.prometheus, arguments: {{port: {metrics}}}}}\n\
             routingtable:\n  - input.outbox -> output.inbox\n",
            sink.port
        ),
    )
    .unwrap();
    let pid_file = dir.join("wishbone.pid");
    let mut launcher = Command::new(binary("wishbone"))
        .arg("start")
        .arg("--config")
        .arg(&config)
        .arg("--pid")
        .arg(&pid_file)
        .args(["--instances", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let series = "wishbone_queue_in_total{module=\"input\",queue=\"outbox\"}";
    wait_until(MINUTE, "both instances to serve their page", || {
        sample(metrics, series).is_some() && sample(metrics + 1, series).is_some()
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| std::thread::spawn(move || send(input, &numbered_lines(1000))))
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    sink.wait_for_lines(CLIENTS * 1000, MINUTE);
    let mut seen = (0.0, 0.0);
    wait_until(MINUTE, "the two pages to add up to every line", || {
        seen = (
            sample(metrics, series).unwrap_or(0.0),
            sample(metrics + 1, series).unwrap_or(0.0),
        );
        seen.0 + seen.1 == (CLIENTS * 1000) as f64
    });
    eprintln!("instance 0 counted {}, instance 1 {}", seen.0, seen.1);
    let stopped = Command::new(binary("wishbone"))
        .arg("stop")
        .arg("--pid")
        .arg(&pid_file)
        .output()
        .unwrap();
    assert!(stopped.status.success());
    assert!(launcher.wait().unwrap().success());
}

#[test]
fn graphite_and_prometheus_in_one_file_report_the_same_totals() {
    let dir = scratch_dir("prometheus-and-carbon");
    let carbon = Carbon::start(&dir.join("carbon"));
    let sink = Sink::start(&dir, "backend");
    let bootstrap = carbon_route_bootstrap(
        carbon.port,
        sink.port,
        "  prometheus: {module: wishbone.metrics.prometheus, arguments: {port: 0}}\n",
    );
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &["--frequency", "1"]);
    let port = metrics_port(&wishbone);
    const LINES: usize = 30_000;
    send(wishbone.input_port("input"), &numbered_lines(LINES));
    sink.wait_for_lines(LINES, MINUTE);
    let host = hostname_segment();
    for (path, series) in [
        (
            format!("wishbone.{host}.queue.input.outbox.in_total"),
            "wishbone_queue_in_total{module=\"input\",queue=\"outbox\"}",
        ),
        (
            format!("wishbone.{host}.queue.output.inbox.out_total"),
            "wishbone_queue_out_total{module=\"output\",queue=\"inbox\"}",
        ),
        (
            format!("wishbone.{host}.module.output.delivered"),
            "wishbone_module_delivered_total{module=\"output\"}",
        ),
    ] {
        carbon.wait_for(&path, LINES as f64);
        wait_until(MINUTE, series, || {
            sample(port, series) == Some(LINES as f64)
        });
        assert_eq!(
            carbon.latest(&path),
            sample(port, series),
            "{path} and {series}"
        );
    }
    assert!(wishbone.stop().success());
}

#[test]
fn a_filters_unrouted_rejected_is_discarded_not_dropped() {
    let dir = scratch_dir("prometheus-discarded");
    let sink = Sink::start(&dir, "errors");
    let bootstrap = format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{port: 0}}}}\n  warn: {{module: wishbone.flow.filter, arguments: {{condition: '.level == \"error\"'}}}}\n  output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {}}}}}\n  prometheus: {{module: wishbone.metrics.prometheus, arguments: {{port: 0}}}}\nroutingtable:\n  - input.outbox -> warn.inbox\n  - warn.outbox -> output.inbox\n",
        sink.port
    );
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    let port = metrics_port(&wishbone);
    let prometheus = Prometheus::start(&dir.join("prometheus"), port, "/metrics");
    let lines: String = (0..250)
        .map(|i| match i % 5 < 2 {
            true => format!("{{\"level\":\"error\",\"n\":{i}}}\n"),
            false => format!("{{\"level\":\"info\",\"n\":{i}}}\n"),
        })
        .collect();
    send(wishbone.input_port("input"), lines.as_bytes());
    sink.wait_for_lines(100, MINUTE);
    let rejected = "{module=\"warn\",queue=\"rejected\"}";
    let discarded = format!("sum(wishbone_queue_discarded_total{rejected})");
    wait_until(MINUTE, "Prometheus to read the discarded total", || {
        prometheus.query(&discarded) == Some(150.0)
    });
    assert_eq!(
        prometheus.query(&format!("sum(wishbone_queue_dropped_total{rejected})")),
        Some(0.0),
        "filtering is not loss"
    );
    assert_eq!(
        prometheus.query("sum(wishbone_queue_dropped_total)"),
        Some(0.0),
        "nothing was lost anywhere"
    );
    assert!(wishbone.stop().success());
    assert_eq!(
        wishbone.queue_total("warn.rejected", "discarded_total"),
        150
    );
    assert_eq!(wishbone.queue_total("warn.rejected", "dropped_total"), 0);
    assert_eq!(sink.line_count(), 100);
}
