//! Reshaping events with real processes on loopback: a jq program between
//! a tcp input and tcp outputs (the harness's sinks), every event checked
//! field by field where it arrived; events the program drops, splits and
//! fails on counted; a broken program refused by `check` with its place.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);

const INPUT: &str =
    "  input: {module: wishbone.input.tcp, arguments: {address: 127.0.0.1, port: 0}}\n";

fn output(name: &str, port: u16) -> String {
    format!(
        "  {name}: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {port}, reconnect_max: 0.2}}}}\n"
    )
}

/// The JSON values a sink received, in order.
fn values(sink: &Sink) -> Vec<Value> {
    String::from_utf8(sink.received())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("JSON: {line}")))
        .collect()
}

fn reshaping(program: &str, ports: (u16, u16)) -> String {
    format!(
        "modules:\n{INPUT}  reshape:\n    module: wishbone.process.jq\n    arguments:\n      program: '{program}'\n{}{}\
         routingtable:\n  - input.outbox -> reshape.inbox\n  - reshape.outbox -> passed.inbox\n  - reshape.failed -> failed.inbox\n",
        output("passed", ports.0),
        output("failed", ports.1),
    )
}

#[test]
fn a_program_renames_deletes_and_adds_fields_of_every_event() {
    let dir = scratch_dir("reshape-fields");
    let (passed, failed) = (Sink::start(&dir, "passed"), Sink::start(&dir, "failed"));
    let program =
        r#".host = .hostname | del(.hostname, .pid) | .pipeline = "edge" | .level |= ascii_upcase"#;
    let mut wishbone = Wishbone::start(&dir, &reshaping(program, (passed.port, failed.port)), &[]);
    const EVENTS: usize = 50_000;
    let mut data = Vec::new();
    for id in 0..EVENTS {
        let level = ["info", "error"][id % 2];
        let event = json!({"id": id, "hostname": format!("web-{}", id % 7), "pid": id % 13,
                           "level": level, "message": format!("served {id}")});
        data.extend_from_slice(format!("{event}\n").as_bytes());
    }
    send(wishbone.input_port("input"), &data);
    passed.wait_for_lines(EVENTS, MINUTE);
    assert!(wishbone.stop().success());
    let values = values(&passed);
    assert_eq!(values.len(), EVENTS);
    for (id, value) in values.iter().enumerate() {
        let level = ["INFO", "ERROR"][id % 2];
        let expected = json!({"id": id, "level": level,
                              "message": format!("served {id}"), "host": format!("web-{}", id % 7),
                              "pipeline": "edge"});
        assert_eq!(value, &expected);
    }
    assert!(failed.received().is_empty());
}

#[test]
fn events_dropped_split_and_failed_are_each_counted_where_they_went() {
    let dir = scratch_dir("reshape-split");
    let (passed, failed) = (Sink::start(&dir, "passed"), Sink::start(&dir, "failed"));
    // Objects with items yield one event an item; an empty list yields
    // nothing; a string where a list belongs fails.
    let program = ".id as $id | .items[] | {id: $id, item: .}";
    let mut wishbone = Wishbone::start(&dir, &reshaping(program, (passed.port, failed.port)), &[]);
    let mut data = Vec::new();
    let (mut items, mut empty, mut broken) = (0, 0, 0);
    for id in 0..3_000 {
        let event = match id % 3 {
            0 => {
                empty += 1;
                json!({"id": id, "items": []})
            }
            1 => {
                items += 3;
                json!({"id": id, "items": ["a", "b", "c"]})
            }
            _ => {
                broken += 1;
                json!({"id": id, "items": "none"})
            }
        };
        data.extend_from_slice(format!("{event}\n").as_bytes());
    }
    data.extend_from_slice(b"not json\n");
    send(wishbone.input_port("input"), &data);
    passed.wait_for_lines(items, MINUTE);
    failed.wait_for_lines(broken + 1, MINUTE);
    assert!(wishbone.stop().success());
    let mut seen = BTreeSet::new();
    for value in values(&passed) {
        let id = value["id"].as_u64().unwrap();
        assert_eq!(id % 3, 1, "{value}");
        assert!(seen.insert((id, value["item"].as_str().unwrap().to_string())));
    }
    assert_eq!(seen.len(), items);
    let reports = values(&failed);
    assert!(reports[..broken].iter().all(|report| {
        report["event"]
            .as_str()
            .unwrap()
            .contains("\"items\":\"none\"")
            && report["error"].as_str().is_some()
    }));
    assert_eq!(reports[broken]["event"], "not json");
    let log = wishbone.output.text();
    assert!(log.contains(&format!("dropped={empty}")), "{log}");
    assert!(log.contains(&format!("failed={}", broken + 1)), "{log}");
}

