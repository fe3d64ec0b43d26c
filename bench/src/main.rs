//! wishbone-bench: throughput, latency and memory of wishbone, measured
//! against a socat hop on the same data in the same invocation.
//!
//!   cargo run --release -p wishbone-bench -- [--lines N] [--reps N] [--skip-latency]
//!       [--only TEXT] [--leave-out TEXT]... [--skip-throughput] [--wishbone PATH] [--buffered-lines N]
//!       [--disk-read-count N] [--relp-lines N] [--nats-messages N] [--json-lines N]
//!       [--reloads N] [--central-messages N] [--central-rate N] [--against PATH]
//!       [--chain-events N]
//!
//! `--buffered-lines` (3,000,000; 0 skips them) is the data of the
//! configurations with a write-ahead buffer: the seed's round-robin demo,
//! and every event through a disk (the wal with `path`, whose `read_count`
//! is `--disk-read-count`, 10,000; rsyslog's disk queues). `--relp-lines`
//! (300,000; 0 skips them) go through a RELP hop: wishbone's RELP output
//! to its RELP input, and rsyslog's omrelp to its imrelp. `--nats-messages`
//! (200,000; 0 skips them) are published to, and consumed from, a
//! one-node nats-server by wishbone and by a plain `async-nats` client
//! (`--only nats` runs just these). `--json-lines` (1,000,000; 0 skips
//! them) go through a filter on a JSON field (wishbone, rsyslog with
//! mmjsonparse, and jq reading the file), and as many RFC 5424 lines
//! through wishbone's syslog decoding (`--only filter`, `--only decode`);
//! a jq program reshapes the JSON lines (wishbone, `jq -c`), and as many
//! RFC 5424 lines with logfmt text are parsed by wishbone, rsyslog and
//! syslog-ng (`--only reshape`, `--only parse`; `reshaping.rs`).
//! The JSON lines are also inserted into ClickHouse by wishbone's HTTP
//! output and by curl (`--only http`). The data file (1 GB at 10,000,000
//! lines) is also read from disk by
//! wishbone's file input, `socat` and rsyslog's imfile (`--only "file,"`).
//!
//! `--chain-events N` (0: skipped) runs an in-process chain of CPU-bound
//! modules at `--threads 1` and `--threads 2` (`chain.rs`).
//!
//! `--reloads` (20; 0 skips them) times a reload of a scenario III file
//! whose input is unchanged (SIGHUP to the `reloaded` line) beside five
//! restarts with the same change (`--only reload`).
//!
//! `--central-messages` (0: skipped) runs the central log server beside
//! rsyslog and syslog-ng (`central.rs`), UDP offered at `--central-rate`
//! (100,000 a second; 0 runs TCP only); `--only central` runs nothing else.
//!
//! `--only` runs just the configurations whose names hold TEXT (and the
//! 128 KiB socat hop, the baseline), without latency and memory, for
//! profiling them (`--only "tcp outputs"` runs the wal's and no wal's).
//! `--leave-out` (as often as wanted) skips the configurations whose names
//! hold TEXT: to run an older build, which lacks some modules, beside this
//! one (`--leave-out "file,"`).
//!
//! `--against PATH` (another wishbone binary, such as the build before a
//! change) runs every wishbone configuration left in with that binary too,
//! in each repetition, named with ` [against]`: the two builds alternate
//! which goes first, and share the socat baseline of the same run, so
//! "no path slower" is read from one run rather than from two.
//!
//! Runs alternate (each repetition runs every configuration once) so that a
//! noisy moment of the machine does not favour one of them; each figure is
//! the median of the repetitions. A run whose receivers did not get exactly
//! the lines sent is reported as failed, not as a speed.

mod central;
mod chain;
mod data;
mod files;
mod http;
mod latency;
mod nats;
mod process;
mod proxy;
mod receiver;
mod reload;
mod repetition;
mod report;
mod reshaping;
mod routing;
mod scenarios;
mod scraper;
mod throughput;

use std::path::{Path, PathBuf};
use std::time::Duration;

use data::Fingerprint;
use proxy::Proxy;

/// The configuration every ratio is taken against.
const BASELINE: &str = "socat hop, 128 KiB blocks";

/// One NATS measurement.
type NatsRun<'a> = &'a dyn Fn() -> anyhow::Result<throughput::Figures>;

