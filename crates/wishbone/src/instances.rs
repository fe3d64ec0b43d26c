//! `start --instances N`: a launcher that binds every input's listening
//! socket once, runs N instances of the server sharing them, and looks
//! after them.
//!
//! The launcher's pid is the first line of the pid file, the instances'
//! follow and the file is rewritten whenever one is replaced. SIGHUP is
//! passed on to the instances, which reload; SIGINT and SIGTERM are passed
//! on too (a second one aborts their drain). An instance that dies (a signal, or a non-zero exit) while
//! no stop was asked for is logged and replaced after a pause that doubles
//! from 0.5 s; more than [`RESTART_LIMIT`] replacements within
//! [`RESTART_WINDOW`] stop the rest and end the launcher with status 1.
//! An instance that exits 0 ended by itself and is not replaced.

use std::collections::VecDeque;
use std::net::TcpListener;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitCode, ExitStatus};
use std::time::{Duration, Instant};

use wishbone_runtime::{INSTANCE_VARIABLE, InheritedListeners, LISTENERS_VARIABLE, Loaded};

use crate::cli::StartOptions;
use crate::{EXIT_FAILED, pidfile};

/// More replacements than this within [`RESTART_WINDOW`] and the launcher
/// gives up.
pub const RESTART_LIMIT: usize = 5;
/// The window in which replacements are counted.
pub const RESTART_WINDOW: Duration = Duration::from_secs(60);
/// The pause before the first replacement; it doubles with each one in the
/// window, up to [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(500);
const LONGEST_PAUSE: Duration = Duration::from_secs(8);

/// The decision after an instance died.
#[derive(Debug, PartialEq, Eq)]
pub enum AfterDeath {
    /// Start a replacement after this pause.
    Replace(Duration),
    /// Instances keep dying: stop everything.
    GiveUp,
}

/// Replacements made recently, and what to do when one more instance dies.
#[derive(Debug, Default)]
pub struct Restarts {
    recent: VecDeque<Instant>,
}

impl Restarts {
    /// An instance died at `now`.
    pub fn died(&mut self, now: Instant) -> AfterDeath {
        while self
            .recent
            .front()
            .is_some_and(|at| now.duration_since(*at) >= RESTART_WINDOW)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= RESTART_LIMIT {
            return AfterDeath::GiveUp;
        }
        self.recent.push_back(now);
        let doublings = (self.recent.len() - 1).min(8) as u32;
        AfterDeath::Replace((FIRST_PAUSE * 2u32.pow(doublings)).min(LONGEST_PAUSE))
    }
}

/// One instance's place: its process, or when its replacement is due.
struct Slot {
    pid: Option<libc::pid_t>,
    replace_at: Option<Instant>,
}

