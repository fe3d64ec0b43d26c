//! `wishbone start` as a service: several instances sharing the input port,
//! a pid file, and `wishbone stop` draining them.

use std::process::{Command, Stdio};
use std::time::Duration;

use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn two_instances_share_the_port_and_stop_drains_both() {
    let dir = scratch_dir("instances");
    let sink = Sink::start(&dir, "backend");
    let port = free_port();
    let config = dir.join("service.yaml");
    std::fs::write(
        &config,
        format!(
            "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: {port}, reuse_port: true}}}}\n  \
             output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {}}}}}\n\
             routingtable:\n  - input.outbox -> output.inbox\n",
            sink.port
        ),
    )
    .unwrap();
    let pid_file = dir.join("wishbone.pid");
    let mut parent = Command::new(binary("wishbone"))
        .arg("start")
        .arg("--config")
        .arg(&config)
        .arg("--pid")
        .arg(&pid_file)
        .args(["--instances", "2"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pids = || {
        std::fs::read_to_string(&pid_file)
            .unwrap_or_default()
            .split_whitespace()
            .count()
    };
    wait_until(MINUTE, "two pids in the pid file", || pids() == 2);
    wait_until(MINUTE, "both instances to listen", || {
        tcp_sockets()
            .iter()
            .filter(|socket| socket.local_port == port && socket.state == LISTENING)
            .count()
            == 2
    });
    let clients: Vec<_> = (0..20)
        .map(|client| {
            std::thread::spawn(move || {
                let data: Vec<u8> = (0..1000)
                    .flat_map(|line| format!("{client:02} {line:04}\n").into_bytes())
                    .collect();
                send(port, &data);
                data
            })
        })
        .collect();
    let sent: Vec<u8> = clients
        .into_iter()
        .flat_map(|client| client.join().unwrap())
        .collect();
    sink.wait_for_lines(20_000, MINUTE);
    let stop = Command::new(binary("wishbone"))
        .arg("stop")
        .arg("--pid")
        .arg(&pid_file)
        .output()
        .unwrap();
    assert!(
        stop.status.success(),
        "{}",
        String::from_utf8_lossy(&stop.stderr)
    );
    assert!(String::from_utf8_lossy(&stop.stdout).contains("stopped 2 process(es)"));
    assert!(!pid_file.exists(), "stop removes the pid file");
    let mut status = None;
    wait_until(MINUTE, "the parent to exit", || {
        status = parent.try_wait().unwrap();
        status.is_some()
    });
    assert!(status.unwrap().success());
    assert_eq!(
        sorted_lines(&sink.received()),
        sorted_lines(&sent),
        "every line once"
    );
}
