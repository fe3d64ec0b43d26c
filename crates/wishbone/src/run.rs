//! `debug` and `start`: run a server.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use wishbone_runtime::metrics_exporter_graphite::{GraphiteBuilder, sanitize};
use wishbone_runtime::{GraphiteHandle, ModuleSet, RuntimeOptions, Server};

use crate::cli::{RunOptions, StartOptions};
use crate::logging::{self, Style};
use crate::{EXIT_FAILED, EXIT_INVALID, catalog};

pub fn debug(options: &RunOptions, modules: &ModuleSet) -> ExitCode {
    if let Err(error) = logging::init(&options.log_level, Style::Human) {
        eprintln!("error: {error}");
        return ExitCode::from(EXIT_INVALID);
    }
    serve(options, modules)
}

pub fn start(options: &StartOptions, modules: &ModuleSet) -> ExitCode {
    if let Err(error) = logging::init(&options.run.log_level, Style::Service) {
        eprintln!("error: {error}");
        return ExitCode::from(EXIT_INVALID);
    }
    if options.instances > 1 {
        if let Err(code) = catalog::load(&options.run.config, modules) {
            return code;
        }
        return instances(options);
    }
    let pid_file = options.pid.as_deref();
    if let Some(path) = pid_file
        && let Err(error) = std::fs::write(path, format!("{}\n", std::process::id()))
    {
        eprintln!("error: cannot write pid file {}: {error}", path.display());
        return ExitCode::from(EXIT_FAILED);
    }
    let code = serve(&options.run, modules);
    remove_pid_file(pid_file);
    code
}

fn serve(options: &RunOptions, modules: &ModuleSet) -> ExitCode {
    let bootstrap = match catalog::load(&options.config, modules) {
        Ok(bootstrap) => bootstrap,
        Err(code) => return code,
    };
    let (Some(frequency), Some(drain_timeout)) =
        (seconds(options.frequency), seconds(options.drain_timeout))
    else {
        eprintln!("error: --frequency and --drain-timeout take a number of seconds above 0");
        return ExitCode::from(EXIT_INVALID);
    };
    let hostname = hostname::get()
        .ok()
        .and_then(|name| name.into_string().ok())
        .unwrap_or_else(|| "localhost".into());
    let runtime_options = RuntimeOptions {
        queue_size: options.queue_size as usize,
        frequency,
        drain_timeout,
        reuse_port: options.reuse_port,
        metrics: install_metrics(options, &hostname, frequency),
        hostname,
    };
    tracing::info!(config = %options.config.display(), modules = bootstrap.modules.len(), pid = std::process::id(), "starting");
    match Server::new(bootstrap, modules.clone(), runtime_options).run() {
        Ok(_) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(%error, "stopped with errors");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// Installs the recorder every module's counters go to; with --graphite it
/// also pushes them straight to carbon.
fn install_metrics(
    options: &RunOptions,
    hostname: &str,
    frequency: Duration,
) -> Option<GraphiteHandle> {
    let prefix = format!(
        "{}.{}",
        sanitize(&options.graphite_prefix),
        sanitize(hostname)
    );
    let mut builder = GraphiteBuilder::new()
        .with_prefix(prefix)
        .with_interval(frequency);
    if let Some(address) = &options.graphite {
        tracing::info!(%address, "sending metrics to carbon");
        builder = builder.with_address(address.clone());
    }
    match builder.install() {
        Ok(handle) => Some(handle),
        Err(error) => {
            tracing::warn!(%error, "metrics are not recorded");
            None
        }
    }
}

fn seconds(value: f64) -> Option<Duration> {
    (value > 0.0)
        .then(|| Duration::try_from_secs_f64(value).ok())
        .flatten()
}

/// Runs `instances` copies of this command sharing input ports, writes their
/// pids, passes SIGINT and SIGTERM on to them, and waits for all.
fn instances(options: &StartOptions) -> ExitCode {
    let executable = match std::env::current_exe() {
        Ok(path) => path,
        Err(error) => {
            eprintln!("error: cannot find this program's path: {error}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let run = &options.run;
    let mut children = Vec::new();
    for _ in 0..options.instances {
        let spawned = std::process::Command::new(&executable)
            .arg("start")
            .arg("--config")
            .arg(&run.config)
            .args(["--queue-size", &run.queue_size.to_string()])
            .args(["--frequency", &run.frequency.to_string()])
            .args(["--drain-timeout", &run.drain_timeout.to_string()])
            .args(["--log-level", &run.log_level, "--reuse-port"])
            .args(["--graphite-prefix", &run.graphite_prefix])
            .args(
                run.graphite
                    .iter()
                    .flat_map(|address| ["--graphite", address.as_str()]),
            )
            .spawn();
        match spawned {
            Ok(child) => children.push(child),
            Err(error) => {
                eprintln!("error: cannot start an instance: {error}");
                signal_all(&children, libc::SIGTERM);
                return ExitCode::from(EXIT_FAILED);
            }
        }
    }
    let pids: Vec<String> = children
        .iter()
        .map(|child| child.id().to_string())
        .collect();
    tracing::info!(instances = children.len(), pids = %pids.join(","), "instances started");
    if let Some(path) = &options.pid
        && let Err(error) = std::fs::write(path, pids.join("\n") + "\n")
    {
        tracing::error!(%error, file = %path.display(), "cannot write pid file");
    }
    forward_stop_signals(&children);
    let mut failed = false;
    for child in &mut children {
        failed |= !child.wait().map(|status| status.success()).unwrap_or(false);
    }
    remove_pid_file(options.pid.as_deref());
    if failed {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}

fn signal_all(children: &[std::process::Child], signal: libc::c_int) {
    for child in children {
        // SAFETY: kill(2) with a pid of a child we spawned and have not reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    }
}

/// A thread that waits for SIGINT or SIGTERM and sends it on to the instances.
fn forward_stop_signals(children: &[std::process::Child]) {
    let pids: Vec<libc::pid_t> = children
        .iter()
        .map(|child| child.id() as libc::pid_t)
        .collect();
    // SAFETY: building a signal set and blocking it in this thread (inherited
    // by the thread spawned below) so sigwait can receive it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    std::thread::spawn(move || {
        loop {
            let mut signal: libc::c_int = 0;
            // SAFETY: `set` is a valid signal set blocked in this thread.
            if unsafe { libc::sigwait(&set, &mut signal) } != 0 {
                return;
            }
            for pid in &pids {
                // SAFETY: kill(2) on our instances' pids.
                unsafe { libc::kill(*pid, signal) };
            }
        }
    });
}

fn remove_pid_file(path: Option<&Path>) {
    if let Some(path) = path {
        let _ = std::fs::remove_file(path);
    }
}
