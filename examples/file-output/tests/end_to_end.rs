//! The example binary end to end: events from a generator land in files,
//! once each; a file that cannot be written hands its events to `failed`,
//! and a funnel takes them to a file that can; `check` refuses bad
//! arguments.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_wishbone-file-output");

/// Runs `debug` on `bootstrap` until the server ends by itself (its
/// generator finished and everything drained), within a minute.
fn run(dir: &Path, bootstrap: &str) -> Output {
    let config = dir.join("bootstrap.yaml");
    std::fs::write(&config, bootstrap).unwrap();
    let mut child = Command::new(BINARY)
        .args(["debug", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the server did not end by itself");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn every_event_is_appended_once_and_synced() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.log");
    std::fs::write(&file, "already here\n").unwrap();
    let output = run(
        dir.path(),
        &format!(
            "modules:\n  input: {{module: wishbone.input.generator, arguments: {{payload: hello, interval: 0, count: 20000}}}}\n  \
             archive: {{module: example.output.file, arguments: {{path: {}, sync: true}}}}\n\
             routingtable:\n  - input.outbox -> archive.inbox\n",
            file.display()
        ),
    );
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{logs}");
    let written = lines(&file);
    assert_eq!(written.len(), 20001, "appended, nothing lost or doubled");
    assert_eq!(written[0], "already here");
    assert!(written[1..].iter().all(|line| line == "hello"));
    assert!(logs.contains("delivered=20000"), "{logs}");
}

#[test]
fn a_file_that_cannot_be_written_fails_over_through_a_funnel() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no such directory").join("out.log");
    let spare = dir.path().join("spare.log");
    let output = run(
        dir.path(),
        &format!(
            "modules:\n  input: {{module: wishbone.input.generator, arguments: {{payload: hello, interval: 0, count: 5000}}}}\n  \
             broken: {{module: example.output.file, arguments: {{path: \"{}\", failed: true}}}}\n  \
             funnel: {{module: wishbone.flow.funnel}}\n  \
             spare: {{module: example.output.file, arguments: {{path: {}}}}}\n\
             routingtable:\n  - input.outbox -> broken.inbox\n  - broken.failed -> funnel.one\n  \
             - funnel.outbox -> spare.inbox\n",
            missing.display(),
            spare.display()
        ),
    );
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{logs}");
    assert!(!missing.exists());
    assert_eq!(lines(&spare).len(), 5000, "every event through the funnel");
    assert!(logs.contains("failed_over=5000"), "{logs}");
    assert!(logs.contains("No such file or directory"), "{logs}");
}

#[test]
fn check_refuses_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.yaml");
    for (arguments, problem) in [
        ("{path: \"\"}", "`path` must name a file"),
        ("{path: a.log, synk: true}", "unknown field `synk`"),
        ("{sync: true}", "missing field `path`"),
        (
            "{path: a.log, timeout: -1}",
            "`timeout` must be a number of seconds",
        ),
    ] {
        std::fs::write(
            &config,
            format!(
                "modules:\n  input: {{module: wishbone.input.generator}}\n  \
                 archive: {{module: example.output.file, arguments: {arguments}}}\n\
                 routingtable:\n  - input.outbox -> archive.inbox\n"
            ),
        )
        .unwrap();
        let output = Command::new(BINARY)
            .arg("check")
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        let errors = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{arguments}: {errors}");
        assert!(errors.contains(problem), "{arguments}: {errors}");
    }
}