/// Binds the listening sockets, starts the instances and looks after them
/// until they have all ended.
pub fn launch(options: &StartOptions, loaded: &Loaded) -> ExitCode {
    let listeners = match bind_listeners(loaded) {
        Ok(listeners) => listeners,
        Err(code) => return code,
    };
    let executable = match std::env::current_exe() {
        Ok(path) => path,
        Err(error) => {
            tracing::error!(%error, "cannot find this program's path");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let signals = block_signals();
    let launcher = Launcher {
        options,
        executable,
        listeners,
        slots: (0..options.instances)
            .map(|_| Slot {
                pid: None,
                replace_at: Some(Instant::now()),
            })
            .collect(),
        restarts: Restarts::default(),
        stopping: false,
        failed: false,
    };
    let code = launcher.run(&signals);
    crate::pidfile::remove(options.pid.as_deref());
    code
}

/// Binds every socket a module of the bootstrap listens on, once, so a
/// second server on the same port fails here with "address in use". The
/// modules are those validation built to check the file: the launcher asks
/// them where they listen, and runs none (each instance loads the file and
/// builds its own).
fn bind_listeners(loaded: &Loaded) -> Result<Vec<(String, TcpListener)>, ExitCode> {
    let mut listeners = Vec::new();
    for decl in &loaded.bootstrap.modules {
        let Some(address) = loaded
            .built
            .get(&decl.name)
            .and_then(|module| module.listens())
        else {
            continue;
        };
        match wishbone_runtime::bind(&address) {
            Ok(listener) => listeners.push((decl.name.clone(), listener)),
            Err(error) => {
                tracing::error!(module = %decl.name, %address, %error, "cannot listen");
                return Err(ExitCode::from(EXIT_FAILED));
            }
        }
    }
    Ok(listeners)
}

struct Launcher<'a> {
    options: &'a StartOptions,
    executable: std::path::PathBuf,
    listeners: Vec<(String, TcpListener)>,
    slots: Vec<Slot>,
    restarts: Restarts,
    stopping: bool,
    failed: bool,
}

impl Launcher<'_> {
    fn run(mut self, signals: &libc::sigset_t) -> ExitCode {
        loop {
            let mut changed = self.reap();
            changed |= self.replace_due();
            if changed {
                self.write_pid_file();
            }
            if self.slots.iter().all(|slot| slot.pid.is_none())
                && (self.stopping || self.slots.iter().all(|slot| slot.replace_at.is_none()))
            {
                break;
            }
            let wait = self
                .slots
                .iter()
                .filter_map(|slot| slot.replace_at)
                .min()
                .map(|at| at.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_secs(1))
                .min(Duration::from_secs(1));
            match wait_for_signal(signals, wait) {
                None | Some(libc::SIGCHLD) => {}
                Some(libc::SIGHUP) => self.reload_requested(),
                Some(signal) => self.stop_requested(signal),
            }
        }
        if self.failed {
            ExitCode::from(EXIT_FAILED)
        } else {
            ExitCode::SUCCESS
        }
    }

    /// Collects every instance that ended; true if any did.
    fn reap(&mut self) -> bool {
        let mut changed = false;
        loop {
            let mut status = 0;
            // SAFETY: waitpid with a valid pointer; -1 waits for any child.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                return changed;
            }
            let Some(slot) = self.slots.iter_mut().find(|slot| slot.pid == Some(pid)) else {
                continue;
            };
            slot.pid = None;
            changed = true;
            let status = ExitStatus::from_raw(status);
            if status.success() {
                tracing::info!(pid, "instance ended");
                continue;
            }
            let how = describe(status);
            if self.stopping {
                tracing::error!(pid, %how, "instance ended with an error while stopping");
                self.failed = true;
                continue;
            }
            match self.restarts.died(Instant::now()) {
                AfterDeath::Replace(pause) => {
                    tracing::error!(pid, %how, ?pause, "instance died; starting a replacement");
                    slot.replace_at = Some(Instant::now() + pause);
                }
                AfterDeath::GiveUp => {
                    tracing::error!(pid, %how, limit = RESTART_LIMIT, window = ?RESTART_WINDOW, "instance died; instances keep dying, giving up and stopping the others");
                    self.failed = true;
                    self.stop_requested(libc::SIGTERM);
                }
            }
        }
    }

    /// Starts the instances whose time has come; true if any did.
    fn replace_due(&mut self) -> bool {
        if self.stopping {
            return false;
        }
        let now = Instant::now();
        let mut changed = false;
        for index in 0..self.slots.len() {
            if self.slots[index].replace_at.is_none_or(|at| at > now) {
                continue;
            }
            self.slots[index].replace_at = None;
            match self.spawn(index) {
                Ok(pid) => {
                    tracing::info!(pid, instance = index + 1, "instance started");
                    self.slots[index].pid = Some(pid);
                    changed = true;
                }
                Err(error) => {
                    tracing::error!(%error, "cannot start an instance");
                    match self.restarts.died(now) {
                        AfterDeath::Replace(pause) => {
                            self.slots[index].replace_at = Some(now + pause)
                        }
                        AfterDeath::GiveUp => {
                            self.failed = true;
                            self.stop_requested(libc::SIGTERM);
                        }
                    }
                }
            }
        }
        changed
    }

    /// Threads of each instance: as asked, else the cores shared out.
    fn threads(&self) -> usize {
        let instances = usize::from(self.options.instances).max(1);
        self.options
            .run
            .threads
            .map_or_else(|| (crate::run::cores() / instances).max(1), usize::from)
    }

    fn spawn(&self, index: usize) -> std::io::Result<libc::pid_t> {
        let run = &self.options.run;
        let (variable, descriptors) = InheritedListeners::describe(&self.listeners);
        let launcher = std::process::id() as libc::pid_t;
        let log_format = clap::ValueEnum::to_possible_value(&self.options.log_format)
            .map(|value| value.get_name().to_string())
            .unwrap_or_default();
        let mut command = Command::new(&self.executable);
        command
            .arg("start")
            .arg("--config")
            .arg(&run.config)
            .args(["--queue-size", &run.queue_size.to_string()])
            .args(["--frequency", &run.frequency.to_string()])
            .args(["--drain-timeout", &run.drain_timeout.to_string()])
            .args(["--log-level", &run.log_level])
            .args(["--graphite-prefix", &run.graphite_prefix])
            .args(["--log-format", &log_format])
            .args(["--threads", &self.threads().to_string()])
            .args(
                run.graphite
                    .iter()
                    .flat_map(|address| ["--graphite", address.as_str()]),
            )
            .env(LISTENERS_VARIABLE, variable)
            .env(INSTANCE_VARIABLE, index.to_string());
        // SAFETY: the closure runs in the child between fork and exec and
        // calls only async-signal-safe functions (sigemptyset,
        // pthread_sigmask, fcntl, prctl, getppid).
        unsafe {
            command.pre_exec(move || {
                // The launcher's blocked signals would stay blocked across
                // exec: the instance must receive its stop signals.
                let mut nothing: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut nothing);
                libc::pthread_sigmask(libc::SIG_SETMASK, &nothing, std::ptr::null_mut());
                for descriptor in &descriptors {
                    if libc::fcntl(*descriptor, libc::F_SETFD, 0) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                // An instance whose launcher is killed stops the graceful way.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                if libc::getppid() != launcher {
                    return Err(std::io::Error::other("the launcher is gone"));
                }
                Ok(())
            });
        }
        let child = command.spawn()?;
        Ok(child.id() as libc::pid_t)
    }

    /// SIGHUP: every instance reloads its bootstrap file.
    fn reload_requested(&mut self) {
        tracing::info!("reloading the instances");
        for pid in self.slots.iter().filter_map(|slot| slot.pid) {
            // SAFETY: kill(2) on a child of ours that was not reaped yet.
            unsafe { libc::kill(pid, libc::SIGHUP) };
        }
    }

    /// A stop signal (or giving up): no more replacements, and the signal
    /// goes to every instance; a second one aborts their drain.
    fn stop_requested(&mut self, signal: libc::c_int) {
        if self.stopping {
            tracing::warn!(
                signal = signal_name(signal),
                "second stop request: instances abort their drain"
            );
        } else {
            tracing::info!(signal = signal_name(signal), "stopping the instances");
            self.stopping = true;
        }
        for slot in &mut self.slots {
            slot.replace_at = None;
            if let Some(pid) = slot.pid {
                // SAFETY: kill(2) on a child of ours that was not reaped yet.
                unsafe { libc::kill(pid, signal) };
            }
        }
    }

    fn write_pid_file(&self) {
        let Some(path) = &self.options.pid else {
            return;
        };
        let pids: Vec<u32> = std::iter::once(std::process::id())
            .chain(
                self.slots
                    .iter()
                    .filter_map(|slot| slot.pid)
                    .map(|pid| pid as u32),
            )
            .collect();
        if let Err(error) = pidfile::write(path, &pids) {
            tracing::error!(%error, file = %path.display(), "cannot write pid file");
        }
    }
}

