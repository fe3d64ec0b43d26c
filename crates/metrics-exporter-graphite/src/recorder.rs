use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_util::registry::{AtomicStorage, Registry};

use crate::render::{LabelStyle, Snapshot, Summary};

/// The recorder: stores every metric in a registry that a
/// [`GraphiteHandle`] reads.
pub struct GraphiteRecorder {
    shared: Arc<Shared>,
}

/// Reads what the recorder stored: snapshots, rendered lines, and how many
/// lines were dropped while carbon was away. Cheap to clone.
#[derive(Clone)]
pub struct GraphiteHandle {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    registry: Registry<Key, AtomicStorage>,
    prefix: String,
    labels: LabelStyle,
    summaries: Vec<Summary>,
    dropped: AtomicU64,
}

pub(crate) fn pair(
    prefix: String,
    labels: LabelStyle,
    summaries: Vec<Summary>,
) -> (GraphiteRecorder, GraphiteHandle) {
    let shared = Arc::new(Shared {
        registry: Registry::atomic(),
        prefix,
        labels,
        summaries,
        dropped: AtomicU64::new(0),
    });
    (
        GraphiteRecorder {
            shared: shared.clone(),
        },
        GraphiteHandle { shared },
    )
}

impl Recorder for GraphiteRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.shared.registry.get_or_create_counter(key, Arc::clone))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.shared.registry.get_or_create_gauge(key, Arc::clone))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(
            self.shared
                .registry
                .get_or_create_histogram(key, Arc::clone),
        )
    }
}

impl std::fmt::Debug for GraphiteHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphiteHandle")
            .field("prefix", &self.shared.prefix)
            .finish_non_exhaustive()
    }
}

impl GraphiteHandle {
    /// Every metric's value now, sorted by name; histograms are drained.
    pub fn snapshot(&self) -> Snapshot {
        let registry = &self.shared.registry;
        let mut snapshot = Snapshot {
            labels: self.shared.labels,
            summaries: self.shared.summaries.clone(),
            ..Snapshot::default()
        };
        registry.visit_counters(|key, counter| {
            snapshot.counters.push((key.clone(), counter.load(Relaxed)))
        });
        registry.visit_gauges(|key, gauge| {
            snapshot
                .gauges
                .push((key.clone(), f64::from_bits(gauge.load(Relaxed))))
        });
        registry.visit_histograms(|key, histogram| {
            let mut values = Vec::new();
            histogram.clear_with(|chunk| values.extend_from_slice(chunk));
            snapshot.histograms.push((key.clone(), values));
        });
        snapshot.counters.sort_by(|a, b| a.0.name().cmp(b.0.name()));
        snapshot.gauges.sort_by(|a, b| a.0.name().cmp(b.0.name()));
        snapshot
            .histograms
            .sort_by(|a, b| a.0.name().cmp(b.0.name()));
        snapshot
    }

    /// Every counter's and gauge's value now, by name, sorted; labels are
    /// left out and histograms left alone (a reader that is not a report
    /// must not drain them).
    pub fn values(&self) -> Vec<Value> {
        let registry = &self.shared.registry;
        let mut values = Vec::new();
        registry.visit_counters(|key, counter| {
            values.push(Value {
                name: key.name().to_string(),
                value: counter.load(Relaxed) as f64,
                counter: true,
            })
        });
        registry.visit_gauges(|key, gauge| {
            values.push(Value {
                name: key.name().to_string(),
                value: f64::from_bits(gauge.load(Relaxed)),
                counter: false,
            })
        });
        values.sort_by(|a, b| a.name.cmp(&b.name));
        values
    }

    /// Forgets every metric whose name `doomed` picks: it is reported no
    /// more (a handle a module still holds records into nothing). For the
    /// metrics of a part of a program that is gone for good.
    pub fn forget(&self, doomed: impl Fn(&str) -> bool) {
        let registry = &self.shared.registry;
        registry.retain_counters(|key, _| !doomed(key.name()));
        registry.retain_gauges(|key, _| !doomed(key.name()));
        registry.retain_histograms(|key, _| !doomed(key.name()));
    }

    /// The lines for a snapshot taken now, under the builder's prefix.
    pub fn render(&self, timestamp: u64) -> Vec<String> {
        self.snapshot().lines(&self.shared.prefix, timestamp)
    }

    /// The prefix the builder was given.
    pub fn prefix(&self) -> &str {
        &self.shared.prefix
    }

    pub(crate) fn record_dropped(&self, total: u64) {
        self.shared.dropped.store(total, Relaxed);
    }

    /// Lines dropped because carbon was away longer than the buffer lasts.
    pub fn dropped_lines(&self) -> u64 {
        self.shared.dropped.load(Relaxed)
    }
}

/// A counter's or a gauge's value, as [`GraphiteHandle::values`] reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub name: String,
    pub value: f64,
    /// A counter (a total that only grows), not a gauge.
    pub counter: bool,
}

#[cfg(test)]
mod tests {
    use crate::{GraphiteBuilder, Value};

    #[test]
    fn values_read_counters_and_gauges_and_leave_histograms_to_the_reports() {
        let (recorder, handle) = GraphiteBuilder::new().build();
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("module.output.delivered").increment(5);
            metrics::gauge!("queue.output.inbox.size").set(2.0);
            metrics::histogram!("latency").record(1.0);
        });
        assert_eq!(
            handle.values(),
            [
                Value {
                    name: "module.output.delivered".to_string(),
                    value: 5.0,
                    counter: true
                },
                Value {
                    name: "queue.output.inbox.size".to_string(),
                    value: 2.0,
                    counter: false
                },
            ]
        );
        let lines = handle.render(1);
        assert!(
            lines.contains(&"latency.count 1 1".to_string()),
            "{lines:?}"
        );
    }
}
