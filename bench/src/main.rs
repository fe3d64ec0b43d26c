//! wishbone-bench: throughput, latency and memory of wishbone, measured
//! against a socat hop on the same data in the same invocation.
//!
//!   cargo run --release -p wishbone-bench -- [--lines N] [--reps N] [--skip-latency]
//!
//! Runs alternate (each repetition runs every configuration once) so that a
//! noisy moment of the machine does not favour one of them; each figure is
//! the median of the repetitions. A run whose receivers did not get exactly
//! the lines sent is reported as failed, not as a speed.

mod data;
mod latency;
mod process;
mod proxy;
mod receiver;
mod report;
mod scenarios;
mod throughput;

use std::path::{Path, PathBuf};
use std::time::Duration;

use data::Fingerprint;
use proxy::Proxy;

struct Options {
    lines: usize,
    reps: usize,
    latency: bool,
    data: PathBuf,
    wishbone: PathBuf,
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
        data: target.join("bench-lines.txt"),
        wishbone: target.join("wishbone"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--lines" => options.lines = args.next().unwrap_or_default().parse()?,
            "--reps" => options.reps = args.next().unwrap_or_default().parse::<usize>()?.max(1),
            "--skip-latency" => options.latency = false,
            "--wishbone" => options.wishbone = args.next().unwrap_or_default().into(),
            other => anyhow::bail!("unknown argument {other}; see the top of bench/src/main.rs"),
        }
    }
    anyhow::ensure!(
        options.wishbone.exists(),
        "{} is missing: cargo build --release -p wishbone",
        options.wishbone.display()
    );
    Ok(options)
}

fn main() -> anyhow::Result<()> {
    let options = options()?;
    let scratch = std::env::temp_dir().join(format!("wishbone-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    eprintln!(
        "generating {} lines of {} bytes",
        options.lines,
        data::LINE_LENGTH
    );
    data::generate(&options.data, options.lines)?;
    let expected = Fingerprint::of_file(&options.data)?;
    let wishbone = options.wishbone.as_path();
    let mut runs: Vec<throughput::Figures> = Vec::new();
    for rep in 0..options.reps {
        eprintln!("repetition {} of {}", rep + 1, options.reps);
        let data = options.data.as_path();
        let wishbone_on = |bootstrap: String| Proxy::wishbone(wishbone, &scratch, &bootstrap, &[]);
        runs.push(throughput::run(
            "socat hop, 8 KiB blocks",
            1,
            data,
            expected,
            |ports| Proxy::socat(8192, ports[0]),
        )?);
        runs.push(throughput::run(
            "socat hop, 128 KiB blocks",
            1,
            data,
            expected,
            |ports| Proxy::socat(131072, ports[0]),
        )?);
        runs.push(throughput::run(
            "wishbone scenario I",
            1,
            data,
            expected,
            |ports| wishbone_on(scenarios::proxy(ports[0])),
        )?);
        runs.push(throughput::run(
            "wishbone scenario II",
            2,
            data,
            expected,
            |ports| wishbone_on(scenarios::round_robin(ports, false)),
        )?);
        runs.push(throughput::run(
            "wishbone scenario II, 3 backends",
            3,
            data,
            expected,
            |ports| wishbone_on(scenarios::round_robin(ports, false)),
        )?);
        runs.push(throughput::run(
            "wishbone scenario II, metrics to absent carbon",
            2,
            data,
            expected,
            |ports| wishbone_on(scenarios::round_robin(ports, true)),
        )?);
    }
    let mut latencies = Vec::new();
    if options.latency {
        for rate in [1_000, 100_000] {
            eprintln!("latency at {rate} events/s");
            latencies.push(latency::measure(
                "socat hop, 8 KiB blocks",
                rate,
                3,
                |port| Proxy::socat(8192, port),
            )?);
            latencies.push(latency::measure("wishbone scenario I", rate, 3, |port| {
                Proxy::wishbone(wishbone, &scratch, &scenarios::proxy(port), &[])
            })?);
        }
    }
    eprintln!("memory with every backend down");
    let pushed_back = memory_with_backends_down(wishbone, &scratch, &options.data)?;
    let summary = report::Summary::new(options.lines, &runs, latencies, pushed_back);
    report::print(&summary);
    let json = serde_json::to_string_pretty(&summary)?;
    let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    std::fs::create_dir_all(&results)?;
    std::fs::write(results.join("latest.json"), &json)?;
    eprintln!("saved {}", results.join("latest.json").display());
    let _ = std::fs::remove_dir_all(&scratch);
    anyhow::ensure!(
        runs.iter().all(|run| run.ok),
        "some runs did not deliver exactly the lines sent"
    );
    Ok(())
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
