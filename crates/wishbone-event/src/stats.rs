use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The counters of one queue, shared by its sender, its receiver and whoever
/// reports metrics. Relaxed atomics: the figures are statistics, read every
/// second, never used to synchronise.
#[derive(Debug, Default)]
pub struct QueueStats {
    in_total: AtomicU64,
    out_total: AtomicU64,
    dropped_total: AtomicU64,
    discarded_total: AtomicU64,
    tap: crate::tap::TapPoint,
}

/// The counters of one queue at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueSnapshot {
    /// Events waiting in the queue.
    pub size: u64,
    /// Events ever put on the queue.
    pub in_total: u64,
    /// Events ever taken off the queue.
    pub out_total: u64,
    /// Events dropped: no room where a user chose dropping, or a queue no
    /// route connects where none was chosen (every drop in wishbone is
    /// counted somewhere).
    pub dropped_total: u64,
    /// Events a module's configuration chose not to pass on, on a queue no
    /// route connects (a filter's `rejected`, a selector's `nomatch`):
    /// filtering, not loss.
    pub discarded_total: u64,
}

impl QueueStats {
    pub(crate) fn record_in(&self, events: usize) {
        self.in_total.fetch_add(events as u64, Relaxed);
    }

    pub(crate) fn record_out(&self, events: usize) {
        self.out_total.fetch_add(events as u64, Relaxed);
    }

    /// Counts events dropped on purpose; modules call it where a user chose dropping.
    pub fn record_dropped(&self, events: usize) {
        self.dropped_total.fetch_add(events as u64, Relaxed);
    }

    /// Counts events a module's configuration chose not to pass on.
    pub fn record_discarded(&self, events: usize) {
        self.discarded_total.fetch_add(events as u64, Relaxed);
    }

    /// Where taps of this queue attach.
    pub(crate) fn tap_point(&self) -> &crate::tap::TapPoint {
        &self.tap
    }

    /// Reads all counters; `size` is derived so it can never disagree with them.
    pub fn snapshot(&self) -> QueueSnapshot {
        let out_total = self.out_total.load(Relaxed);
        let in_total = self.in_total.load(Relaxed);
        QueueSnapshot {
            size: in_total.saturating_sub(out_total),
            in_total,
            out_total,
            dropped_total: self.dropped_total.load(Relaxed),
            discarded_total: self.discarded_total.load(Relaxed),
        }
    }
}
