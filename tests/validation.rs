//! Bad bootstrap files, tried as a new user would: every problem is named
//! with the file, the module or route, and what would be valid; exit 2.

use std::process::Command;

use wishbone_e2e::{binary, scratch_dir, wishbone_check};

/// Runs `wishbone check` on the text; returns the exit code and the output.
fn check(name: &str, bootstrap: &str) -> (Option<i32>, String) {
    let dir = scratch_dir(&format!("validation-{name}"));
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(&file, bootstrap).unwrap();
    let (code, text) = wishbone_check(&file);
    assert!(
        text.contains(&format!("{name}.yaml")) || code == Some(0),
        "the file is named:\n{text}"
    );
    (code, text)
}

fn refused(name: &str, bootstrap: &str, expected: &[&str]) {
    let (code, text) = check(name, bootstrap);
    assert_eq!(code, Some(2), "exit status for {name}:\n{text}");
    for part in expected {
        assert!(text.contains(part), "{name}: expected `{part}` in:\n{text}");
    }
    assert!(!text.contains("panicked"), "{text}");
}

const GOOD_MODULES: &str = "modules:\n  input: {module: wishbone.input.tcp, arguments: {port: 10000}}\n  output: {module: wishbone.output.tcp, arguments: {port: 20000}}\n";

#[test]
fn a_valid_file_passes() {
    let (code, text) = check(
        "valid",
        &format!("{GOOD_MODULES}routingtable:\n  - input.outbox -> output.inbox\n"),
    );
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("valid: 2 modules, 1 routes"));
}

#[test]
fn an_unknown_top_level_key() {
    refused(
        "toplevel",
        &format!("{GOOD_MODULES}routing_table: []\n"),
        &[
            "top level",
            "unknown key `routing_table`",
            "did you mean `routingtable`?",
        ],
    );
}

#[test]
fn an_unknown_module_kind_suggests_the_nearest() {
    refused(
        "kind",
        "modules:\n  roundrobin: {module: wishbone.flow.roundrobn}\n",
        &[
            "module `roundrobin`",
            "unknown module kind `wishbone.flow.roundrobn`",
            "did you mean `wishbone.flow.roundrobin`?",
            "wishbone list",
        ],
    );
}

#[test]
fn an_unknown_argument_names_the_valid_ones() {
    refused(
        "argument",
        "modules:\n  input: {module: wishbone.input.tcp, arguments: {prot: 10000}}\n",
        &[
            "module `input`",
            "unknown field `prot`",
            "`port`",
            "`max_connections`",
        ],
    );
}

#[test]
fn a_misspelled_argument_gets_the_right_suggestion_and_its_line() {
    refused(
        "misspelled",
        "modules:\n  input:\n    module: wishbone.input.tcp\n    arguments:\n      address: 127.0.0.1\n      listen_port: 10000\n",
        &[
            "line 6, column 7: module `input`",
            "unknown field `listen_port` (did you mean `port`?)",
        ],
    );
    let (_, text) = check(
        "closekind",
        "modules:\n  roundrobin: {module: wishbone.flow.roundrobn}\n",
    );
    assert!(
        text.contains("line 2, column 16:") && !text.contains("wishbone.output.tcp"),
        "a close match is shown alone, at the `module:` key's place:\n{text}"
    );
    let (_, text) = check("farkind", "modules:\n  queue: {module: kafka.output}\n");
    assert!(
        text.contains("this program has: wishbone.input.tcp"),
        "no close match: every kind:\n{text}"
    );
}

#[test]
fn an_ill_typed_argument() {
    refused(
        "typed",
        "modules:\n  output: {module: wishbone.output.tcp, arguments: {port: 70000}}\n",
        &["module `output`", "port", "70000"],
    );
    refused(
        "typed2",
        "modules:\n  output: {module: wishbone.output.tcp, arguments: {failed: maybe}}\n",
        &["module `output`", "failed"],
    );
    refused(
        "typed3",
        "modules:\n  output: {module: wishbone.output.tcp, arguments: {timeout: -1}}\n",
        &["`timeout` must be a number of seconds"],
    );
    refused(
        "typed4",
        "modules:\n  input: {module: wishbone.input.tcp, arguments: {delimiter: ''}}\n",
        &["`delimiter` must not be empty"],
    );
}

#[test]
fn a_route_of_the_wrong_form() {
    refused(
        "form",
        &format!("{GOOD_MODULES}routingtable:\n  - input.outbox => output.inbox\n"),
        &[
            "route 1 `input.outbox => output.inbox`",
            "module.queue -> module.queue",
        ],
    );
}

#[test]
fn a_route_naming_an_undefined_module() {
    refused(
        "undefined",
        &format!("{GOOD_MODULES}routingtable:\n  - input.outbox -> outptu.inbox\n"),
        &["module `outptu` is not defined", "did you mean `output`?"],
    );
}

#[test]
fn a_route_naming_a_queue_the_module_lacks() {
    refused(
        "queue",
        &format!("{GOOD_MODULES}routingtable:\n  - input.outbx -> output.inbox\n"),
        &["has no queue `outbx`", "it has: outbox"],
    );
}

