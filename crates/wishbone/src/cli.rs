//! The command line, with help that teaches.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::logging::Format;

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
#[command(name = "wishbone", version, verbatim_doc_comment, after_help = EXIT_STATUSES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What `--help` says of exit statuses and signals (docs/operations.md has more).
const EXIT_STATUSES: &str = "\
Exit statuses:
  0  done: a server stopped after draining, a valid file, a stop that stopped all
  1  runtime failure: a port in use, a drain aborted with events left, a module
     failed, instances that kept dying, a stale pid file
  2  usage or configuration error: a bad option, an invalid bootstrap file

Signals: SIGINT and SIGTERM stop a server the graceful way (inputs close,
queues drain, exit 0); a second one aborts the drain (exit 1). SIGHUP reloads
the bootstrap file (`wishbone reload --pid FILE` sends it): unchanged modules
run on, the rest are replaced, started or stopped; a file with a problem is
refused and nothing changes.
Logs go to standard error; standard output carries only events
(wishbone.output.stdout) and command results.";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a server in the foreground with human-readable logs; Ctrl+C stops it.
    ///
    /// A stop closes the inputs, lets every queue drain into its outputs and
    /// exits 0; a second Ctrl+C aborts the drain.
    Debug(RunOptions),
    /// Run a server as a service: plain logs, a pid file, several instances.
    Start(StartOptions),
    /// Stop the server whose pids are in a pid file (SIGTERM), wait, remove the file.
    ///
    /// Only processes that are a `wishbone start` of this program, started
    /// before the file was written, are signalled: a stale file (after a
    /// crash or a reboot) never makes it signal an unrelated process.
    Stop(StopOptions),
    /// Reload the servers of a pid file (SIGHUP): each reads its bootstrap file again.
    ///
    /// Modules whose kind, arguments and routes did not change keep running
    /// with their connections and queues; changed ones are replaced, removed
    /// ones drain and stop, new ones start. A file with any problem is
    /// refused whole, with every problem logged, and nothing changes.
    Reload(ReloadOptions),
    /// List every module kind this binary has.
    List,
    /// Show a module kind's documentation: queues, arguments, an example.
    Show(ShowOptions),
    /// Validate a bootstrap file and report every problem in it; exit 2 if any.
    Check(CheckOptions),
    /// Print the events passing on queues of a running server, as they pass.
    ///
    /// One queue: each event as it is, one a line. Several: each line
    /// starts with `module.queue: `. Tapping never slows the server: a tap
    /// that reads slower than the queue loses events, and says how many at
    /// the end. Ctrl+C ends it (exit 0).
    Tap(TapOptions),
    /// Run test cases against a bootstrap's processing and flow modules.
    ///
    /// Each case puts events on a queue of a processing or flow module and
    /// says what queues must carry: exactly these events, a count, or a
    /// jq condition every event holds. Inputs and outputs are not started.
    /// Exit 0 when every case passes, 1 with the differences when one
    /// fails, 2 for a file that cannot be used.
    Test(TestOptions),
}

#[derive(Debug, Args)]
pub struct TestOptions {
    /// The bootstrap file whose modules are tested.
    #[arg(long, short, value_name = "FILE")]
    pub config: PathBuf,
    /// The cases (docs/testing.md shows the shape).
    #[arg(long, value_name = "FILE")]
    pub tests: PathBuf,
}

#[derive(Debug, Args)]
pub struct TapOptions {
    /// The server's operator listener: its `--admin` address.
    #[arg(long, visible_alias = "graph", value_name = "IP:PORT", default_value = "127.0.0.1:8088", value_parser = graph_address)]
    pub admin: SocketAddr,
    /// The queues to watch, MODULE.QUEUE (`input.outbox`).
    #[arg(required = true, value_name = "MODULE.QUEUE")]
    pub queues: Vec<String>,
    /// Stop after this many events.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Take each event with this probability, above 0 and up to 1.
    #[arg(long, default_value_t = 1.0)]
    pub sample: f64,
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
    /// Send every metric to carbon's plaintext port, HOST:PORT: adds the
    /// route a `metrics:` section writes (modules `wishbone_metrics` and
    /// `wishbone_carbon`); reports carbon cannot take are dropped and counted.
    #[arg(long, value_name = "HOST:PORT", value_parser = host_and_port)]
    pub graphite: Option<String>,
    /// First segment of metric paths sent with --graphite; the host name follows.
    #[arg(long, default_value = "wishbone")]
    pub graphite_prefix: String,
    /// Serve the operator listener at IP:PORT (127.0.0.1:8088 when no
    /// address is given): a live page of the running pipeline (modules,
    /// routes, queue sizes and rates, output counters; `/api/pipeline` as
    /// JSON), `/health`, `/ready`, and taps (`wishbone tap`). `--graph` is
    /// another name for it.
    #[arg(long = "admin", visible_alias = "graph", value_name = "IP:PORT", num_args = 0..=1, default_missing_value = "127.0.0.1:8088", value_parser = graph_address)]
    pub graph: Option<SocketAddr>,
    /// Log filter: error, warn, info, debug, trace (or a RUST_LOG-style filter).
    #[arg(long, default_value = "info")]
    pub log_level: String,
    /// Threads that run the modules, each module on one of them in turn
    /// (default: the number of cores). 1 runs every module on the thread
    /// that also answers signals.
    #[arg(long, env = "WISHBONE_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
}

