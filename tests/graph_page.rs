//! `--graph`: the live page in real headless Chromium during scenario II
//! with traffic, the seed's round-robin demo, and `/api/pipeline`.
//!
//! With `WISHBONE_SCREENSHOTS=DIR` the tests also save what the page
//! showed, as docs/pictures holds it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);

/// The port of the graph page from the log line of a `wishbone` started with `--graph 127.0.0.1:0`.
fn graph_port(wishbone: &Wishbone) -> u16 {
    wishbone.logged_port("graph page")
}

fn screenshot(chromium: &mut Chromium, name: &str) {
    if let Ok(dir) = std::env::var("WISHBONE_SCREENSHOTS") {
        chromium.screenshot(&std::path::Path::new(&dir).join(name));
    }
}

/// Waits until the page has drawn `modules` modules and `routes` routes
/// (the queues are listed once the server has wired them).
fn wait_for_drawing(chromium: &mut Chromium, modules: usize, routes: usize) {
    wait_until(MINUTE, "the page to draw the pipeline", || {
        chromium.evaluate("document.querySelectorAll('g.module').length") == modules
            && chromium.evaluate("document.querySelectorAll('path.route').length") == routes
    });
}

/// Scenario II with `--graph` on a free port, and that port.
fn scenario_two_with_graph(dir: &std::path::Path) -> (Sink, Sink, Wishbone, u16) {
    let (one, two) = (Sink::start(dir, "one"), Sink::start(dir, "two"));
    let wishbone = Wishbone::start(
        dir,
        &scenario_2_bootstrap(one.port, two.port, ""),
        &["--graph", "127.0.0.1:0"],
    );
    let port = graph_port(&wishbone);
    (one, two, wishbone, port)
}

/// The queue rows whose figures run over their queue's name or out of
/// their box, by `module.queue`.
const CRAMPED: &str = "[...document.querySelectorAll('g.queue')].filter(row => {
  const [name, figures] = [...row.querySelectorAll('text')].map(t => t.getBBox());
  const box = row.closest('g.module').querySelector('rect.box').getBBox();
  return name.x + name.width > figures.x || figures.x + figures.width > box.x + box.width
    || name.x < box.x;
}).map(row => row.dataset.queue)";

/// How many routes pass through the box of a module that is not one of
/// their ends (sampled every 2 pixels along each route).
const CROSSINGS: &str = "(() => {
  const boxes = [...document.querySelectorAll('g.module')].map(g => ({
    name: g.dataset.module, box: g.querySelector('rect.box').getBBox() }));
  let crossings = 0;
  for (const path of document.querySelectorAll('path.route')) {
    const ends = path.dataset.route.split(' -> ').map(end => end.split('.')[0]);
    const length = path.getTotalLength(), points = [];
    for (let at = 0; at <= length; at += 2) points.push(path.getPointAtLength(at));
    crossings += boxes.filter(({ name, box }) => !ends.includes(name) && points.some(p =>
      p.x > box.x + 2 && p.x < box.x + box.width - 2 && p.y > box.y + 2 && p.y < box.y + box.height - 2)).length;
  }
  return crossings; })()";

fn drawn(chromium: &mut Chromium, selector: &str) -> bool {
    chromium.evaluate(&format!("document.querySelector({selector:?}) !== null")) == true
}

