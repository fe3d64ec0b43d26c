//! What the recorder holds, in the Prometheus text format (0.0.4).
//!
//! The recorder names every value by path: `queue.<module>.<queue>.<stat>`
//! and `module.<module>.<counter>`. Here the identities become labels and
//! the rest the metric's name, as Prometheus names things:
//!
//! | path | metric |
//! |---|---|
//! | `queue.M.Q.in_total` (and `out_total`, `dropped_total`, `discarded_total`) | `wishbone_queue_in_total{module="M",queue="Q"}`, a counter |
//! | `queue.M.Q.size` | `wishbone_queue_size{module="M",queue="Q"}`, a gauge |
//! | `queue.M.Q.in_rate` (and the other rates) | left out: `rate()` computes them |
//! | `module.M.C`, a counter | `wishbone_module_C_total{module="M"}` |
//! | `module.M.C`, a gauge | `wishbone_module_C{module="M"}` |
//! | `server.C`, a counter | `wishbone_server_C_total` (the server's own: `reload_failures`) |
//! | `server.C`, a gauge | `wishbone_server_C` (`started_at`, `last_reload_at`) |
//! | `server.build_info.vX_Y_Z` | `wishbone_build_info{version="X.Y.Z"} 1` |
//!
//! Every family has `# HELP` and `# TYPE`, families are sorted, and label
//! values are escaped, so `promtool check metrics` finds nothing to say.

use std::collections::BTreeMap;
use std::fmt::Write;

use wishbone_runtime::RecordedValue;

/// The queue statistics that are totals (counters) and the one gauge.
const QUEUE_TOTALS: [(&str, &str); 4] = [
    ("in_total", "events put on the queue"),
    ("out_total", "events taken off the queue"),
    (
        "dropped_total",
        "events lost: no room where dropping was chosen, or a queue no route connects",
    ),
    (
        "discarded_total",
        "events a module's configuration chose not to pass on (a filter's unrouted rejected): filtering, not loss",
    ),
];

/// One metric family: its kind, its help text and its samples.
#[derive(Default)]
struct Family {
    counter: bool,
    help: String,
    samples: Vec<(String, f64)>,
}

/// The page: every value the recorder holds, as families of samples.
pub fn render(values: &[RecordedValue]) -> String {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    for value in values {
        let Some((name, counter, help, labels)) = metric(&value.path, value.counter) else {
            continue;
        };
        let family = families.entry(name).or_insert_with(|| Family {
            counter,
            help,
            samples: Vec::new(),
        });
        family.samples.push((labels, value.value));
    }
    let mut page = String::new();
    for (name, family) in &mut families {
        family.samples.sort_by(|a, b| a.0.cmp(&b.0));
        let kind = if family.counter { "counter" } else { "gauge" };
        let _ = writeln!(page, "# HELP {name} {}", family.help);
        let _ = writeln!(page, "# TYPE {name} {kind}");
        for (labels, value) in &family.samples {
            let _ = match labels.is_empty() {
                true => writeln!(page, "{name} {}", number(*value)),
                false => writeln!(page, "{name}{{{labels}}} {}", number(*value)),
            };
        }
    }
    page
}

/// The metric a path is shown as: its name, whether it is a counter, its
/// help text and its labels; none for what is left out.
fn metric(path: &str, counter: bool) -> Option<(String, bool, String, String)> {
    let parts: Vec<&str> = path.split('.').collect();
    match parts[..] {
        ["queue", module, queue, stat] => {
            let labels = format!("module=\"{}\",queue=\"{}\"", escape(module), escape(queue));
            if stat == "size" {
                let help = "events waiting in the queue".to_string();
                return Some(("wishbone_queue_size".into(), false, help, labels));
            }
            let (stat, help) = QUEUE_TOTALS.iter().find(|(name, _)| *name == stat)?;
            Some((
                format!("wishbone_queue_{stat}"),
                true,
                (*help).to_string(),
                labels,
            ))
        }
        ["module", module, name] if is_name(name) => {
            let labels = format!("module=\"{}\"", escape(module));
            let (metric, help) = named("module", name, counter);
            Some((metric, counter, help, labels))
        }
        ["server", "build_info", version] => {
            let version = version.strip_prefix('v')?.replace('_', ".");
            let help = "the running build: its version, as a label".to_string();
            let labels = format!("version=\"{}\"", escape(&version));
            Some(("wishbone_build_info".into(), false, help, labels))
        }
        ["server", name] if is_name(name) => {
            let (metric, help) = named("server", name, counter);
            Some((metric, counter, help, String::new()))
        }
        _ => None,
    }
}

