//! Medians of the repetitions, printed as a table and saved as JSON.

use crate::latency::Latency;
use crate::throughput::Figures;

#[derive(Debug, serde::Serialize)]
pub struct Summary {
    pub lines: usize,
    pub machine: String,
    pub unix_time: u64,
    /// Medians per configuration, in the order they ran.
    pub throughput: Vec<Median>,
    /// Medians of the repetitions per configuration and rate.
    pub latency: Vec<Latency>,
    /// Every latency run.
    pub latency_runs: Vec<Latency>,
    pub peak_rss_mib_with_backends_down: f64,
    /// Every run, for comparison with later results.
    pub runs: Vec<Figures>,
    /// Reload latency beside restarts, when measured.
    pub reload: Option<crate::reload::ReloadFigures>,
}

#[derive(Debug, serde::Serialize)]
pub struct Median {
    pub name: String,
    pub failed_runs: usize,
    pub lines_per_second: f64,
    pub megabytes_per_second: f64,
    pub wall_seconds: f64,
    pub cpu_seconds: f64,
    pub peak_rss_mib: f64,
    /// Lines per second relative to the 128 KiB socat hop of the same invocation.
    pub ratio_to_socat_128k: f64,
}

/// The middle value; with an even count, the mean of the two middle ones.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let half = values.len() / 2;
    match values.len() {
        0 => 0.0,
        count if count % 2 == 1 => values[half],
        _ => (values[half - 1] + values[half]) / 2.0,
    }
}

/// Per configuration and rate, in the order they ran, the median of each
/// figure over the repetitions.
fn latency_medians(runs: &[Latency]) -> Vec<Latency> {
    let mut medians: Vec<Latency> = Vec::new();
    for run in runs {
        if medians
            .iter()
            .any(|m| m.name == run.name && m.rate_per_second == run.rate_per_second)
        {
            continue;
        }
        let same: Vec<&Latency> = runs
            .iter()
            .filter(|other| other.name == run.name && other.rate_per_second == run.rate_per_second)
            .collect();
        let of = |field: fn(&Latency) -> f64| median(same.iter().map(|run| field(run)).collect());
        medians.push(Latency {
            p50_microseconds: of(|run| run.p50_microseconds),
            p99_microseconds: of(|run| run.p99_microseconds),
            max_microseconds: of(|run| run.max_microseconds),
            ..run.clone()
        });
    }
    medians
}

impl Summary {
    pub fn new(lines: usize, runs: &[Figures], latency: Vec<Latency>, pushed_back: f64) -> Summary {
        let mut names: Vec<&str> = Vec::new();
        for run in runs {
            if !names.contains(&run.name.as_str()) {
                names.push(&run.name);
            }
        }
        let of = |name: &str, field: fn(&Figures) -> f64| {
            median(
                runs.iter()
                    .filter(|run| run.name == name && run.ok)
                    .map(field)
                    .collect(),
            )
        };
        let baseline = of(crate::BASELINE, |run| run.lines_per_second).max(1.0);
        let throughput = names
            .iter()
            .map(|name| Median {
                name: name.to_string(),
                failed_runs: runs
                    .iter()
                    .filter(|run| run.name == *name && !run.ok)
                    .count(),
                lines_per_second: of(name, |run| run.lines_per_second),
                megabytes_per_second: of(name, |run| run.megabytes_per_second),
                wall_seconds: of(name, |run| run.wall_seconds),
                cpu_seconds: of(name, |run| run.cpu_seconds),
                peak_rss_mib: of(name, |run| run.peak_rss_mib),
                ratio_to_socat_128k: of(name, |run| run.lines_per_second) / baseline,
            })
            .collect();
        Summary {
            lines,
            machine: format!(
                "{} cores",
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(0)
            ),
            unix_time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            throughput,
            latency: latency_medians(&latency),
            latency_runs: latency,
            peak_rss_mib_with_backends_down: pushed_back,
            runs: runs.to_vec(),
            reload: None,
        }
    }
}

pub fn print(summary: &Summary) {
    println!(
        "\n{} lines of 100 bytes, {}; medians of the repetitions\n",
        summary.lines, summary.machine
    );
    if !summary.throughput.is_empty() {
        println!(
            "| configuration | lines/s | MB/s | wall s | CPU s | peak RSS MiB | vs socat 128K | failed |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    }
    for row in &summary.throughput {
        println!(
            "| {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.1} | {:.2} | {} |",
            row.name,
            row.lines_per_second,
            row.megabytes_per_second,
            row.wall_seconds,
            row.cpu_seconds,
            row.peak_rss_mib,
            row.ratio_to_socat_128k,
            row.failed_runs
        );
    }
    if !summary.latency.is_empty() {
        println!("\n| latency | rate/s | events | p50 µs | p99 µs | max µs |");
        println!("|---|---:|---:|---:|---:|---:|");
        for row in &summary.latency {
            println!(
                "| {} | {} | {} | {:.0} | {:.0} | {:.0} |",
                row.name,
                row.rate_per_second,
                row.events,
                row.p50_microseconds,
                row.p99_microseconds,
                row.max_microseconds
            );
        }
    }
    if summary.peak_rss_mib_with_backends_down > 0.0 {
        println!(
            "\npeak RSS of scenario II with both backends down, input pushed back: {:.1} MiB",
            summary.peak_rss_mib_with_backends_down
        );
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_takes_the_middle_or_the_mean_of_the_two_middle_values() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0]), 2.5);
        assert_eq!(median(Vec::new()), 0.0);
    }
}
