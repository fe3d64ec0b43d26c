//! `wishbone stop` with a pid file that is not what it should be: it never
//! signals a process that is not the server the file describes.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use wishbone_e2e::*;

fn stop(pid_file: &Path) -> (Option<i32>, String) {
    let output = Command::new(binary("wishbone"))
        .arg("stop")
        .arg("--pid")
        .arg(pid_file)
        .args(["--timeout", "5"])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

/// Sets the file's modification time, as if it had been written then.
fn backdate(path: &Path, written: std::time::SystemTime) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(written).unwrap();
}

#[test]
fn a_stale_pid_of_another_program_is_named_and_not_signalled() {
    let dir = scratch_dir("stale-pid");
    let mut stranger = Command::new("sleep").arg("60").spawn().unwrap();
    let cmdline = format!("/proc/{}/cmdline", stranger.id());
    wait_until(Duration::from_secs(10), "sleep to start", || {
        std::fs::read(&cmdline)
            .unwrap_or_default()
            .starts_with(b"sleep")
    });
    let pid_file = dir.join("wishbone.pid");
    std::fs::write(&pid_file, format!("{}\n", stranger.id())).unwrap();
    let (code, text) = stop(&pid_file);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains(&format!("pid {}", stranger.id())), "{text}");
    assert!(
        text.contains("sleep 60"),
        "names what the process is: {text}"
    );
    assert!(
        stranger.try_wait().unwrap().is_none(),
        "the stranger was not signalled"
    );
    stranger.kill().unwrap();
    stranger.wait().unwrap();
}

#[test]
fn a_pid_that_is_gone_is_reported_and_the_status_says_so() {
    let dir = scratch_dir("gone-pid");
    let mut gone = Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let pid_file = dir.join("wishbone.pid");
    std::fs::write(&pid_file, format!("{}\n", gone.id())).unwrap();
    let (code, text) = stop(&pid_file);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("is not running"), "{text}");
}

#[test]
fn init_an_empty_file_and_garbage_are_refused_with_status_2() {
    let dir = scratch_dir("bad-pid");
    let pid_file = dir.join("wishbone.pid");
    for (content, expected) in [
        ("", "is empty"),
        ("\n", "is empty"),
        ("1\n", "holds `1`"),
        ("0\n", "holds `0`"),
        ("abc\n", "holds `abc`"),
    ] {
        std::fs::write(&pid_file, content).unwrap();
        let (code, text) = stop(&pid_file);
        assert_eq!(code, Some(2), "{content:?}: {text}");
        assert!(text.contains(expected), "{content:?}: {text}");
    }
}

#[test]
fn a_server_started_after_the_file_was_written_is_not_the_one_it_names() {
    let dir = scratch_dir("reused-pid");
    let sink = Sink::start(&dir, "backend");
    let pid_file = dir.join("old.pid");
    std::fs::write(&pid_file, "placeholder\n").unwrap();
    let written = std::time::SystemTime::now() - Duration::from_secs(30);
    backdate(&pid_file, written);
    let mut wishbone = Command::new(binary("wishbone"))
        .arg("start")
        .arg("--config")
        .arg({
            let config = dir.join("proxy.yaml");
            std::fs::write(&config, proxy_bootstrap(sink.port)).unwrap();
            config
        })
        .arg("--pid")
        .arg(dir.join("own.pid"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(30), "the server's own pid file", || {
        dir.join("own.pid").exists()
    });
    // The old file names the new server's pid, as after a reboot.
    std::fs::write(&pid_file, format!("{}\n", wishbone.id())).unwrap();
    backdate(&pid_file, written);
    let (code, text) = stop(&pid_file);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("started after the pid file was written"),
        "{text}"
    );
    assert!(wishbone.try_wait().unwrap().is_none(), "not signalled");
    let (code, text) = stop(&dir.join("own.pid"));
    assert_eq!(code, Some(0), "its own pid file stops it: {text}");
    assert!(wishbone.wait().unwrap().success());
}
