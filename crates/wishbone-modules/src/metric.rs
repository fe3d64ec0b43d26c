//! Names of the counters modules record through the `metrics` facade, and
//! a counter that also keeps its total for the log at a stop.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// `module.<module>.<counter>`. A bootstrap's module names hold only
/// letters, digits, `_` and `-`, so they never add a path segment.
pub fn module_counter(module: &str, counter: &str) -> String {
    format!("module.{module}.{counter}")
}

/// A metrics counter with its total kept for the log at stop.
#[derive(Debug)]
pub struct Counted {
    metric: metrics::Counter,
    total: AtomicU64,
}

impl Counted {
    pub fn new(module: &str, name: &str) -> Self {
        Self {
            metric: metrics::counter!(module_counter(module, name)),
            total: AtomicU64::new(0),
        }
    }

    pub fn add(&self, count: u64) {
        if count > 0 {
            self.metric.increment(count);
            self.total.fetch_add(count, Relaxed);
        }
    }

    pub fn total(&self) -> u64 {
        self.total.load(Relaxed)
    }
}