/// How a process ended, for the log.
fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (_, Some(signal)) => format!("killed by {}", signal_name(signal)),
        _ => status.to_string(),
    }
}

fn signal_name(signal: libc::c_int) -> String {
    match signal {
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGHUP => "SIGHUP".into(),
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGABRT => "SIGABRT".into(),
        other => format!("signal {other}"),
    }
}

/// Blocks the signals the launcher waits for, so they queue for
/// [`wait_for_signal`] instead of running handlers. Instances unblock them
/// before exec.
fn block_signals() -> libc::sigset_t {
    // SAFETY: a zeroed sigset_t is filled by sigemptyset before use, and
    // the mask is changed for this thread, the launcher's only one.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGCHLD] {
            libc::sigaddset(&mut set, signal);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// The next of the blocked signals, or `None` after `wait`.
fn wait_for_signal(set: &libc::sigset_t, wait: Duration) -> Option<libc::c_int> {
    let timeout = libc::timespec {
        tv_sec: wait.as_secs() as libc::time_t,
        tv_nsec: wait.subsec_nanos() as libc::c_long,
    };
    // SAFETY: valid pointers to a signal set blocked in this thread and to
    // a timespec; a null siginfo is allowed.
    let signal = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &timeout) };
    (signal > 0).then_some(signal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_and_the_sixth_death_within_a_minute_gives_up() {
        let mut restarts = Restarts::default();
        let start = Instant::now();
        let decisions: Vec<AfterDeath> = (0..6)
            .map(|second| restarts.died(start + Duration::from_secs(second)))
            .collect();
        assert_eq!(
            decisions[0],
            AfterDeath::Replace(Duration::from_millis(500))
        );
        assert_eq!(decisions[1], AfterDeath::Replace(Duration::from_secs(1)));
        assert_eq!(decisions[4], AfterDeath::Replace(Duration::from_secs(8)));
        assert_eq!(decisions[5], AfterDeath::GiveUp);
    }

    #[test]
    fn deaths_far_apart_are_always_replaced_quickly() {
        let mut restarts = Restarts::default();
        let start = Instant::now();
        for minute in 0..20 {
            assert_eq!(
                restarts.died(start + RESTART_WINDOW * minute),
                AfterDeath::Replace(Duration::from_millis(500))
            );
        }
    }

    #[test]
    fn a_death_is_described_by_its_status_or_signal() {
        assert_eq!(describe(ExitStatus::from_raw(1 << 8)), "exit status 1");
        assert_eq!(
            describe(ExitStatus::from_raw(libc::SIGKILL)),
            "killed by SIGKILL"
        );
    }
}