#[derive(Debug, Args)]
pub struct StartOptions {
    #[command(flatten)]
    pub run: RunOptions,
    /// Write the pid of every instance to this file (`wishbone stop --pid FILE`).
    #[arg(long, value_name = "FILE")]
    pub pid: Option<PathBuf>,
    /// Run this many instances sharing the input ports: a launcher binds
    /// them once, starts the instances, and replaces one that dies.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub instances: u16,
    /// How log lines are written: text, or one JSON object a line.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: Format,
}

/// `HOST:PORT` (`[::1]:2003` for an IPv6 address) with a port from 1 to
/// 65535; the host is resolved when connecting, not here.
fn host_and_port(text: &str) -> Result<String, String> {
    let malformed = || format!("`{text}` is not HOST:PORT (such as 127.0.0.1:2003)");
    let (host, port) = split_host_and_port(text).ok_or_else(malformed)?;
    let host_ok = !host.is_empty()
        && (host.parse::<std::net::IpAddr>().is_ok()
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
    match port > 0 && host_ok {
        true => Ok(text.to_string()),
        false => Err(malformed()),
    }
}

/// `HOST:PORT` as the host (an IPv6 address without its brackets) and
/// the port, if it has that shape.
pub(crate) fn split_host_and_port(text: &str) -> Option<(&str, u16)> {
    let (host, port) = text.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(host);
    Some((host, port.parse().ok()?))
}

/// `IP:PORT` to serve the graph page on; a host name would have to be
/// resolved to one address, and the page should bind exactly what was given.
fn graph_address(text: &str) -> Result<SocketAddr, String> {
    text.parse()
        .map_err(|_| format!("`{text}` is not IP:PORT (such as 127.0.0.1:8088 or [::1]:8088)"))
}

#[cfg(test)]
mod tests {
    use super::{graph_address, host_and_port};

    #[test]
    fn graph_alone_is_the_originals_port_on_loopback() {
        use clap::Parser;
        let graph = |args: &[&str]| {
            let cli = super::Cli::try_parse_from(
                ["wishbone", "debug", "--config", "f.yaml"]
                    .iter()
                    .chain(args),
            )
            .unwrap();
            match cli.command {
                super::Command::Debug(options) => options.graph,
                _ => unreachable!(),
            }
        };
        assert_eq!(graph(&[]), None);
        assert_eq!(graph(&["--graph"]), Some("127.0.0.1:8088".parse().unwrap()));
        assert_eq!(
            graph(&["--graph", "0.0.0.0:9000"]),
            Some("0.0.0.0:9000".parse().unwrap())
        );
    }

    #[test]
    fn graph_addresses_are_an_ip_and_a_port() {
        assert_eq!(graph_address("127.0.0.1:0").unwrap().port(), 0);
        assert!(graph_address("[::1]:8088").is_ok());
        for bad in ["localhost:8088", "8088", "127.0.0.1", "127.0.0.1:99999", ""] {
            assert!(graph_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn graphite_addresses_are_host_and_port() {
        for good in [
            "127.0.0.1:2003",
            "carbon.example.org:2013",
            "[::1]:2003",
            "localhost:1",
        ] {
            assert_eq!(host_and_port(good).as_deref(), Ok(good));
        }
        for bad in [
            "notahostport",
            "carbon:",
            ":2003",
            "carbon:0",
            "carbon:70000",
            "a b:2003",
        ] {
            assert!(host_and_port(bad).is_err(), "{bad}");
        }
    }
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
pub struct ReloadOptions {
    /// The pid file `wishbone start --pid FILE` wrote.
    #[arg(long, value_name = "FILE")]
    pub pid: PathBuf,
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