#[test]
fn a_queue_connected_twice() {
    refused(
        "twice",
        &format!(
            "{GOOD_MODULES}  other: {{module: wishbone.output.null}}\nroutingtable:\n  - input.outbox -> output.inbox\n  - input.outbox -> other.inbox\n"
        ),
        &[
            "queue `input.outbox` is already connected to `output.inbox`",
            "fanout",
        ],
    );
}

#[test]
fn every_problem_is_reported_in_one_run() {
    let (code, text) = check(
        "many",
        "modules:\n  input: {module: wishbone.input.tpc}\n  output: {module: wishbone.output.tcp, arguments: {hots: x}}\nroutingtable:\n  - input.outbox -> nowhere.inbox\nextra: 1\n",
    );
    assert_eq!(code, Some(2));
    assert!(text.contains("has 4 problems"), "{text}");
}

#[test]
fn yaml_that_is_not_a_bootstrap() {
    refused("syntax", "modules: [\n", &["syntax"]);
    refused("empty", "", &["the file is empty"]);
    refused("list", "- input\n", &["expected a mapping"]);
}

#[test]
fn debug_on_a_bad_file_exits_2_without_starting() {
    let dir = scratch_dir("debug-bad");
    let file = dir.join("bad.yaml");
    std::fs::write(&file, "modules:\n  x: {module: nope}\n").unwrap();
    let output = Command::new(binary("wishbone"))
        .arg("debug")
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown module kind `nope`"));
}

#[test]
fn an_output_to_port_zero_is_refused() {
    refused(
        "output-port-zero",
        "modules:\n  input: {module: wishbone.input.tcp}\n  output: {module: wishbone.output.tcp, arguments: {port: 0}}\nroutingtable:\n  - input.outbox -> output.inbox\n",
        &["module `output`", "`port` must be a port from 1 to 65535"],
    );
    refused(
        "websocket-port-zero",
        "modules:\n  input: {module: wishbone.input.tcp}\n  ws: {module: wishbone.output.websocket, arguments: {url: \"ws://localhost:0/\"}}\nroutingtable:\n  - input.outbox -> ws.inbox\n",
        &["module `ws`", "`url` must be a port from 1 to 65535"],
    );
}

#[test]
fn a_listen_address_that_is_no_address_is_refused() {
    refused(
        "listen-address",
        "modules:\n  input: {module: wishbone.input.tcp, arguments: {address: 'not an address', port: 0}}\n  output: {module: wishbone.output.null}\nroutingtable:\n  - input.outbox -> output.inbox\n",
        &[
            "module `input`",
            "`address` must be an IP address",
            "or a host name",
        ],
    );
    refused(
        "output-host",
        "modules:\n  input: {module: wishbone.input.tcp}\n  output: {module: wishbone.output.tcp, arguments: {host: 'carbon:2003'}}\nroutingtable:\n  - input.outbox -> output.inbox\n",
        &["module `output`", "`host` must be an IP address"],
    );
}

#[test]
fn an_endless_file_is_refused_at_16_mib() {
    let output = Command::new(binary("wishbone"))
        .args(["check", "--config", "/dev/zero"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(text.contains("/dev/zero is larger than 16 MiB"), "{text}");
}

#[test]
fn forty_thousand_modules_are_checked() {
    let mut text = String::from("modules:\n");
    for index in 0..40_000 {
        text.push_str(&format!(
            "  in{index}: {{module: wishbone.input.generator}}\n  out{index}: {{module: wishbone.output.null}}\n"
        ));
    }
    text.push_str("routingtable:\n");
    for index in 0..40_000 {
        text.push_str(&format!("  - in{index}.outbox -> out{index}.inbox\n"));
    }
    let (code, output) = check("forty-thousand", &text);
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("80000 modules, 40000 routes"), "{output}");
}

#[test]
fn a_wal_path_that_is_a_file_is_refused() {
    let dir = scratch_dir("validation-wal-file");
    let file = dir.join("not-a-directory");
    std::fs::write(&file, "x").unwrap();
    for path in [file.clone(), file.join("wal")] {
        refused(
            "walfile",
            &format!(
                "modules:\n  input: {{module: wishbone.input.tcp}}\n  wal: {{module: wishbone.flow.wal, arguments: {{path: \"{}\"}}}}\n  output: {{module: wishbone.output.null}}\nroutingtable:\n  - input.outbox -> wal.inbox\n  - wal.outbox -> output.inbox\n",
                path.display()
            ),
            &["module `wal`", "is a file", &file.display().to_string()],
        );
    }
}

#[test]
fn brackets_nested_a_hundred_thousand_deep_are_refused_with_the_line() {
    let dir = scratch_dir("validation-nested");
    let file = dir.join("nested.yaml");
    let text = format!("modules: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    std::fs::write(&file, text).unwrap();
    let (code, text) = wishbone_check(&file);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("line 1 column 74") && text.contains("nested deeper than 64"),
        "{text}"
    );
}
