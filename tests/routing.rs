//! Routing by content with real processes on loopback: a filter and a
//! queueselect between a tcp input and tcp outputs (the harness's sinks),
//! every event id counted where it arrived; tokens from a write-ahead
//! buffer settled for events routed nowhere; conditions checked at load.

use std::collections::BTreeSet;
use std::time::Duration;

use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);

const LEVELS: [&str; 3] = ["info", "error", "debug"];
const SERVICES: [&str; 4] = ["billing", "web", "db", "auth"];

fn level(id: usize) -> &'static str {
    LEVELS[id % 7 % 3]
}

fn service(id: usize) -> &'static str {
    SERVICES[id / 3 % 4]
}

/// `count` JSON lines of about 100 bytes with an id, a level and a service.
fn json_lines(count: usize) -> Vec<u8> {
    let mut data = Vec::new();
    for id in 0..count {
        data.extend_from_slice(
            format!(
                "{{\"id\":{id},\"level\":\"{}\",\"service\":\"{}\",\"message\":\"request served in {} ms\"}}\n",
                level(id),
                service(id),
                id % 997
            )
            .as_bytes(),
        );
    }
    data
}

/// The ids a sink received, each once (a second arrival fails the test).
fn ids(sink: &Sink) -> BTreeSet<usize> {
    let mut ids = BTreeSet::new();
    for line in String::from_utf8(sink.received()).unwrap().lines() {
        let value: serde_json::Value = serde_json::from_str(line).expect("JSON lines arrive");
        let id = value["id"].as_u64().expect("an id") as usize;
        assert!(ids.insert(id), "{id} arrived twice");
    }
    ids
}

fn output(name: &str, port: u16) -> String {
    format!(
        "  {name}: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {port}, reconnect_max: 0.2}}}}\n"
    )
}

const INPUT: &str =
    "  input: {module: wishbone.input.tcp, arguments: {address: 127.0.0.1, port: 0}}\n";

#[test]
fn a_filter_splits_two_hundred_thousand_events_exactly() {
    let dir = scratch_dir("routing-filter");
    let (passed, rejected) = (Sink::start(&dir, "passed"), Sink::start(&dir, "rejected"));
    let bootstrap = format!(
        "modules:\n{INPUT}  errors: {{module: wishbone.flow.filter, arguments: {{condition: '.level == \"error\"'}}}}\n{}{}\
         routingtable:\n  - input.outbox -> errors.inbox\n  - errors.outbox -> passed.inbox\n  - errors.rejected -> rejected.inbox\n",
        output("passed", passed.port),
        output("rejected", rejected.port),
    );
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    const EVENTS: usize = 200_000;
    send(wishbone.input_port("input"), &json_lines(EVENTS));
    let errors: BTreeSet<usize> = (0..EVENTS).filter(|id| level(*id) == "error").collect();
    passed.wait_for_lines(errors.len(), MINUTE);
    rejected.wait_for_lines(EVENTS - errors.len(), MINUTE);
    assert!(wishbone.stop().success());
    assert_eq!(ids(&passed), errors);
    let others: BTreeSet<usize> = (0..EVENTS).filter(|id| !errors.contains(id)).collect();
    assert_eq!(ids(&rejected), others);
    assert!(wishbone.output.text().contains("condition_errors=0"));
}

#[test]
fn a_queueselect_copies_to_every_matching_queue_and_the_rest_to_nomatch() {
    let dir = scratch_dir("routing-queueselect");
    let sinks = ["billing", "errors", "other"].map(|name| Sink::start(&dir, name));
    let bootstrap = format!(
        "modules:\n{INPUT}  select:\n    module: wishbone.flow.queueselect\n    arguments:\n      rules:\n        \
         - {{queue: billing, condition: '.service == \"billing\"'}}\n        \
         - {{queue: errors, condition: '.level == \"error\" and (.service == \"auth\" | not)'}}\n{}{}{}\
         routingtable:\n  - input.outbox -> select.inbox\n  - select.billing -> billing.inbox\n  - select.errors -> errors.inbox\n  - select.nomatch -> other.inbox\n",
        output("billing", sinks[0].port),
        output("errors", sinks[1].port),
        output("other", sinks[2].port),
    );
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    const EVENTS: usize = 100_000;
    let mut data = json_lines(EVENTS);
    // Lines that are not JSON match no rule: nomatch, counted.
    data.extend_from_slice(b"not json at all\n{\"id\": \n");
    send(wishbone.input_port("input"), &data);
    let billing: BTreeSet<usize> = (0..EVENTS).filter(|id| service(*id) == "billing").collect();
    let errors: BTreeSet<usize> = (0..EVENTS)
        .filter(|id| level(*id) == "error" && service(*id) != "auth")
        .collect();
    let other: BTreeSet<usize> = (0..EVENTS)
        .filter(|id| !billing.contains(id) && !errors.contains(id))
        .collect();
    assert!(!billing.is_disjoint(&errors), "the rules overlap");
    sinks[0].wait_for_lines(billing.len(), MINUTE);
    sinks[1].wait_for_lines(errors.len(), MINUTE);
    sinks[2].wait_for_lines(other.len() + 2, MINUTE);
    assert!(wishbone.stop().success());
    assert_eq!(ids(&sinks[0]), billing);
    assert_eq!(ids(&sinks[1]), errors);
    let received = String::from_utf8(sinks[2].received()).unwrap();
    let (json, garbage): (Vec<&str>, Vec<&str>) =
        received.lines().partition(|line| line.ends_with('}'));
    assert_eq!(garbage, ["not json at all", "{\"id\": "]);
    let ids: BTreeSet<usize> = json
        .iter()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["id"]
                .as_u64()
                .unwrap() as usize
        })
        .collect();
    assert_eq!(ids, other);
    // Each of the two rules failed on each of the two lines.
    assert!(
        wishbone.output.text().contains("condition_errors=4"),
        "{}",
        wishbone.output.text()
    );
}

