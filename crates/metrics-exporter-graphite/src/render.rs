//! Turning recorded values into Graphite plaintext lines.

use std::fmt::Write;

use metrics::Key;

/// How a metric's labels become part of its path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LabelStyle {
    /// Each label's value is appended as a segment, in the order given:
    /// `requests{route="/login"}` is `requests._login`.
    #[default]
    Segments,
    /// Each label is appended as `name_value`: `requests.route__login`.
    NamedSegments,
    /// Graphite 1.1 tags: `requests;route=/login`.
    Tags,
    /// Labels are left out.
    Ignore,
}

/// A histogram summary written as its own path segment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Summary {
    Count,
    Min,
    Max,
    Mean,
    /// A percentile in 0..=100, written `p50`, `p99`, `p99_9`.
    Percentile(f64),
}

/// Makes a value safe as one path segment: dots, spaces, slashes and
/// semicolons become `_`.
pub fn sanitize(segment: &str) -> String {
    segment
        .chars()
        .map(|c| {
            if matches!(c, '.' | '/' | ';' | '=') || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// The values of every metric at one moment. Histograms are drained when
/// the snapshot is taken, so each value is summarised once.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub counters: Vec<(Key, u64)>,
    pub gauges: Vec<(Key, f64)>,
    pub histograms: Vec<(Key, Vec<f64>)>,
    pub(crate) labels: LabelStyle,
    pub(crate) summaries: Vec<Summary>,
}

impl Snapshot {
    /// One line per value: `prefix.path value timestamp`. An empty prefix
    /// writes paths as they are.
    pub fn lines(&self, prefix: &str, timestamp: u64) -> Vec<String> {
        let mut lines = Vec::with_capacity(self.counters.len() + self.gauges.len());
        for (key, value) in &self.counters {
            lines.push(format!(
                "{} {value} {timestamp}",
                self.path(prefix, key, None)
            ));
        }
        for (key, value) in &self.gauges {
            lines.push(format!(
                "{} {} {timestamp}",
                self.path(prefix, key, None),
                number(*value)
            ));
        }
        for (key, values) in &self.histograms {
            if values.is_empty() {
                continue;
            }
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            for summary in &self.summaries {
                let (segment, value) = summarise(*summary, &sorted);
                lines.push(format!(
                    "{} {} {timestamp}",
                    self.path(prefix, key, Some(&segment)),
                    number(value)
                ));
            }
        }
        lines
    }

    fn path(&self, prefix: &str, key: &Key, suffix: Option<&str>) -> String {
        let mut path = String::new();
        if !prefix.is_empty() {
            path.push_str(prefix);
            path.push('.');
        }
        let name: Vec<String> = key.name().split('.').map(sanitize).collect();
        path.push_str(&name.join("."));
        let mut tags = String::new();
        for label in key.labels() {
            match self.labels {
                LabelStyle::Segments => write!(path, ".{}", sanitize(label.value())).unwrap_or(()),
                LabelStyle::NamedSegments => write!(
                    path,
                    ".{}_{}",
                    sanitize(label.key()),
                    sanitize(label.value())
                )
                .unwrap_or(()),
                LabelStyle::Tags => write!(
                    tags,
                    ";{}={}",
                    sanitize(label.key()),
                    label.value().replace([';', ' '], "_")
                )
                .unwrap_or(()),
                LabelStyle::Ignore => {}
            }
        }
        if let Some(suffix) = suffix {
            path.push('.');
            path.push_str(suffix);
        }
        path + &tags
    }
}

/// Integers without a fraction, so counters read as counters.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

fn summarise(summary: Summary, sorted: &[f64]) -> (String, f64) {
    let count = sorted.len();
    match summary {
        Summary::Count => ("count".into(), count as f64),
        Summary::Min => ("min".into(), sorted[0]),
        Summary::Max => ("max".into(), sorted[count - 1]),
        Summary::Mean => ("mean".into(), sorted.iter().sum::<f64>() / count as f64),
        Summary::Percentile(percent) => {
            let rank = ((percent.clamp(0.0, 100.0) / 100.0) * (count - 1) as f64).round() as usize;
            (
                format!("p{}", number(percent).replace('.', "_")),
                sorted[rank],
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(labels: LabelStyle) -> Snapshot {
        let key = Key::from_parts(
            "http.requests",
            vec![metrics::Label::new("route", "/a.b c")],
        );
        Snapshot {
            counters: vec![(key.clone(), 7)],
            gauges: vec![(Key::from_name("queue.size"), 2.5)],
            histograms: vec![(Key::from_name("latency"), vec![3.0, 1.0, 2.0, 4.0])],
            labels,
            summaries: vec![
                Summary::Count,
                Summary::Min,
                Summary::Max,
                Summary::Mean,
                Summary::Percentile(50.0),
                Summary::Percentile(99.9),
            ],
        }
    }

    #[test]
    fn counters_gauges_and_histogram_summaries_become_lines() {
        let lines = snapshot(LabelStyle::Segments).lines("app.host", 1700000000);
        assert_eq!(
            lines,
            [
                "app.host.http.requests._a_b_c 7 1700000000",
                "app.host.queue.size 2.5 1700000000",
                "app.host.latency.count 4 1700000000",
                "app.host.latency.min 1 1700000000",
                "app.host.latency.max 4 1700000000",
                "app.host.latency.mean 2.5 1700000000",
                "app.host.latency.p50 3 1700000000",
                "app.host.latency.p99_9 4 1700000000",
            ]
        );
    }

    #[test]
    fn labels_can_be_named_tagged_or_ignored() {
        assert_eq!(
            snapshot(LabelStyle::NamedSegments).lines("", 1)[0],
            "http.requests.route__a_b_c 7 1"
        );
        assert_eq!(
            snapshot(LabelStyle::Tags).lines("", 1)[0],
            "http.requests;route=/a.b_c 7 1"
        );
        assert_eq!(
            snapshot(LabelStyle::Ignore).lines("", 1)[0],
            "http.requests 7 1"
        );
    }

    #[test]
    fn sanitize_keeps_a_value_in_one_segment() {
        assert_eq!(sanitize("web-01.example.com"), "web-01_example_com");
        assert_eq!(sanitize("a b/c;d"), "a_b_c_d");
    }
}