#[test]
fn check_names_the_module_the_argument_and_the_place_of_a_broken_program() {
    let dir = scratch_dir("reshape-check");
    let file = dir.join("bootstrap.yaml");
    let bootstrap = format!(
        "modules:\n{INPUT}  reshape: {{module: wishbone.process.jq, arguments: {{program: '.a = .b | del(.c'}}}}\n\
         routingtable:\n  - input.outbox -> reshape.inbox\n"
    );
    std::fs::write(&file, bootstrap).unwrap();
    let (code, text) = wishbone_check(&file);
    assert_eq!(code, Some(2), "{text}");
    for part in ["reshape", "program", "line 1, column"] {
        assert!(text.contains(part), "`{part}` in:\n{text}");
    }
    let bootstrap = format!(
        "modules:\n{INPUT}  reshape: {{module: wishbone.process.jq, arguments: {{program: '. | debug'}}}}\n\
         routingtable:\n  - input.outbox -> reshape.inbox\n"
    );
    std::fs::write(&file, bootstrap).unwrap();
    let (code, text) = wishbone_check(&file);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("not allowed in a program"), "{text}");
}

/// Bad input on the way: a 100 MB line (cut to `max_line_length` by the
/// input and counted, then not JSON to the program: to failed, counted), a
/// regular expression that matches nothing (to failed, counted); the lines
/// around them pass, and nothing is lost.
#[test]
fn a_huge_line_and_a_pattern_that_matches_nothing_are_counted_and_the_rest_passes() {
    let dir = scratch_dir("reshape-bad-input");
    let (passed, failed) = (Sink::start(&dir, "passed"), Sink::start(&dir, "failed"));
    let bootstrap = format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         reshape: {{module: wishbone.process.jq, arguments: {{program: '{{text: .message}}'}}}}\n  \
         words: {{module: wishbone.process.decode, arguments: {{format: regex, field: text, pattern: '^(?P<first>[a-z]+) (?P<second>[a-z]+)$'}}}}\n  \
         failures: {{module: wishbone.flow.funnel}}\n{}{}\
         routingtable:\n  - input.outbox -> reshape.inbox\n  - reshape.outbox -> words.inbox\n  - words.outbox -> passed.inbox\n  \
         - reshape.failed -> failures.reshape\n  - words.failed -> failures.words\n  - failures.outbox -> failed.inbox\n",
        output("passed", passed.port),
        output("failed", failed.port),
    );
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    let mut data = b"{\"message\":\"hello world\"}\n{\"message\":\"".to_vec();
    data.extend(std::iter::repeat_n(b'x', 100 * 1024 * 1024));
    data.extend_from_slice(
        b"\"}\n{\"message\":\"no match here 42\"}\n{\"message\":\"good bye\"}\n",
    );
    send(wishbone.input_port("input"), &data);
    passed.wait_for_lines(2, MINUTE);
    failed.wait_for_lines(2, MINUTE);
    assert!(wishbone.stop().success());
    let words: Vec<Value> = values(&passed);
    assert_eq!(
        words[0],
        json!({"text": "hello world", "first": "hello", "second": "world"})
    );
    assert_eq!(
        words[1],
        json!({"text": "good bye", "first": "good", "second": "bye"})
    );
    let reports = values(&failed);
    assert_eq!(reports.len(), 2);
    let errors: Vec<&str> = reports
        .iter()
        .map(|report| report["error"].as_str().unwrap())
        .collect();
    assert!(
        errors.iter().any(|error| error.contains("not JSON")),
        "{errors:?}"
    );
    assert!(errors.contains(&"the pattern does not match"), "{errors:?}");
    let log = wishbone.output.text();
    assert!(log.contains("truncated=1"), "{log}");
}