#[test]
fn events_routed_nowhere_are_settled_so_a_wal_does_not_replay_them() {
    let dir = scratch_dir("routing-settled");
    let passed = Sink::start(&dir, "passed");
    let bootstrap = format!(
        "modules:\n{INPUT}  wal: {{module: wishbone.flow.wal, arguments: {{read_count: 100, when_full: block}}}}\n  \
         errors: {{module: wishbone.flow.filter, arguments: {{condition: '.level == \"error\"'}}}}\n{}\
         routingtable:\n  - input.outbox -> wal.inbox\n  - wal.outbox -> errors.inbox\n  - errors.outbox -> passed.inbox\n",
        output("passed", passed.port),
    );
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    const EVENTS: usize = 20_000;
    send(wishbone.input_port("input"), &json_lines(EVENTS));
    let errors = (0..EVENTS).filter(|id| level(*id) == "error").count();
    passed.wait_for_lines(errors, MINUTE);
    // Replays of unsettled events would arrive at the filter again.
    std::thread::sleep(Duration::from_millis(500));
    assert!(wishbone.stop().success());
    assert_eq!(ids(&passed).len(), errors);
    assert_eq!(
        wishbone.queue_total("errors.inbox", "in_total"),
        EVENTS as u64
    );
    assert_eq!(
        wishbone.queue_total("errors.rejected", "discarded_total"),
        (EVENTS - errors) as u64
    );
}

fn check(name: &str, bootstrap: &str) -> (Option<i32>, String) {
    let dir = scratch_dir(&format!("routing-check-{name}"));
    let file = dir.join("bootstrap.yaml");
    std::fs::write(&file, bootstrap).unwrap();
    wishbone_check(&file)
}

#[test]
fn check_names_the_module_the_rule_and_the_position_of_a_bad_condition() {
    let bootstrap = format!(
        "modules:\n{INPUT}  select:\n    module: wishbone.flow.queueselect\n    arguments:\n      rules:\n        \
         - {{queue: billing, condition: '.service == \"billing\"'}}\n        \
         - {{queue: errors, condition: '.level == \"error\" and nosuch(1)'}}\n\
         routingtable:\n  - input.outbox -> select.inbox\n"
    );
    let (code, text) = check("bad-rule", &bootstrap);
    assert_eq!(code, Some(2), "{text}");
    for part in [
        "select",
        "rules[1].condition",
        "line 1, column 23",
        "nosuch",
    ] {
        assert!(text.contains(part), "`{part}` in:\n{text}");
    }
    let bootstrap = format!(
        "modules:\n{INPUT}  errors: {{module: wishbone.flow.filter, arguments: {{condition: '.level =='}}}}\n\
         routingtable:\n  - input.outbox -> errors.inbox\n"
    );
    let (code, text) = check("bad-filter", &bootstrap);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("condition") && text.contains("column 10"),
        "{text}"
    );
}

#[test]
fn check_knows_the_queues_the_rules_name() {
    let bootstrap = format!(
        "modules:\n{INPUT}  select:\n    module: wishbone.flow.queueselect\n    arguments:\n      rules:\n        \
         - {{queue: billing, condition: '.service == \"billing\"'}}\n{}{}\
         routingtable:\n  - input.outbox -> select.inbox\n  - select.billing -> a.inbox\n  - select.nomatch -> b.inbox\n",
        output("a", 10001),
        output("b", 10002),
    );
    assert_eq!(check("rule-queues", &bootstrap).0, Some(0));
    let wrong = bootstrap.replace("select.billing ->", "select.biling ->");
    let (code, text) = check("rule-queue-typo", &wrong);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("biling") && text.contains("billing, nomatch"),
        "{text}"
    );
}
