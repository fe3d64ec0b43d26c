//! `stop`: SIGTERM to the server of a pid file, wait, remove the file.
//!
//! Every pid is checked first ([`pidfile::inspect`]): a pid that is gone,
//! or that is now another process, is named and never signalled, and the
//! exit status is 1. The first process of each family is signalled (a
//! launcher passes the signal on to its instances); all are waited for.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::cli::StopOptions;
use crate::pidfile::{self, Found};
use crate::{EXIT_FAILED, EXIT_INVALID};

pub fn stop(options: &StopOptions) -> ExitCode {
    let path = options.pid.display();
    let (text, written) = match std::fs::read_to_string(&options.pid)
        .and_then(|text| Ok((text, std::fs::metadata(&options.pid)?.modified()?)))
    {
        Ok(read) => read,
        Err(error) => {
            eprintln!("error: cannot read pid file {path}: {error}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let pids = match pidfile::parse(&text) {
        Ok(pids) => pids,
        Err(error) => {
            eprintln!("error: pid file {path} {error}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let mut ours = Vec::new();
    let mut stale = false;
    for pid in &pids {
        match pidfile::inspect(*pid, written) {
            Found::Ours { parent } => ours.push((*pid, parent)),
            Found::Gone => {
                stale = true;
                eprintln!("error: pid {pid} of {path} is not running");
            }
            Found::Stranger(what) => {
                stale = true;
                eprintln!(
                    "error: pid {pid} of {path} is not a wishbone server of this pid file: it is {what}; not signalled"
                );
            }
        }
    }
    let family: Vec<libc::pid_t> = ours.iter().map(|(pid, _)| *pid).collect();
    for (pid, parent) in &ours {
        if !family.contains(parent) {
            // SAFETY: kill(2) on a pid just checked to be a server of this file.
            unsafe { libc::kill(*pid, libc::SIGTERM) };
        }
    }
    let deadline = Instant::now() + Duration::from_secs_f64(options.timeout.max(0.0));
    let alive = |pid: &libc::pid_t| matches!(pidfile::inspect(*pid, written), Found::Ours { .. });
    while family.iter().any(alive) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<String> = family
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
    let stopped: Vec<String> = family.iter().map(ToString::to_string).collect();
    println!(
        "stopped {} process(es): {}",
        family.len(),
        stopped.join(", ")
    );
    if stale {
        eprintln!("error: pid file {path} was stale; removed");
        return ExitCode::from(EXIT_FAILED);
    }
    ExitCode::SUCCESS
}
