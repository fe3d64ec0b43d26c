//! `stop`: SIGINT to every pid of a pid file, wait, remove the file.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::cli::StopOptions;
use crate::{EXIT_FAILED, EXIT_INVALID};

pub fn stop(options: &StopOptions) -> ExitCode {
    let text = match std::fs::read_to_string(&options.pid) {
        Ok(text) => text,
        Err(error) => {
            eprintln!(
                "error: cannot read pid file {}: {error}",
                options.pid.display()
            );
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let mut pids = Vec::new();
    for word in text.split_whitespace() {
        match word.parse::<libc::pid_t>() {
            Ok(pid) if pid > 0 => pids.push(pid),
            _ => {
                eprintln!(
                    "error: pid file {} holds `{word}`, which is not a process id",
                    options.pid.display()
                );
                return ExitCode::from(EXIT_INVALID);
            }
        }
    }
    for pid in &pids {
        // SAFETY: kill(2) with a pid read from the file; a stale pid fails with ESRCH.
        unsafe { libc::kill(*pid, libc::SIGINT) };
    }
    let deadline = Instant::now() + Duration::from_secs_f64(options.timeout.max(0.0));
    let alive = |pid: &libc::pid_t| unsafe { libc::kill(*pid, 0) } == 0;
    while pids.iter().any(alive) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<String> = pids
        .iter()
        .filter(|pid| alive(pid))
        .map(ToString::to_string)
        .collect();
    if !left.is_empty() {
        eprintln!(
            "error: still running after {}s: {}",
            options.timeout,
            left.join(", ")
        );
        return ExitCode::from(EXIT_FAILED);
    }
    let _ = std::fs::remove_file(&options.pid);
    println!("stopped {} process(es)", pids.len());
    ExitCode::SUCCESS
}
