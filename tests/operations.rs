//! What an operator meets: logs on standard error with UTC timestamps (JSON
//! on request), exit statuses in `--help`, `--graphite` mistakes and carbon
//! outages reported, and the tcp input's cut lines counted in metrics.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);

/// `2026-11-25T19:44:24.123Z` at the start of a log line.
fn starts_with_timestamp(line: &str) -> bool {
    let bytes = line.as_bytes();
    bytes.len() >= 24
        && bytes[4] == b'-'
        && bytes[10] == b'T'
        && bytes[19] == b'.'
        && bytes[23] == b'Z'
        && line[..4].chars().all(|c| c.is_ascii_digit())
}

/// `wishbone ARGS` with standard output piped, its standard error collected.
fn run(args: &[&str]) -> (std::process::Child, Output) {
    let mut child = Command::new(binary("wishbone"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = Output::default();
    stderr.collect_from(child.stderr.take().unwrap());
    (child, stderr)
}

#[test]
fn logs_go_to_standard_error_and_events_alone_to_standard_output() {
    let default = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bootstrap/default.yaml");
    let (mut child, stderr) = run(&["debug", "--config", default.to_str().unwrap()]);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert_eq!(first, "hello world\n", "standard output carries events");
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    assert!(
        rest.lines().all(|line| line == "hello world"),
        "only events on standard output: {rest}"
    );
    stderr.wait_for("queue totals", MINUTE);
    let logs = stderr.text();
    assert!(logs.contains("starting"), "{logs}");
    for line in logs.lines() {
        assert!(starts_with_timestamp(line), "no UTC timestamp: {line}");
    }
}

#[test]
fn start_writes_json_logs_on_request() {
    let dir = scratch_dir("json-logs");
    let config = dir.join("generator.yaml");
    std::fs::write(
        &config,
        "modules:\n  generator: {module: wishbone.input.generator, arguments: {interval: 0.1}}\n  output: {module: wishbone.output.null}\nroutingtable:\n  - generator.outbox -> output.inbox\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let (mut child, stderr) = run(&["start", "--config", config, "--log-format", "json"]);
    stderr.wait_for("queue connected", MINUTE);
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert_eq!(stdout, "", "no logs on standard output");
    stderr.wait_for("queue totals", MINUTE);
    let text = stderr.text();
    for line in text.lines() {
        let record: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}"));
        assert!(
            starts_with_timestamp(record["timestamp"].as_str().unwrap()),
            "{line}"
        );
        assert!(record["level"].is_string(), "{line}");
        assert!(record["message"].is_string(), "{line}");
    }
    assert!(
        text.contains("\"signal\":\"SIGTERM\""),
        "fields are kept: {text}"
    );
}

#[test]
fn start_writes_configuration_errors_as_json_too() {
    let dir = scratch_dir("json-config-errors");
    let config = dir.join("broken.yaml");
    std::fs::write(
        &config,
        "modules:\n  input: {module: wishbone.input.tcp, arguments: {port: nope}}\n  output: {module: wishbone.output.nowhere}\nroutingtable:\n  - input.outbox -> output.inbox\n",
    )
    .unwrap();
    let output = Command::new(binary("wishbone"))
        .args(["start", "--log-format", "json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let text = String::from_utf8_lossy(&output.stderr);
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}")))
        .collect();
    let places: Vec<&str> = records
        .iter()
        .map(|record| {
            record["place"]
                .as_str()
                .unwrap_or_else(|| panic!("{record}"))
        })
        .collect();
    assert_eq!(places.len(), 2, "one object a problem: {text}");
    assert!(
        places.iter().all(|place| place.contains("module")),
        "{text}"
    );
    for record in &records {
        assert_eq!(record["level"], "ERROR");
        assert!(
            record["problem"]
                .as_str()
                .is_some_and(|problem| !problem.is_empty())
        );
    }
}

#[test]
fn help_states_the_exit_statuses() {
    let output = Command::new(binary("wishbone"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "Exit statuses",
        "0  done",
        "1  runtime failure",
        "2  usage or configuration error",
        "SIGHUP",
    ] {
        assert!(help.contains(expected), "`{expected}` missing:\n{help}");
    }
}

#[test]
fn a_malformed_graphite_address_is_a_usage_error() {
    let output = Command::new(binary("wishbone"))
        .args([
            "debug",
            "--config",
            "unused.yaml",
            "--graphite",
            "notahostport",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(text.contains("`notahostport` is not HOST:PORT"), "{text}");
}

fn generator_bootstrap() -> &'static str {
    "modules:\n  generator: {module: wishbone.input.generator, arguments: {interval: 0.05}}\n  output: {module: wishbone.output.null}\nroutingtable:\n  - generator.outbox -> output.inbox\n"
}

/// `--graphite` is the metrics route through `wishbone_carbon`, a tcp
/// output: its outage is logged as any output's is.
#[test]
fn a_carbon_outage_is_logged_once_and_its_end_once() {
    let dir = scratch_dir("carbon-outage");
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let wishbone = Wishbone::start(
        &dir,
        generator_bootstrap(),
        &["--graphite", &address, "--frequency", "0.05"],
    );
    let unreachable = "peer unavailable; retrying with backoff module=wishbone_carbon";
    let reachable = "connected module=wishbone_carbon";
    wishbone.output.wait_for(unreachable, MINUTE);
    std::thread::sleep(Duration::from_secs(2)); // the window measured: many reports, refused
    assert_eq!(
        wishbone.output.count(unreachable),
        1,
        "{}",
        wishbone.output.text()
    );
    let carbon = TcpListener::bind(&address).unwrap();
    let (stream, _) = carbon.accept().unwrap();
    let mut lines = BufReader::new(stream).lines();
    let first = lines.next().unwrap().unwrap();
    assert_eq!(first.split(' ').count(), 3, "{first}");
    wishbone.output.wait_for(reachable, MINUTE);
    assert_eq!(wishbone.output.count(reachable), 1);
    assert_eq!(wishbone.output.count(unreachable), 1);
}

#[test]
fn the_input_counts_cut_lines_in_its_metrics() {
    let dir = scratch_dir("input-metrics");
    let sink = Sink::start(&dir, "backend");
    let carbon = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = carbon.local_addr().unwrap().to_string();
    let bootstrap = proxy_bootstrap(sink.port).replace("port: 0}", "port: 0, max_line_length: 10}");
    let mut wishbone = Wishbone::start(
        &dir,
        &bootstrap,
        &["--graphite", &address, "--frequency", "0.1"],
    );
    send(
        wishbone.input_port("input"),
        b"short\nmuch longer than ten bytes\nend\n",
    );
    sink.wait_for_lines(3, MINUTE);
    let (stream, _) = carbon.accept().unwrap();
    stream.set_read_timeout(Some(MINUTE)).unwrap();
    let wanted = [
        ".module.input.truncated 1 ",
        ".module.input.events 3 ",
        ".module.input.connections 1 ",
    ];
    let mut seen = [false; 3];
    for line in BufReader::new(stream).lines() {
        let line = line.expect("metrics before the timeout");
        for (index, path) in wanted.iter().enumerate() {
            seen[index] |= line.contains(path);
        }
        if seen.iter().all(|seen| *seen) {
            break;
        }
    }
    assert!(seen.iter().all(|seen| *seen), "{wanted:?}: {seen:?}");
    assert!(wishbone.stop().success());
}
