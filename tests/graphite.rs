//! Queue metrics reach a real Graphite carbon: through the article's
//! `metrics:` section and a route, and straight from the exporter.

use std::time::Duration;

use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn scenario_one_queue_totals_reach_carbon_through_the_metrics_route() {
    let dir = scratch_dir("carbon-route");
    let carbon = Carbon::start(&dir.join("carbon"));
    let sink = Sink::start(&dir, "backend");
    let bootstrap = carbon_route_bootstrap(carbon.port, sink.port, "");
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &["--frequency", "1"]);
    send(wishbone.input_port("input"), &b"hello\n".repeat(10_000));
    sink.wait_for_lines(10_000, MINUTE);
    let base = format!("wishbone.{}.queue", hostname_segment());
    carbon.wait_for(&format!("{base}.input.outbox.in_total"), 10_000.0);
    carbon.wait_for(&format!("{base}.output.inbox.out_total"), 10_000.0);
    carbon.wait_for(
        &format!("wishbone.{}.module.output.delivered", hostname_segment()),
        10_000.0,
    );
    assert!(wishbone.stop().success());
}

#[test]
fn the_direct_form_needs_no_route() {
    let dir = scratch_dir("carbon-direct");
    let carbon = Carbon::start(&dir.join("carbon"));
    let sink = Sink::start(&dir, "backend");
    let address = format!("127.0.0.1:{}", carbon.port);
    let args = [
        "--frequency",
        "1",
        "--graphite",
        &address,
        "--graphite-prefix",
        "direct",
    ];
    let mut wishbone = Wishbone::start(&dir, &proxy_bootstrap(sink.port), &args);
    send(wishbone.input_port("input"), &b"hello\n".repeat(2_500));
    sink.wait_for_lines(2_500, MINUTE);
    carbon.wait_for(
        &format!("direct.{}.queue.input.outbox.in_total", hostname_segment()),
        2_500.0,
    );
    assert!(wishbone.stop().success());
}
