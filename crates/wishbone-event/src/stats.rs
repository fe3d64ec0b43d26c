use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The counters of one queue, shared by its sender, its receiver and whoever
/// reports metrics. Relaxed atomics: the figures are statistics, read every
/// second, never used to synchronise.
#[derive(Debug, Default)]
pub struct QueueStats {
    in_total: AtomicU64,
    out_total: AtomicU64,
    dropped_total: AtomicU64,
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
    /// Events dropped because the queue is not connected, or by a module that
    /// was configured to drop (every drop in wishbone is counted somewhere).
    pub dropped_total: u64,
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

    /// Reads all counters; `size` is derived so it can never disagree with them.
    pub fn snapshot(&self) -> QueueSnapshot {
        let out_total = self.out_total.load(Relaxed);
        let in_total = self.in_total.load(Relaxed);
        QueueSnapshot {
            size: in_total.saturating_sub(out_total),
            in_total,
            out_total,
            dropped_total: self.dropped_total.load(Relaxed),
        }
    }
}
