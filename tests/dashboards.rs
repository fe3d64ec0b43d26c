//! The dashboards in `dashboards/` against a real carbon and a real
//! graphite-web fed by scenario II with traffic: every panel's target
//! returns a series with points through graphite-web's render API.
//!
//! With `WISHBONE_SCREENSHOTS=DIR` the test also saves PNG renders of the
//! main panels, as docs/metrics.md shows them.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use serde_json::Value;
use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);

fn dashboard(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("dashboards")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Each Grafana panel's title and its targets.
fn grafana_targets(board: &Value) -> Vec<(String, String)> {
    board["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|panel| {
            let title = panel["title"].as_str().unwrap().to_string();
            panel["targets"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |target| {
                    (
                        title.clone(),
                        target["target"].as_str().unwrap().to_string(),
                    )
                })
        })
        .collect()
}

/// Each graphite-web graph's title and its targets.
fn graphite_web_targets(state: &Value) -> Vec<(String, String)> {
    state["graphs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|graph| {
            let title = graph[1]["title"].as_str().unwrap().to_string();
            graph[1]["target"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |target| (title.clone(), target.as_str().unwrap().to_string()))
        })
        .collect()
}

#[test]
fn the_grafana_dashboard_defines_what_its_panels_use() {
    let board = dashboard("grafana-wishbone.json");
    let variables: HashSet<String> = board["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|variable| format!("${}", variable["name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        variables,
        HashSet::from([
            "$prefix".to_string(),
            "$host".to_string(),
            "$module".to_string()
        ])
    );
    assert_eq!(
        board["templating"]["list"][0]["query"], "wishbone",
        "the prefix defaults to wishbone's"
    );
    let mut ids = HashSet::new();
    for panel in board["panels"].as_array().unwrap() {
        assert!(
            ids.insert(panel["id"].as_u64().unwrap()),
            "unique panel ids"
        );
        assert_eq!(
            panel["datasource"]["uid"], "${DS_GRAPHITE}",
            "the imported data source"
        );
        assert!(panel["gridPos"]["w"].as_u64().is_some());
    }
    assert_eq!(board["__inputs"][0]["name"], "DS_GRAPHITE");
    for (title, target) in grafana_targets(&board) {
        assert!(
            target.contains("$prefix.$host."),
            "{title}: every path starts at the prefix variable: {target}"
        );
        for word in target.split(|c: char| !(c.is_alphanumeric() || c == '$' || c == '_')) {
            if word.starts_with('$') {
                assert!(
                    variables.contains(word),
                    "{title}: {word} is not a variable"
                );
            }
        }
    }
    assert_eq!(
        grafana_targets(&board).len(),
        graphite_web_targets(&dashboard("graphite-web.json")).len(),
        "the same panels in both"
    );
}

#[test]
fn every_panel_of_both_dashboards_shows_scenario_two_in_graphite_web() {
    let dir = scratch_dir("dashboards");
    let carbon = Carbon::start(&dir.join("carbon"));
    let web = GraphiteWeb::start(&dir.join("graphite-web"), &carbon.whisper_dir());
    let (one, mut two) = (Sink::start(&dir, "one"), Sink::start(&dir, "two"));
    let carbon_address = format!("127.0.0.1:{}", carbon.port);
    let mut wishbone = Wishbone::start(
        &dir,
        &scenario_2_bootstrap(one.port, two.port, ""),
        &["--frequency", "1", "--graphite", &carbon_address],
    );
    let running = Arc::new(AtomicBool::new(true));
    let traffic = steady_traffic(wishbone.input_port("input"), running.clone());
    let host = hostname_segment();
    carbon.wait_for(&format!("wishbone.{host}.module.output_2.connected"), 1.0);
    wait_until(MINUTE, "delivered counts over several reports", || {
        carbon
            .latest(&format!("wishbone.{host}.module.output_1.delivered"))
            .unwrap_or(0.0)
            > 100_000.0
    });

    // graphite-web's own dashboard store takes and gives back the file.
    let state = dashboard("graphite-web.json");
    let body = format!("state={}", http::encode(&state.to_string()));
    let saved = http::request(web.port, "POST", "/dashboard/save/wishbone", Some(&body)).unwrap();
    assert_eq!(saved.json()["success"], true, "{}", saved.text());
    let loaded = http::get(web.port, "/dashboard/load/wishbone").json();
    assert_eq!(loaded["state"]["graphs"], state["graphs"]);

    let grafana = grafana_targets(&dashboard("grafana-wishbone.json"))
        .into_iter()
        .map(|(title, target)| {
            (
                title,
                target
                    .replace("$prefix", "wishbone")
                    .replace("$host", &host)
                    .replace("$module", "*"),
            )
        });
    let panels: Vec<(String, String)> = grafana
        .chain(graphite_web_targets(&loaded["state"]))
        .collect();
    assert_eq!(panels.len(), 18);
    for (title, target) in &panels {
        let series = web.render_json(target);
        let with_points = series
            .as_array()
            .unwrap()
            .iter()
            .filter(|one| {
                one["datapoints"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|point| !point[0].is_null())
            })
            .count();
        assert!(
            with_points > 0,
            "{title} ({target}): no series with points: {series}"
        );
    }
    let delivered = web.render_json(&format!("wishbone.{host}.module.output_1.delivered"));
    let latest = delivered[0]["datapoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|point| point[0].as_f64())
        .next_back()
        .unwrap();
    assert!(
        latest > 100_000.0,
        "graphite-web reads what wishbone sent: {latest}"
    );

    if let Ok(pictures) = std::env::var("WISHBONE_SCREENSHOTS") {
        // A minute worth looking at: output_2's backend away for 15 seconds.
        std::thread::sleep(Duration::from_secs(15));
        let port = two.port;
        two.kill();
        std::thread::sleep(Duration::from_secs(15));
        two = Sink::start_on(&dir, "two-again", port, &[]);
        std::thread::sleep(Duration::from_secs(20));
        for (file, index) in [
            ("panel-in-rate.png", 0),
            ("panel-connected.png", 4),
            ("panel-delivered.png", 5),
        ] {
            let (title, target) = &panels[index];
            std::fs::write(
                Path::new(&pictures).join(file),
                web.render_png(target, title),
            )
            .unwrap();
        }
    }
    running.store(false, Relaxed);
    let sent = traffic.join().unwrap();
    if std::env::var_os("WISHBONE_SCREENSHOTS").is_none() {
        wait_until(MINUTE, "every line at the backends", || {
            one.line_count() + two.line_count() == sent
        });
    }
    assert!(wishbone.stop().success());
}
