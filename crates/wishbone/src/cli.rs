//! The command line, with help that teaches.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Event pipeline servers built from small modules wired by a bootstrap file.
///
/// A bootstrap file names modules (a TCP input, a round robin, TCP outputs,
/// ...) and a routing table connecting their queues:
///
///   modules:
///     input:  {module: wishbone.input.tcp,  arguments: {port: 10000}}
///     output: {module: wishbone.output.tcp, arguments: {port: 20000}}
///   routingtable:
///     - input.outbox -> output.inbox
///
/// Try `wishbone check --config FILE`, then `wishbone debug --config FILE`.
/// `wishbone list` shows every module kind, `wishbone show --docs KIND` one.
#[derive(Debug, Parser)]
#[command(name = "wishbone", version, verbatim_doc_comment)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a server in the foreground with human-readable logs; Ctrl+C stops it.
    ///
    /// A stop closes the inputs, lets every queue drain into its outputs and
    /// exits 0; a second Ctrl+C aborts the drain.
    Debug(RunOptions),
    /// Run a server as a service: plain logs, a pid file, several instances.
    Start(StartOptions),
    /// Stop the server(s) whose pids are in a pid file, and remove the file.
    Stop(StopOptions),
    /// List every module kind this binary has.
    List,
    /// Show a module kind's documentation: queues, arguments, an example.
    Show(ShowOptions),
    /// Validate a bootstrap file and report every problem in it; exit 2 if any.
    Check(CheckOptions),
}

#[derive(Debug, Args, Clone)]
pub struct RunOptions {
    /// The bootstrap file: modules and routing table.
    #[arg(long, short, value_name = "FILE")]
    pub config: PathBuf,
    /// Capacity of every queue, in events. A full queue makes its producer wait.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub queue_size: u32,
    /// Seconds between metrics reports.
    #[arg(long, default_value_t = 1.0)]
    pub frequency: f64,
    /// Seconds a stop waits for queues to drain before aborting.
    #[arg(long, default_value_t = 30.0)]
    pub drain_timeout: f64,
    /// Also send every metric straight to carbon's plaintext port, HOST:PORT,
    /// with no route in the bootstrap (the `metrics:` section routes them instead).
    #[arg(long, value_name = "HOST:PORT")]
    pub graphite: Option<String>,
    /// First segment of metric paths sent with --graphite; the host name follows.
    #[arg(long, default_value = "wishbone")]
    pub graphite_prefix: String,
    /// Log filter: error, warn, info, debug, trace (or a RUST_LOG-style filter).
    #[arg(long, default_value = "info")]
    pub log_level: String,
    /// Set by `start --instances` on the instances it runs: share input ports.
    #[arg(long, hide = true)]
    pub reuse_port: bool,
}

#[derive(Debug, Args)]
pub struct StartOptions {
    #[command(flatten)]
    pub run: RunOptions,
    /// Write the pid of every instance to this file (`wishbone stop --pid FILE`).
    #[arg(long, value_name = "FILE")]
    pub pid: Option<PathBuf>,
    /// Run this many instances sharing the input ports (SO_REUSEPORT).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub instances: u16,
}

#[derive(Debug, Args)]
pub struct StopOptions {
    /// The pid file `wishbone start --pid FILE` wrote.
    #[arg(long, value_name = "FILE")]
    pub pid: PathBuf,
    /// Seconds to wait for the servers to drain and exit.
    #[arg(long, default_value_t = 60.0)]
    pub timeout: f64,
}

#[derive(Debug, Args)]
pub struct ShowOptions {
    /// The module kind to document, e.g. wishbone.output.tcp.
    #[arg(long, value_name = "KIND")]
    pub docs: String,
}

#[derive(Debug, Args)]
pub struct CheckOptions {
    /// The bootstrap file to validate.
    #[arg(long, short, value_name = "FILE")]
    pub config: PathBuf,
}