#[test]
fn the_page_draws_scenario_two_and_follows_its_traffic() {
    let dir = scratch_dir("graph-scenario-2");
    let (one, two, mut wishbone, port) = scenario_two_with_graph(&dir);
    let input = wishbone.input_port("input");
    wishbone
        .output
        .wait_for("connected module=output_2", MINUTE);
    wishbone
        .output
        .wait_for("connected module=output_1", MINUTE);

    let mut chromium = Chromium::open(&dir, &format!("http://127.0.0.1:{port}/"));
    wait_for_drawing(&mut chromium, 4, 3);
    for module in ["input", "roundrobin", "output_1", "output_2"] {
        assert!(
            drawn(&mut chromium, &format!("g.module[data-module='{module}']")),
            "{module} drawn"
        );
    }
    for route in [
        "input.outbox -> roundrobin.inbox",
        "roundrobin.one -> output_1.inbox",
        "roundrobin.two -> output_2.inbox",
    ] {
        assert!(
            drawn(&mut chromium, &format!("path.route[data-route='{route}']")),
            "{route} drawn"
        );
    }
    wait_until(MINUTE, "both outputs shown connected", || {
        chromium.evaluate("document.querySelectorAll('g.module.output circle.up').length") == 2
    });
    let rate =
        "document.querySelector(\"[data-queue='input.outbox'] [data-stat='in_rate']\").textContent";
    let idle = chromium.evaluate(rate);
    assert_eq!(idle, "in 0/s", "no traffic yet");
    chromium.evaluate("window.loadedOnce = true");
    let first_look = chromium.evaluate("document.body.dataset.timestamp");

    let running = Arc::new(AtomicBool::new(true));
    let traffic = steady_traffic(input, running.clone());
    let mut busy = idle.clone();
    wait_until(MINUTE, "the page to show the input's rate change", || {
        busy = chromium.evaluate(rate);
        busy != idle
    });
    let busy_rate: f64 = busy
        .as_str()
        .unwrap()
        .trim_start_matches("in ")
        .trim_end_matches("/s")
        .trim_end_matches('k')
        .parse()
        .unwrap();
    assert!(busy_rate > 0.0, "a rate above 0: {busy}");
    assert_eq!(
        chromium.evaluate("window.loadedOnce"),
        true,
        "the page was not reloaded"
    );
    assert_ne!(
        chromium.evaluate("document.body.dataset.timestamp"),
        first_look
    );
    let delivered = "[...document.querySelectorAll(\"g.module[data-module='output_1'] text.counters\")].map(t => t.textContent).find(t => t.startsWith('delivered')) || ''";
    wait_until(
        MINUTE,
        "output_1's delivered count and rate on the page",
        || {
            let text = chromium.evaluate(delivered);
            let text = text.as_str().unwrap_or_default();
            !text.starts_with("delivered 0") && text.ends_with("/s)")
        },
    );
    assert_eq!(
        chromium.evaluate(CRAMPED),
        serde_json::json!([]),
        "figures beside the names"
    );
    screenshot(&mut chromium, "graph-scenario-2.png");
    let resources = chromium.evaluate("performance.getEntriesByType('resource').map(e => e.name)");
    for resource in resources.as_array().unwrap() {
        assert!(
            resource
                .as_str()
                .unwrap()
                .starts_with(&format!("http://127.0.0.1:{port}/")),
            "the page loads only from wishbone: {resource}"
        );
    }

    running.store(false, Relaxed);
    let sent = traffic.join().unwrap();
    wait_until(MINUTE, "every line at the backends", || {
        one.line_count() + two.line_count() == sent
    });
    drop(chromium);
    assert!(wishbone.stop().success());
}

#[test]
fn the_page_draws_the_round_robin_demo() {
    let dir = scratch_dir("graph-demo");
    let sinks: Vec<Sink> = (0..3)
        .map(|i| Sink::start_websocket(&dir, &format!("ws{i}"), free_port()))
        .collect();
    let mut bootstrap = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bootstrap/roundrobin_wal.yaml"),
    )
    .unwrap();
    for (i, sink) in sinks.iter().enumerate() {
        bootstrap = bootstrap.replace(
            &format!("localhost:808{i}"),
            &format!("127.0.0.1:{}", sink.port),
        );
    }
    bootstrap = bootstrap.replace("interval: 1000", "interval: 50");
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &["--graph", "127.0.0.1:0"]);
    let port = graph_port(&wishbone);
    for sink in &sinks {
        sink.wait_for_lines(3, MINUTE);
    }
    let mut chromium = Chromium::open(&dir, &format!("http://127.0.0.1:{port}/"));
    wait_for_drawing(&mut chromium, 7, 6);
    wait_until(MINUTE, "the three outputs shown connected", || {
        chromium.evaluate("document.querySelectorAll('g.module.output circle.up').length") == 3
    });
    wait_until(MINUTE, "the three outputs' delivered rates", || {
        chromium.evaluate("[...document.querySelectorAll('g.module.output text.counters')].filter(t => /^delivered .*\\/s\\)$/.test(t.textContent)).length") == 3
    });
    screenshot(&mut chromium, "graph-roundrobin-demo.png");
    drop(chromium);
    assert!(wishbone.stop().success());
}

