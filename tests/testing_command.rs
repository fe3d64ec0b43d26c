//! `wishbone test` on the example of `docs/testing.md`: it passes as
//! shipped, a wrong expectation fails with the difference (exit 1), and
//! files it cannot use exit 2.

use std::path::{Path, PathBuf};
use std::process::Command;

use wishbone_e2e::*;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/examples/testing")
        .join(name)
}

fn run(config: &Path, tests: &Path) -> (Option<i32>, String) {
    let output = Command::new(binary("wishbone"))
        .args(["test", "--config"])
        .arg(config)
        .arg("--tests")
        .arg(tests)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(!text.contains("panicked"), "{text}");
    (output.status.code(), text)
}

#[test]
fn the_documented_suite_passes_and_the_page_shows_it_as_it_is() {
    let (code, text) = run(&example("pipeline.yaml"), &example("pipeline.tests.yaml"));
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("2 of 2 tests passed"), "{text}");
    let page =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/testing.md"))
            .unwrap();
    for name in ["pipeline.yaml", "pipeline.tests.yaml"] {
        let file = std::fs::read_to_string(example(name)).unwrap();
        assert!(
            page.contains(&format!("```yaml\n{file}```")),
            "{name} is on the page as it is"
        );
    }
}

#[test]
fn a_wrong_expectation_fails_with_the_difference() {
    let dir = scratch_dir("testing-wrong");
    let tests = dir.join("wrong.yaml");
    std::fs::write(
        &tests,
        "tests:\n  - name: errors are kept\n    input: {queue: errors.inbox, events: ['{\"level\":\"error\"}']}\n    expect:\n      - {queue: errors.outbox, events: ['{\"level\":\"info\"}']}\n      - {queue: errors.rejected, count: 0}\n  - name: tagged\n    input: {queue: tag.inbox, events: ['{\"a\":1}']}\n    expect:\n      - {queue: tag.outbox, condition: '.team == \"billing\"'}\n",
    )
    .unwrap();
    let (code, text) = run(&example("pipeline.yaml"), &tests);
    assert_eq!(code, Some(1), "{text}");
    for part in [
        "FAILED  errors are kept",
        "errors.outbox: expected 1 events:",
        "{\"level\":\"info\"}",
        "got 1:",
        "{\"level\":\"error\"}",
        "FAILED  tagged",
        "1 of 1 events do not hold `.team == \"billing\"`",
        "0 of 2 tests passed",
    ] {
        assert!(text.contains(part), "`{part}` in:\n{text}");
    }
    assert!(
        !text.contains("errors.rejected"),
        "the count that held is not reported:\n{text}"
    );
}

#[test]
fn files_it_cannot_use_exit_2_with_the_reason() {
    let dir = scratch_dir("testing-broken");
    let cases = [
        (
            "tests:\n  - name: x\n    input: {queue: input.outbox, events: ['a']}\n    expect: []\n",
            "is an input, output or metrics module",
        ),
        (
            "tests:\n  - name: x\n    input: {queue: errors.inbox, events: ['a']}\n    expect:\n      - {queue: errors.outbox, count: 1, events: []}\n",
            "expect one of `events`, `count` and `condition`",
        ),
        ("tests: [{name: x}]\n", "missing field"),
    ];
    for (index, (text, reason)) in cases.iter().enumerate() {
        let tests = dir.join(format!("broken-{index}.yaml"));
        std::fs::write(&tests, text).unwrap();
        let (code, output) = run(&example("pipeline.yaml"), &tests);
        assert_eq!(code, Some(2), "{output}");
        assert!(output.contains(reason), "`{reason}` in:\n{output}");
    }
}
