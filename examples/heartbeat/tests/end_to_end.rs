//! The example binary end to end: thirty heartbeats, one in three kept,
//! reach a real listener in order, and the server stops with status 0 on
//! SIGTERM; `check` refuses a sample of every 0.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_wishbone-heartbeat");

#[test]
fn one_beat_in_three_reaches_the_peer_in_order() {
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = backend.local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("wishbone-heartbeat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("bootstrap.yaml");
    std::fs::write(
        &config,
        format!(
            "modules:\n  beat: {{module: example.input.heartbeat, arguments: {{interval_ms: 1, count: 30}}}}\n  \
             sample: {{module: example.flow.sample, arguments: {{every: 3}}}}\n  \
             output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {port}}}}}\n\
             routingtable:\n  - beat.outbox -> sample.inbox\n  - sample.outbox -> output.inbox\n"
        ),
    )
    .unwrap();
    let mut child = Command::new(BINARY)
        .args(["debug", "--config"])
        .arg(&config)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (mut received, _) = backend.accept().unwrap();
    received
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let expected: String = (0..30)
        .step_by(3)
        .map(|n| format!("{{\"beat\":{n}}}\n"))
        .collect();
    let mut text = Vec::new();
    let mut buffer = [0u8; 4096];
    while text.len() < expected.len() {
        let read = received.read(&mut buffer).unwrap();
        assert!(
            read > 0,
            "the peer got {:?}",
            String::from_utf8_lossy(&text)
        );
        text.extend_from_slice(&buffer[..read]);
    }
    // SIGTERM: the graceful stop, exit status 0.
    let stopped = Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(stopped.success());
    let status = child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(String::from_utf8(text).unwrap(), expected);
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_sample_of_every_zero_is_refused_by_check() {
    let dir = std::env::temp_dir().join(format!("wishbone-heartbeat-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("bootstrap.yaml");
    std::fs::write(
        &config,
        "modules:\n  beat: {module: example.input.heartbeat}\n  sample: {module: example.flow.sample, arguments: {every: 0}}\n\
         routingtable:\n  - beat.outbox -> sample.inbox\n",
    )
    .unwrap();
    let output = Command::new(BINARY)
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains("`every`") && text.contains("at least 1"),
        "{text}"
    );
}