/// The metric and help text of `owner`'s (the module's, the server's)
/// value `name`: a counter ends in `_total`.
fn named(owner: &str, name: &str, counter: bool) -> (String, String) {
    if counter {
        let base = name.strip_suffix("_total").unwrap_or(name);
        (
            format!("wishbone_{owner}_{base}_total"),
            format!("the {owner}'s `{name}` total (docs/metrics.md)"),
        )
    } else {
        (
            format!("wishbone_{owner}_{name}"),
            format!("the {owner}'s `{name}` now (docs/metrics.md)"),
        )
    }
}

/// Whether `name` may stand in a metric's name as it is.
fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample's value: whole numbers without a fraction.
fn number(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(path: &str, value: f64, counter: bool) -> RecordedValue {
        RecordedValue {
            path: path.into(),
            value,
            counter,
        }
    }

    #[test]
    fn queues_and_modules_become_labelled_families() {
        let page = render(&[
            value("queue.output_2.inbox.in_total", 150000.0, false),
            value("queue.input.outbox.in_total", 300000.0, false),
            value("queue.input.outbox.in_rate", 1234.5, false),
            value("queue.input.outbox.size", 7.0, false),
            value("module.output_1.delivered", 150000.0, true),
            value("module.output_1.connected", 1.0, false),
            value("module.wal.disk_bytes", 1.5e6, false),
            value("graph.something.else", 1.0, true),
            value("server.reload_failures", 2.0, true),
            value("server.build_info.v1_2_3", 1.0, false),
            value("server.started_at", 1_796_000_000.0, false),
        ]);
        let expected = "\
# HELP wishbone_build_info the running build: its version, as a label
# TYPE wishbone_build_info gauge
wishbone_build_info{version=\"1.2.3\"} 1
# HELP wishbone_module_connected the module's `connected` now (docs/metrics.md)
# TYPE wishbone_module_connected gauge
wishbone_module_connected{module=\"output_1\"} 1
# HELP wishbone_module_delivered_total the module's `delivered` total (docs/metrics.md)
# TYPE wishbone_module_delivered_total counter
wishbone_module_delivered_total{module=\"output_1\"} 150000
# HELP wishbone_module_disk_bytes the module's `disk_bytes` now (docs/metrics.md)
# TYPE wishbone_module_disk_bytes gauge
wishbone_module_disk_bytes{module=\"wal\"} 1500000
# HELP wishbone_queue_in_total events put on the queue
# TYPE wishbone_queue_in_total counter
wishbone_queue_in_total{module=\"input\",queue=\"outbox\"} 300000
wishbone_queue_in_total{module=\"output_2\",queue=\"inbox\"} 150000
# HELP wishbone_queue_size events waiting in the queue
# TYPE wishbone_queue_size gauge
wishbone_queue_size{module=\"input\",queue=\"outbox\"} 7
# HELP wishbone_server_reload_failures_total the server's `reload_failures` total (docs/metrics.md)
# TYPE wishbone_server_reload_failures_total counter
wishbone_server_reload_failures_total 2
# HELP wishbone_server_started_at the server's `started_at` now (docs/metrics.md)
# TYPE wishbone_server_started_at gauge
wishbone_server_started_at 1796000000
";
        assert_eq!(page, expected);
    }

    #[test]
    fn label_values_are_escaped_and_fractions_kept() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(3.0), "3");
        assert!(metric("module.m.Not-A-Name", true).is_none());
    }
}