#[test]
fn the_api_describes_the_pipeline_and_is_read_only() {
    let dir = scratch_dir("graph-api");
    let (one, two, mut wishbone, port) = scenario_two_with_graph(&dir);
    send(wishbone.input_port("input"), &numbered_lines(1_000));
    one.wait_for_lines(500, MINUTE);
    two.wait_for_lines(500, MINUTE);
    let mut pipeline = serde_json::Value::Null;
    wait_until(MINUTE, "the api to count the 1,000 lines", || {
        pipeline = http::get(port, "/api/pipeline").json();
        pipeline["modules"][0]["queues"]
            .as_array()
            .is_some_and(|queues| {
                queues
                    .iter()
                    .any(|q| q["name"] == "outbox" && q["in_total"] == 1000)
            })
    });
    let names: Vec<_> = pipeline["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["input", "roundrobin", "output_1", "output_2"]);
    assert_eq!(pipeline["modules"][2]["kind"], "wishbone.output.tcp");
    assert_eq!(pipeline["modules"][2]["column"], 2);
    assert_eq!(pipeline["routes"][1]["from"], "roundrobin.one");
    assert!(pipeline["timestamp_ms"].as_u64().unwrap() > 1_700_000_000_000);
    wait_until(MINUTE, "output_1's delivered count", || {
        http::get(port, "/api/pipeline").json()["modules"][2]["counters"]["delivered"] == 500.0
    });
    let mut output = serde_json::Value::Null;
    wait_until(MINUTE, "a rate of output_1's delivered count", || {
        output = http::get(port, "/api/pipeline").json()["modules"][2].clone();
        output["rates"]["delivered"].is_f64()
    });
    assert!(
        output["rates"].get("connected").is_none(),
        "a gauge has no rate: {output}"
    );

    let page = http::get(port, "/");
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .starts_with("default-src 'self'")
    );
    let post = http::request(port, "POST", "/api/pipeline", Some("x=1")).unwrap();
    assert_eq!(post.status, 405, "read-only");
    assert_eq!(http::get(port, "/nothing").status, 404);
    assert!(wishbone.stop().success());
}

#[test]
fn a_bad_graph_address_is_a_usage_error_and_one_in_use_a_runtime_failure() {
    let dir = scratch_dir("graph-address");
    let bootstrap = proxy_bootstrap(free_port());
    let mut bad = Wishbone::start(&dir, &bootstrap, &["--graph", "localhost"]);
    assert_eq!(bad.wait(MINUTE).code(), Some(2));
    assert!(
        bad.output.text().contains("is not IP:PORT"),
        "{}",
        bad.output.text()
    );

    let config = dir.join("instances.yaml");
    std::fs::write(&config, &bootstrap).unwrap();
    let instances = std::process::Command::new(binary("wishbone"))
        .args([
            "start",
            "--instances",
            "2",
            "--graph",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(instances.status.code(), Some(2), "--graph draws one server");
    assert!(String::from_utf8_lossy(&instances.stderr).contains("--graph draws one server"));

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let mut in_use = Wishbone::start(&dir, &bootstrap, &["--graph", &address]);
    assert_eq!(in_use.wait(MINUTE).code(), Some(1));
    assert!(
        in_use.output.text().contains("cannot serve the graph page"),
        "{}",
        in_use.output.text()
    );
}

#[test]
fn thirty_modules_are_drawn_without_overlapping() {
    let dir = scratch_dir("graph-thirty");
    let mut bootstrap = String::from(
        "modules:\n  input: {module: wishbone.input.tcp, arguments: {address: 127.0.0.1, port: 0}}\n  \
         roundrobin: {module: wishbone.flow.roundrobin}\n",
    );
    let mut routes = String::from("routingtable:\n  - input.outbox -> roundrobin.inbox\n");
    for output in 1..=28 {
        bootstrap += &format!(
            "  output_{output}: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {}}}}}\n",
            free_port()
        );
        routes += &format!("  - roundrobin.o{output} -> output_{output}.inbox\n");
    }
    let mut wishbone = Wishbone::start(&dir, &(bootstrap + &routes), &["--graph", "127.0.0.1:0"]);
    let port = graph_port(&wishbone);
    let mut chromium = Chromium::open(&dir, &format!("http://127.0.0.1:{port}/"));
    wait_for_drawing(&mut chromium, 30, 29);
    let overlaps = chromium.evaluate(
        "(() => { const boxes = [...document.querySelectorAll('g.module rect.box')].map(r => r.getBBox());
           let overlaps = 0;
           boxes.forEach((a, i) => boxes.slice(i + 1).forEach(b => {
             if (a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height) overlaps++;
           }));
           return overlaps; })()",
    );
    assert_eq!(overlaps, 0, "no module box overlaps another");
    assert_eq!(chromium.evaluate(CROSSINGS), 0, "no route crosses a box");
    let names = chromium.evaluate(
        "[...document.querySelectorAll('g.module text.name')].filter(t => t.getComputedTextLength() > 0).length",
    );
    assert_eq!(names, 30, "every name is written");
    drop(chromium);
    assert!(wishbone.stop().success());
}

