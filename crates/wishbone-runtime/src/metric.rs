//! How the metrics modules record are named, and a counter that also keeps
//! its total for the log at a stop.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// `module.<module>.<metric>`, a counter's or a gauge's name. A bootstrap's
/// module names hold only letters, digits, `_` and `-`, so they never add a
/// path segment.
pub fn module_metric(module: &str, metric: &str) -> String {
    format!("module.{module}.{metric}")
}

/// A metrics counter with its total kept for the log at stop.
#[derive(Debug)]
pub struct Counted {
    metric: metrics::Counter,
    total: AtomicU64,
}

impl Counted {
    /// The counter `module.<module>.<name>`.
    pub fn new(module: &str, name: &str) -> Self {
        Self {
            metric: metrics::counter!(module_metric(module, name)),
            total: AtomicU64::new(0),
        }
    }

    /// Adds `count` to the metric and the total.
    pub fn add(&self, count: u64) {
        if count > 0 {
            self.metric.increment(count);
            self.total.fetch_add(count, Relaxed);
        }
    }

    /// Everything added so far.
    pub fn total(&self) -> u64 {
        self.total.load(Relaxed)
    }
}