struct Options {
    lines: usize,
    reps: usize,
    latency: bool,
    throughput: bool,
    only: Option<String>,
    /// Configurations whose names hold one of these are not run.
    leave_out: Vec<String>,
    data: PathBuf,
    /// Lines for the configurations with a write-ahead buffer; 0 skips them.
    buffered_lines: usize,
    buffered_data: PathBuf,
    /// `read_count` of the wal on disk.
    disk_read_count: usize,
    /// Messages for the NATS runs; 0 skips them.
    nats_messages: usize,
    /// Reloads measured; 0 skips them.
    reloads: usize,
    /// Messages of the central-server runs (0 skips them).
    central_messages: usize,
    /// The offered UDP rate of the central-server runs, a second.
    central_rate: u64,
    /// Events of the in-process chain (`chain.rs`); 0 skips it.
    chain_events: u64,
    nats_data: PathBuf,
    /// Lines for the RELP hops; 0 skips them.
    relp_lines: usize,
    relp_data: PathBuf,
    /// JSON and syslog lines for the routing runs; 0 skips them.
    json_lines: usize,
    json_data: PathBuf,
    syslog_data: PathBuf,
    logfmt_data: PathBuf,
    wishbone: PathBuf,
    /// Another build, run beside `wishbone` in every repetition.
    against: Option<PathBuf>,
}

impl Options {
    /// Whether configuration `name` is left out: `--only`'s text is not in
    /// the name, or a `--leave-out` text is.
    fn leaves_out(&self, name: &str) -> bool {
        self.only
            .as_deref()
            .is_some_and(|only| !name.contains(only))
            || self
                .leave_out
                .iter()
                .any(|text| name.contains(text.as_str()))
    }
}

fn options() -> anyhow::Result<Options> {
    let target = std::env::current_exe()?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut options = Options {
        lines: 10_000_000,
        reps: 3,
        latency: true,
        throughput: true,
        only: None,
        leave_out: Vec::new(),
        data: target.join("bench-lines.txt"),
        buffered_lines: 3_000_000,
        buffered_data: target.join("bench-buffered-lines.txt"),
        disk_read_count: 10_000,
        relp_lines: 300_000,
        nats_messages: 200_000,
        reloads: 20,
        central_messages: 0,
        central_rate: 100_000,
        chain_events: 0,
        nats_data: target.join("bench-nats-lines.txt"),
        relp_data: target.join("bench-relp-lines.txt"),
        json_lines: 1_000_000,
        json_data: target.join("bench-json-lines.txt"),
        syslog_data: target.join("bench-syslog-lines.txt"),
        logfmt_data: target.join("bench-logfmt-lines.txt"),
        wishbone: target.join("wishbone"),
        against: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--lines" => options.lines = args.next().unwrap_or_default().parse()?,
            "--reps" => options.reps = args.next().unwrap_or_default().parse::<usize>()?.max(1),
            "--buffered-lines" => {
                options.buffered_lines = args.next().unwrap_or_default().parse()?
            }
            "--relp-lines" => options.relp_lines = args.next().unwrap_or_default().parse()?,
            "--json-lines" => options.json_lines = args.next().unwrap_or_default().parse()?,
            "--nats-messages" => options.nats_messages = args.next().unwrap_or_default().parse()?,
            "--reloads" => options.reloads = args.next().unwrap_or_default().parse()?,
            "--central-messages" => {
                options.central_messages = args.next().unwrap_or_default().parse()?
            }
            "--central-rate" => options.central_rate = args.next().unwrap_or_default().parse()?,
            "--chain-events" => options.chain_events = args.next().unwrap_or_default().parse()?,
            "--disk-read-count" => {
                options.disk_read_count = args.next().unwrap_or_default().parse()?
            }
            "--skip-latency" => options.latency = false,
            "--skip-throughput" => options.throughput = false,
            "--only" => options.only = args.next(),
            "--leave-out" => options.leave_out.extend(args.next()),
            "--wishbone" => options.wishbone = args.next().unwrap_or_default().into(),
            "--against" => options.against = args.next().map(PathBuf::from),
            other => anyhow::bail!("unknown argument {other}; see the top of bench/src/main.rs"),
        }
    }
    if options.wishbone == target.join("wishbone") {
        build_wishbone();
    }
    anyhow::ensure!(
        options.wishbone.exists(),
        "{} is missing: cargo build --release -p wishbone",
        options.wishbone.display()
    );
    Ok(options)
}

