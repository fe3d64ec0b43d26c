//! `wishbone start` as a service: instances sharing the input port, a
//! launcher that replaces an instance that dies, a pid file kept true, a
//! second server refused on a port already served, and `wishbone stop`
//! draining them.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);

fn service_bootstrap(dir: &Path, port: u16, sink_port: u16) -> PathBuf {
    let config = dir.join("service.yaml");
    std::fs::write(
        &config,
        format!(
            "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: {port}}}}}\n  \
             output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {sink_port}}}}}\n\
             routingtable:\n  - input.outbox -> output.inbox\n"
        ),
    )
    .unwrap();
    config
}

/// `wishbone start --config CONFIG --pid PID_FILE --instances N`, its log collected.
fn start(config: &Path, pid_file: &Path, instances: u16) -> (Child, Output) {
    let mut child = Command::new(binary("wishbone"))
        .arg("start")
        .arg("--config")
        .arg(config)
        .arg("--pid")
        .arg(pid_file)
        .args(["--instances", &instances.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Output::default();
    log.collect_from(child.stderr.take().unwrap());
    (child, log)
}

/// A launcher of two instances on a free port, proxying to a sink, with
/// its pid file written and both instances running.
/// The directory is the last field: it is removed after the processes stop.
struct Service {
    sink: Sink,
    port: u16,
    config: PathBuf,
    pid_file: PathBuf,
    launcher: Child,
    log: Output,
    dir: Scratch,
}

fn service(name: &str) -> Service {
    let dir = scratch_dir(name);
    let sink = Sink::start(&dir, "backend");
    let port = free_port();
    let config = service_bootstrap(&dir, port, sink.port);
    let pid_file = dir.join("wishbone.pid");
    let (launcher, log) = start(&config, &pid_file, 2);
    wait_until(
        MINUTE,
        "the launcher and two instances in the pid file",
        || pids(&pid_file).len() == 3,
    );
    Service {
        sink,
        port,
        config,
        pid_file,
        launcher,
        log,
        dir,
    }
}

impl Service {
    /// `wishbone stop` succeeds and the launcher exits 0.
    fn stop(&mut self) -> String {
        let stopped = stop(&self.pid_file);
        assert!(
            stopped.status.success(),
            "{}",
            String::from_utf8_lossy(&stopped.stderr)
        );
        assert!(wait_exit(&mut self.launcher).success());
        String::from_utf8_lossy(&stopped.stdout).into_owned()
    }
}

impl Drop for Service {
    /// A test that failed midway leaves nothing running: the launcher and
    /// the instances in its pid file are killed.
    fn drop(&mut self) {
        if matches!(self.launcher.try_wait(), Ok(None)) {
            for pid in pids(&self.pid_file) {
                // SAFETY: kill takes any pid; with the launcher running,
                // these are its own and its instances.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            }
            let _ = self.launcher.kill();
            let _ = self.launcher.wait();
        }
    }
}

fn pids(pid_file: &Path) -> Vec<u32> {
    std::fs::read_to_string(pid_file)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect()
}

fn listeners(port: u16) -> usize {
    tcp_sockets()
        .iter()
        .filter(|socket| socket.local_port == port && socket.state == LISTENING)
        .count()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat.contains(") Z "))
        .unwrap_or(false)
}

fn stop(pid_file: &Path) -> std::process::Output {
    Command::new(binary("wishbone"))
        .arg("stop")
        .arg("--pid")
        .arg(pid_file)
        .output()
        .unwrap()
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let mut status = None;
    wait_until(MINUTE, "the launcher to exit", || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    status.unwrap()
}

#[test]
fn two_instances_share_the_port_and_stop_drains_both() {
    let mut service = service("instances");
    let port = service.port;
    assert_eq!(
        pids(&service.pid_file)[0],
        service.launcher.id(),
        "the launcher comes first"
    );
    assert_eq!(listeners(port), 1, "one socket, bound once, shared");
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
    service.sink.wait_for_lines(20_000, MINUTE);
    let (pid_file, sink) = (service.pid_file.clone(), service.dir.join("backend.out"));
    assert!(service.stop().contains("stopped 3 process(es)"));
    let sink_lines = std::fs::read(sink).unwrap();
    assert!(!pid_file.exists(), "stop removes the pid file");
    assert_eq!(
        sorted_lines(&sink_lines),
        sorted_lines(&sent),
        "every line once"
    );
}

#[test]
fn a_killed_instance_is_logged_and_replaced_and_stop_stops_the_live_ones() {
    let mut service = service("replace");
    let pid_file = &service.pid_file;
    let before = pids(pid_file);
    let victim = before[1];
    unsafe { libc::kill(victim as i32, libc::SIGKILL) };
    wait_until(
        Duration::from_secs(5),
        "a replacement in the pid file",
        || {
            let now = pids(pid_file);
            now.len() == 3 && !now.contains(&victim)
        },
    );
    let replacement = *pids(pid_file)
        .iter()
        .find(|pid| !before.contains(pid))
        .unwrap();
    service.log.wait_for("killed by SIGKILL", MINUTE);
    service
        .log
        .wait_for(&format!("instance started pid={replacement}"), MINUTE);
    assert!(
        !alive(victim),
        "the dead instance was reaped, not left a zombie"
    );
    send(service.port, b"served by the instances\n");
    service.sink.wait_for_lines(1, MINUTE);
    let report = service.stop();
    assert!(report.contains("stopped 3 process(es)"), "{report}");
    assert!(report.contains(&replacement.to_string()), "{report}");
    assert!(!report.contains(&victim.to_string()), "{report}");
}

#[test]
fn a_second_server_on_a_served_port_fails_with_address_in_use() {
    let mut service = service("second");
    for instances in ["2", "1"] {
        let second = Command::new(binary("wishbone"))
            .arg("start")
            .arg("--config")
            .arg(&service.config)
            .args(["--instances", instances])
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&second.stderr);
        assert_eq!(second.status.code(), Some(1), "{log}");
        assert!(log.contains("Address already in use"), "{log}");
    }
    assert_eq!(listeners(service.port), 1);
    service.stop();
}

#[test]
fn instances_that_keep_dying_make_the_launcher_give_up() {
    let mut service = service("give-up");
    let mut killed = Vec::new();
    while service.launcher.try_wait().unwrap().is_none() && killed.len() < 8 {
        let victim = pids(&service.pid_file)
            .into_iter()
            .skip(1)
            .find(|pid| !killed.contains(pid) && alive(*pid));
        if let Some(victim) = victim {
            unsafe { libc::kill(victim as i32, libc::SIGKILL) };
            killed.push(victim);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = wait_exit(&mut service.launcher);
    assert_eq!(status.code(), Some(1), "{}", service.log.text());
    service.log.wait_for("giving up", MINUTE);
    assert_eq!(
        killed.len(),
        6,
        "five replacements, then the sixth death ends it"
    );
    assert!(!service.pid_file.exists());
}

#[test]
fn a_second_start_with_a_running_servers_pid_file_leaves_it_alone() {
    let mut service = service("same-pid-file");
    let before = pids(&service.pid_file);
    let second = Command::new(binary("wishbone"))
        .arg("start")
        .arg("--config")
        .arg(&service.config)
        .arg("--pid")
        .arg(&service.pid_file)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{log}");
    assert!(
        log.contains("a server of this pid file is running"),
        "{log}"
    );
    assert_eq!(
        pids(&service.pid_file),
        before,
        "the pid file still names the first server"
    );
    service.stop();
}

#[test]
fn instances_stop_gracefully_when_their_launcher_is_killed() {
    let mut service = service("orphans");
    let instances: Vec<u32> = pids(&service.pid_file).into_iter().skip(1).collect();
    service.launcher.kill().unwrap();
    service.launcher.wait().unwrap();
    wait_until(MINUTE, "the instances to end", || {
        instances.iter().all(|pid| !alive(*pid))
    });
}

#[test]
fn reload_reaches_every_instance_and_a_replaced_input_keeps_the_shared_socket() {
    let dir = scratch_dir("reload-instances");
    let sink = Sink::start(&dir, "backend");
    let port = free_port();
    let config = dir.join("relp.yaml");
    let bootstrap = |window: usize| {
        format!(
            "modules:\n  input: {{module: wishbone.input.relp, arguments: {{address: 127.0.0.1, port: {port}, window: {window}}}}}\n  \
             output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {}}}}}\n\
             routingtable:\n  - input.outbox -> output.inbox\n",
            sink.port
        )
    };
    std::fs::write(&config, bootstrap(128)).unwrap();
    let pid_file = dir.join("wishbone.pid");
    let (mut launcher, log) = start(&config, &pid_file, 2);
    // Both instances listen: their signal handlers are in place.
    wait_until(MINUTE, "both instances listening", || {
        log.count("listening module=input") >= 2
    });
    // A new window replaces the RELP input in both instances. Each would
    // fail to bind the port a second time: the replacement must get the
    // socket the launcher bound.
    std::fs::write(&config, bootstrap(64)).unwrap();
    let reloaded = Command::new(binary("wishbone"))
        .arg("reload")
        .arg("--pid")
        .arg(&pid_file)
        .output()
        .unwrap();
    assert!(reloaded.status.success());
    let said = String::from_utf8_lossy(&reloaded.stdout);
    assert!(said.contains("reload requested of 3 process(es)"), "{said}");
    wait_until(MINUTE, "both instances reloaded", || {
        log.count("reloaded: kept 1, started 0, replaced 1, stopped 0") == 2
    });
    wait_until(MINUTE, "both replacements listening", || {
        log.count("listening module=input") >= 4
    });
    assert_eq!(listeners(port), 1, "still one socket, never closed");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
    let stopped = stop(&pid_file);
    assert!(stopped.status.success());
    assert!(wait_exit(&mut launcher).success());
    let text = log.text();
    assert!(
        !text.contains("module failed") && !text.contains("instance died"),
        "{text}"
    );
}
