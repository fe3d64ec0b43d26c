//! The server's own metrics: a reload refused for a broken file is counted
//! in `server.reload_failures`, and one carried out in `server.reloads`
//! with its time in `server.last_reload_at`, beside the start's time and
//! the build's version, on both paths: the Prometheus page
//! (`wishbone_server_...`, `wishbone_build_info`) and Graphite's lines.

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
    let scraped = |metric: &str| {
        let page = http::request(port, "GET", "/metrics", None).ok()?;
        page.text().lines().find_map(|line| {
            line.strip_prefix(&format!("{metric} "))?
                .parse::<f64>()
                .ok()
        })
    };
    let graphite = |path: &str| -> Option<f64> {
        String::from_utf8_lossy(&sink.received())
            .lines()
            .rev()
            .filter_map(|line| line.strip_prefix(&format!("test.{path} ")))
            .find_map(|rest| rest.split(' ').next()?.parse().ok())
    };
    let failures = || scraped("wishbone_server_reload_failures_total");
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let version = env!("CARGO_PKG_VERSION");
    wait_until(
        MINUTE,
        "the start's time and the build on both paths",
        || {
            scraped("wishbone_server_started_at").is_some_and(|at| (at - started).abs() < 60.0)
                && scraped(&format!("wishbone_build_info{{version=\"{version}\"}}")) == Some(1.0)
                && scraped("wishbone_server_last_reload_at") == Some(0.0)
                && graphite("server.started_at").is_some_and(|at| (at - started).abs() < 60.0)
                && graphite(&format!("server.build_info.v{}", version.replace('.', "_")))
                    == Some(1.0)
        },
    );
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
        graphite("server.reload_failures") == Some(1.0)
    });
    assert_eq!(scraped("wishbone_server_last_reload_at"), Some(0.0));
    std::fs::write(&path, &config).unwrap();
    wishbone.signal(libc::SIGHUP);
    wishbone.output.wait_for("reloaded:", MINUTE);
    wait_until(MINUTE, "the reload's count and time on both paths", || {
        scraped("wishbone_server_reloads_total") == Some(1.0)
            && scraped("wishbone_server_last_reload_at").is_some_and(|at| at >= started.floor())
            && graphite("server.reloads") == Some(1.0)
            && graphite("server.last_reload_at").is_some_and(|at| at >= started.floor())
    });
    assert!(wishbone.stop().success());
}