/// Under `cargo run --release -p wishbone-bench`, builds the wishbone binary
/// beside this one first, so one command measures the current source.
fn build_wishbone() {
    let Some(cargo) = std::env::var_os("CARGO") else {
        return;
    };
    if !cfg!(debug_assertions) {
        let status = std::process::Command::new(cargo)
            .args(["build", "--release", "--quiet", "-p", "wishbone"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status();
        if !status.is_ok_and(|status| status.success()) {
            eprintln!("building wishbone failed; measuring the binary already built");
        }
    }
}

/// The bench's scratch directory, removed however the run ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn main() -> anyhow::Result<()> {
    let options = options()?;
    let scratch =
        Scratch(std::env::temp_dir().join(format!("wishbone-bench-{}", std::process::id())));
    std::fs::create_dir_all(&scratch.0)?;
    let scratch = scratch.0.as_path();
    eprintln!(
        "generating {} lines of {} bytes",
        options.lines,
        data::LINE_LENGTH
    );
    data::generate(&options.data, options.lines)?;
    let expected = Fingerprint::of_file(&options.data)?;
    data::generate(&options.buffered_data, options.buffered_lines)?;
    let buffered_expected = Fingerprint::of_file(&options.buffered_data)?;
    data::generate(&options.relp_data, options.relp_lines)?;
    data::generate(&options.nats_data, options.nats_messages)?;
    let relp_expected = Fingerprint::of_file(&options.relp_data)?;
    routing::generate_json(&options.json_data, options.json_lines)?;
    routing::generate_syslog(&options.syslog_data, options.json_lines)?;
    reshaping::generate_logfmt(&options.logfmt_data, options.json_lines)?;
    let routing_inputs = routing::Inputs {
        wishbone: options.wishbone.as_path(),
        scratch,
        json: &options.json_data,
        json_lines: options.json_lines as u64,
        errors: routing::errors_of(&options.json_data)?,
        syslog: &options.syslog_data,
        decoded: routing::decoded_of(&options.syslog_data)?,
        reshaped: reshaping::reshaped_of(&options.json_data)?,
        logfmt: &options.logfmt_data,
    };
    let wishbone = options.wishbone.as_path();
    if options.chain_events > 0 {
        chain::run(wishbone, scratch, options.chain_events, options.reps)?;
    }
    if options.central_messages > 0 {
        central::run(
            wishbone,
            scratch,
            options.central_messages,
            options.central_rate,
        )?;
    }
    let fingerprints = (expected, buffered_expected, relp_expected);
    let runs = repetitions(&options, scratch, fingerprints, &routing_inputs)?;
    let latencies = latencies(&options, wishbone, scratch)?;
    let pushed_back = if options.only.is_none() && options.throughput {
        eprintln!("memory with every backend down");
        memory_with_backends_down(wishbone, scratch, &options.data)?
    } else {
        0.0
    };
    let mut summary = report::Summary::new(options.lines, &runs, latencies, pushed_back);
    if options.reloads > 0 && !options.leaves_out("reload") {
        eprintln!("reload latency: {} reloads, 5 restarts", options.reloads);
        summary.reload = Some(reload::measure(wishbone, scratch, options.reloads, 5)?);
    }
    let isolated = if options.json_lines > 0 && !options.leaves_out(http::ISOLATING) {
        Some(http::isolation_times(wishbone, scratch)?)
    } else {
        None
    };
    print_summary(&summary, isolated.as_deref());
    let json = serde_json::to_string_pretty(&summary)?;
    let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    std::fs::create_dir_all(&results)?;
    std::fs::write(results.join("latest.json"), &json)?;
    eprintln!("saved {}", results.join("latest.json").display());
    anyhow::ensure!(
        runs.iter().all(|run| run.ok),
        "some runs did not deliver exactly the lines sent"
    );
    Ok(())
}

/// Every repetition of every configuration left in, with each build
/// (this one, and `--against`'s).
fn repetitions(
    options: &Options,
    scratch: &Path,
    (expected, buffered_expected, relp_expected): (Fingerprint, Fingerprint, Fingerprint),
    routing_inputs: &routing::Inputs<'_>,
) -> anyhow::Result<Vec<throughput::Figures>> {
    let mut runs: Vec<throughput::Figures> = Vec::new();
    let reps = if options.throughput { options.reps } else { 0 };
    for rep in 0..reps {
        eprintln!("repetition {} of {}", rep + 1, options.reps);
        for build in builds(options, rep) {
            let routing_inputs = routing::Inputs {
                wishbone: build,
                ..*routing_inputs
            };
            let repetition = repetition::Repetition {
                options,
                scratch,
                wishbone: build,
                expected,
                buffered_expected,
                relp_expected,
                routing_inputs: &routing_inputs,
            };
            let figures = repetition.run()?;
            if build == options.wishbone {
                runs.extend(figures);
            } else {
                runs.extend(figures.into_iter().filter_map(against));
            }
        }
    }
    Ok(runs)
}

/// The builds a repetition runs: this one, and `--against`'s, first in
/// every other repetition.
fn builds(options: &Options, rep: usize) -> Vec<&Path> {
    let this = options.wishbone.as_path();
    match options.against.as_deref() {
        Some(other) if rep % 2 == 1 => vec![other, this],
        Some(other) => vec![this, other],
        None => vec![this],
    }
}

/// A figure of the `--against` build: its wishbone configurations renamed,
/// the baseline kept as one more sample of it, the other peers dropped
/// (they ran with this build already).
fn against(mut figures: throughput::Figures) -> Option<throughput::Figures> {
    if figures.name == BASELINE {
        return Some(figures);
    }
    if !figures.name.contains("wishbone") {
        return None;
    }
    figures.name.push_str(" [against]");
    Some(figures)
}

/// The latency runs (socat and scenario I at 1,000 and 100,000 events a
/// second), when asked for and nothing is left out.
fn latencies(
    options: &Options,
    wishbone: &Path,
    scratch: &Path,
) -> anyhow::Result<Vec<latency::Latency>> {
    let mut latencies = Vec::new();
    if options.latency && options.only.is_none() {
        for rate in (0..options.reps).flat_map(|_| [1_000, 100_000]) {
            eprintln!("latency at {rate} events/s");
            latencies.push(latency::measure(
                "socat hop, 8 KiB blocks",
                rate,
                3,
                |port| Proxy::socat(8192, port),
            )?);
            latencies.push(latency::measure("wishbone scenario I", rate, 3, |port| {
                Proxy::wishbone(wishbone, scratch, &scenarios::proxy(port), &[])
            })?);
        }
    }
    Ok(latencies)
}

/// Prints the tables, the isolation times and the reload latency.
fn print_summary(summary: &report::Summary, isolated: Option<&[Duration]>) {
    report::print(summary);
    if let Some(times) = isolated {
        http::print_isolation(times);
    }
    if let Some(reload) = &summary.reload {
        println!(
            "\nreload of a scenario III file (input unchanged, one output replaced), SIGHUP to `reloaded`: median {:.1} ms, max {:.1} ms over {}; a restart with the same change (SIGTERM to listening again): median {:.1} ms over {}",
            reload.reload_median_ms,
            reload.reload_max_ms,
            reload.reloads,
            reload.restart_median_ms,
            reload.restarts
        );
    }
}

/// Peak memory of scenario II whose two backends are down, while a sender
/// pushes the data file and is held back.
fn memory_with_backends_down(wishbone: &Path, scratch: &Path, data: &Path) -> anyhow::Result<f64> {
    let ports = [proxy::free_port()?, proxy::free_port()?];
    let proxy = Proxy::wishbone(
        wishbone,
        scratch,
        &scenarios::round_robin(&ports, false),
        &[],
    )?;
    let port = proxy.input_port;
    let data = data.to_path_buf();
    std::thread::spawn(move || throughput::send_file(&data, port));
    std::thread::sleep(Duration::from_secs(3));
    let peak = process::peak_rss_mib(proxy.pid());
    proxy.kill();
    Ok(peak)
}

/// A CA and a certificate for localhost made with `openssl`, as the `tls`
/// arguments of the server side and of the client side.
fn tls_files(scratch: &Path) -> anyhow::Result<(String, String)> {
    let dir = scratch.join("tls");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )?;
    let run = |args: &[&str]| -> anyhow::Result<()> {
        let status = std::process::Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "openssl {args:?} failed");
        Ok(())
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=bench CA",
        ],
    ]
    .concat())?;
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    ]
    .concat())?;
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ])?;
    let path = |name: &str| dir.join(name).display().to_string();
    Ok((
        format!(
            "{{cert: \"{}\", key: \"{}\"}}",
            path("server.pem"),
            path("server.key")
        ),
        format!("{{ca: \"{}\"}}", path("ca.pem")),
    ))
}
