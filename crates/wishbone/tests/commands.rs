//! The `wishbone` command as a user meets it: help, list, show, check, and
//! exit statuses.

use std::process::{Command, Output};

fn wishbone(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wishbone"))
        .args(args)
        .output()
        .expect("run wishbone")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn help_names_every_command_and_shows_a_bootstrap() {
    let output = wishbone(&["--help"]);
    assert!(output.status.success());
    let help = text(&output);
    for command in ["debug", "start", "stop", "list", "show", "check"] {
        assert!(help.contains(command), "--help lacks {command}:\n{help}");
    }
    assert!(help.contains("input.outbox -> output.inbox"), "{help}");
    assert!(text(&wishbone(&["start", "--help"])).contains("--instances"));
}

#[test]
fn list_shows_every_builtin_kind_and_the_older_names() {
    let listing = text(&wishbone(&["list"]));
    for kind in [
        "wishbone.input.tcp",
        "wishbone.output.tcp",
        "wishbone.flow.roundrobin",
        "wishbone.builtin.flow.roundrobin",
        "wishbone.flow.funnel",
        "wishbone.builtin.metrics.graphite",
    ] {
        assert!(listing.contains(kind), "list lacks {kind}:\n{listing}");
    }
}

#[test]
fn show_prints_arguments_with_defaults_or_suggests_a_kind() {
    let docs = wishbone(&["show", "--docs", "wishbone.output.tcp"]);
    assert!(docs.status.success());
    assert!(text(&docs).contains("reconnect_max"));
    let unknown = wishbone(&["show", "--docs", "wishbone.output.tpc"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        text(&unknown).contains("did you mean `wishbone.output.tcp`?"),
        "{}",
        text(&unknown)
    );
}

#[test]
fn check_of_a_missing_file_names_it_and_exits_2() {
    let output = wishbone(&["check", "--config", "/nonexistent/scenario.yaml"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("cannot read bootstrap file /nonexistent/scenario.yaml"));
}