#[test]
fn dropped_events_are_shown_in_red() {
    let dir = scratch_dir("graph-dropped");
    // A backend that is down and a `failed` queue no route takes: the
    // output hands its events to `failed`, where they are dropped and counted.
    let bootstrap = proxy_bootstrap(free_port())
        .replace("reconnect_max: 0.2", "reconnect_max: 0.2, failed: true");
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &["--graph", "127.0.0.1:0"]);
    let port = graph_port(&wishbone);
    send(wishbone.input_port("input"), &numbered_lines(100));
    let mut chromium = Chromium::open(&dir, &format!("http://127.0.0.1:{port}/"));
    let dropped = "document.querySelector(\"g.queue.dropped[data-queue='output.failed'] [data-stat='dropped_total']\")?.textContent";
    wait_until(MINUTE, "output.failed shown as dropping", || {
        chromium.evaluate(dropped) == " · dropped 100"
    });
    let colour = chromium.evaluate(
        "getComputedStyle(document.querySelector(\"g.queue.dropped[data-queue='output.failed'] text\")).fill",
    );
    assert_eq!(colour, "rgb(197, 48, 48)", "drawn in red");
    // Figures older than those drawn (the first fetch answering after the
    // stream) are not drawn over them.
    chromium.evaluate("draw({timestamp_ms: 1, host: 'old', modules: [], routes: []})");
    assert_eq!(
        chromium.evaluate(dropped),
        " · dropped 100",
        "older figures left alone"
    );
    assert_eq!(
        chromium.evaluate(CRAMPED),
        serde_json::json!([]),
        "figures, the dropped count among them, beside the names"
    );
    assert_eq!(
        chromium.evaluate("document.querySelectorAll('g.queue.dropped').length"),
        1,
        "only the queue that dropped"
    );
    drop(chromium);
    assert!(wishbone.stop().success());
}

#[test]
fn scenario_three_routes_go_around_the_boxes_they_pass() {
    let dir = scratch_dir("graph-scenario-3");
    let bootstrap = scenario_3_bootstrap(free_port(), free_port());
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &["--graph", "127.0.0.1:0"]);
    let port = graph_port(&wishbone);
    let mut chromium = Chromium::open(&dir, &format!("http://127.0.0.1:{port}/"));
    wait_for_drawing(&mut chromium, 5, 5);
    // roundrobin.one -> funnel.one passes output_2's column.
    assert_eq!(chromium.evaluate(CROSSINGS), 0, "no route crosses a box");
    screenshot(&mut chromium, "graph-scenario-3.png");
    drop(chromium);
    assert!(wishbone.stop().success());
}
