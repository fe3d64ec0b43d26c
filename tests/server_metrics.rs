//! The server's own metrics: a reload refused for a broken file is counted
//! in `server.reload_failures`, and one carried out in `server.reloads`, on
//! both paths: the Prometheus page (`wishbone_server_..._total`) and
//! Graphite's lines.

use std::time::Duration;

use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn a_refused_reload_is_counted_on_prometheus_and_graphite() {
    let dir = scratch_dir("server-metrics");
    let sink = Sink::start(&dir, "carbon");
    let config = format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         out: {{module: wishbone.output.null}}\n  \
         prometheus: {{module: wishbone.metrics.prometheus, arguments: {{port: 0}}}}\n  \
         graphite: {{module: wishbone.metrics.graphite, arguments: {{prefix: test, include_hostname: false}}}}\n  \
         carbon: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {}}}}}\n\
         routingtable:\n  - input.outbox -> out.inbox\n  - graphite.outbox -> carbon.inbox\n",
        sink.port
    );
    let mut wishbone = Wishbone::start(&dir, &config, &[]);
    let port = wishbone.logged_port("serving metrics for Prometheus");
    let failures = || {
        let page = http::request(port, "GET", "/metrics", None).ok()?;
        page.text().lines().find_map(|line| {
            line.strip_prefix("wishbone_server_reload_failures_total ")?
                .parse::<f64>()
                .ok()
        })
    };
    let path = dir.join("bootstrap.yaml");
    assert!(
        path.exists(),
        "the bootstrap file is where the harness wrote it"
    );
    std::fs::write(&path, "modules: [broken").unwrap();
    wishbone.signal(libc::SIGHUP);
    wishbone.output.wait_for("reload refused", MINUTE);
    wait_until(MINUTE, "the page to count the refusal", || {
        failures() == Some(1.0)
    });
    wait_until(MINUTE, "Graphite's lines to count it", || {
        String::from_utf8_lossy(&sink.received())
            .lines()
            .any(|line| line.starts_with("test.server.reload_failures 1 "))
    });
    assert!(wishbone.stop().success());
}
