//! `stop` and `reload`: SIGTERM (or SIGHUP) to the server of a pid file;
//! `stop` waits and removes the file.
//!
//! Every pid is checked first ([`pidfile::inspect`]): a pid that is gone,
//! or that is now another process, is named and never signalled, and the
//! exit status is 1. The first process of each family is signalled (a
//! launcher passes the signal on to its instances).

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use crate::cli::{ReloadOptions, StopOptions};
use crate::pidfile::{self, Found};
use crate::{EXIT_FAILED, EXIT_INVALID};

/// The servers of a pid file.
struct Servers {
    /// Each pid still a server of this file, with its parent's pid.
    ours: Vec<(libc::pid_t, libc::pid_t)>,
    /// Some pid was gone or another process (each said on standard error).
    stale: bool,
    written: SystemTime,
}

impl Servers {
    /// Reads and checks the pid file; an unreadable or malformed one is
    /// said, with the exit status.
    fn read(file: &Path) -> Result<Self, ExitCode> {
        let path = file.display();
        let (text, written) = std::fs::read_to_string(file)
            .and_then(|text| Ok((text, std::fs::metadata(file)?.modified()?)))
            .map_err(|error| {
                eprintln!("error: cannot read pid file {path}: {error}");
                ExitCode::from(EXIT_INVALID)
            })?;
        let pids = pidfile::parse(&text).map_err(|error| {
            eprintln!("error: pid file {path} {error}");
            ExitCode::from(EXIT_INVALID)
        })?;
        let mut servers = Servers {
            ours: Vec::new(),
            stale: false,
            written,
        };
        for pid in &pids {
            match pidfile::inspect(*pid, written) {
                Found::Ours { parent } => servers.ours.push((*pid, parent)),
                Found::Gone => {
                    servers.stale = true;
                    eprintln!("error: pid {pid} of {path} is not running");
                }
                Found::Stranger(what) => {
                    servers.stale = true;
                    eprintln!(
                        "error: pid {pid} of {path} is not a wishbone server of this pid file: it is {what}; not signalled"
                    );
                }
            }
        }
        Ok(servers)
    }

    /// Every pid of the family.
    fn family(&self) -> Vec<libc::pid_t> {
        self.ours.iter().map(|(pid, _)| *pid).collect()
    }

    /// Sends `signal` to the first process of each family.
    fn signal(&self, signal: libc::c_int) {
        let family = self.family();
        for (pid, parent) in &self.ours {
            if !family.contains(parent) {
                // SAFETY: kill(2) on a pid just checked to be a server of this file.
                unsafe { libc::kill(*pid, signal) };
            }
        }
    }
}

/// SIGHUP to the servers of a pid file: each reads its bootstrap file
/// again and reloads (a launcher passes it to its instances).
pub fn reload(options: &ReloadOptions) -> ExitCode {
    let servers = match Servers::read(&options.pid) {
        Ok(servers) => servers,
        Err(code) => return code,
    };
    servers.signal(libc::SIGHUP);
    let signalled: Vec<String> = servers.family().iter().map(ToString::to_string).collect();
    println!(
        "reload requested of {} process(es): {} (the server logs `reloaded` or why it refused)",
        signalled.len(),
        signalled.join(", ")
    );
    if servers.stale || signalled.is_empty() {
        return ExitCode::from(EXIT_FAILED);
    }
    ExitCode::SUCCESS
}

pub fn stop(options: &StopOptions) -> ExitCode {
    let path = options.pid.display();
    let servers = match Servers::read(&options.pid) {
        Ok(servers) => servers,
        Err(code) => return code,
    };
    let (written, stale) = (servers.written, servers.stale);
    let family = servers.family();
    servers.signal(libc::SIGTERM);
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
