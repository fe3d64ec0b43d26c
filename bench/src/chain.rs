//! An in-process chain of CPU-bound modules, with no network in it:
//! `generator → decode syslog → jq program → filter → null`, the program
//! and the condition both of shapes jaq runs (not the quick paths), at
//! `--threads 1` and at `--threads 2` (`--chain-events N`, 0 skips it).
//!
//! Each run ends by itself: the generator stops after N events and the
//! pipeline drains. The figure is N over the wall time from start to exit,
//! median of the repetitions; a run whose null output did not take every
//! event is an error.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// An RFC 5424 line whose text is logfmt, of about 100 bytes.
const PAYLOAD: &str =
    "<134>1 2026-12-07T10:00:00Z web-3 shop 4711 - - user=u42 status=200 path=/o/17 took=12";

/// Renames and adds fields with string interpolation: a program jaq runs.
const PROGRAM: &str = r#".summary = "\(.appname)@\(.hostname): \(.message | length)" | .pid = .procid | del(.procid)"#;

/// A regular expression on the text: a condition jaq runs.
const CONDITION: &str = r#".message | test("status=2[0-9][0-9]")"#;

fn bootstrap(events: u64) -> String {
    format!(
        "modules:\n  \
         generator: {{module: wishbone.input.generator, arguments: {{payload: '{PAYLOAD}', interval: 0, count: {events}}}}}\n  \
         decode: {{module: wishbone.process.decode, arguments: {{format: syslog}}}}\n  \
         reshape: {{module: wishbone.process.jq, arguments: {{program: '{PROGRAM}'}}}}\n  \
         keep: {{module: wishbone.flow.filter, arguments: {{condition: '{CONDITION}'}}}}\n  \
         sink: {{module: wishbone.output.null}}\n\
         routingtable:\n  \
         - generator.outbox -> decode.inbox\n  \
         - decode.outbox -> reshape.inbox\n  \
         - reshape.outbox -> keep.inbox\n  \
         - keep.outbox -> sink.inbox\n"
    )
}

/// Runs the chain once on `threads` threads; events a second.
fn once(wishbone: &Path, config: &Path, threads: usize, events: u64) -> anyhow::Result<f64> {
    let began = Instant::now();
    let output = Command::new(wishbone)
        .args(["debug", "--config"])
        .arg(config)
        .args(["--threads", &threads.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()?;
    let seconds = began.elapsed().as_secs_f64();
    let log = String::from_utf8_lossy(&output.stderr);
    let taken = log
        .lines()
        .filter(|line| line.contains("queue totals") && line.contains("queue=sink.inbox"))
        .find_map(|line| {
            line.split_whitespace()
                .find_map(|field| field.strip_prefix("out_total="))
                .and_then(|value| value.parse::<u64>().ok())
        });
    anyhow::ensure!(
        output.status.success() && taken == Some(events),
        "the chain at --threads {threads} ended with {:?}, its sink took {taken:?} of {events}",
        output.status
    );
    Ok(events as f64 / seconds)
}

/// The chain at one and at two threads, `reps` times each, alternating;
/// prints the medians and their ratio.
pub fn run(wishbone: &Path, scratch: &Path, events: u64, reps: usize) -> anyhow::Result<()> {
    let config = scratch.join("chain.yaml");
    std::fs::write(&config, bootstrap(events))?;
    let (mut one, mut two) = (Vec::new(), Vec::new());
    for rep in 0..reps {
        for threads in if rep % 2 == 0 { [1, 2] } else { [2, 1] } {
            let rate = once(wishbone, &config, threads, events)?;
            eprintln!("chain, --threads {threads}: {:.0} events/s", rate);
            match threads {
                1 => one.push(rate),
                _ => two.push(rate),
            }
        }
    }
    let (one, two) = (median(&mut one), median(&mut two));
    println!(
        "chain of {events} events (generator → decode syslog → jq → filter → null), median of {reps}: \
         --threads 1 {:.0} events/s, --threads 2 {:.0} events/s, ratio {:.2}",
        one,
        two,
        two / one
    );
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
