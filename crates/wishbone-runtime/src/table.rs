use std::sync::{Arc, Mutex};

use wishbone_event::QueueStats;

/// One named queue of one module and its counters. The two ends of a route
/// share one set of counters, listed under both names, as in the original.
#[derive(Clone, Debug)]
pub struct QueueEntry {
    /// The module's instance name.
    pub module: String,
    /// The queue's name on that module.
    pub queue: String,
    /// The queue's counters, shared with the queue itself.
    pub stats: Arc<QueueStats>,
}

/// Every queue of a server, for metrics modules and the summary at exit.
#[derive(Clone, Debug, Default)]
pub struct QueueTable {
    entries: Arc<Mutex<Vec<QueueEntry>>>,
}

impl QueueTable {
    /// Lists a queue; the runtime lists every queue it wires.
    pub fn add(&self, module: &str, queue: &str, stats: Arc<QueueStats>) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !entries
            .iter()
            .any(|entry| entry.module == module && entry.queue == queue)
        {
            entries.push(QueueEntry {
                module: module.to_string(),
                queue: queue.to_string(),
                stats,
            });
        }
    }

    /// Lists a queue, or points its entry at other counters: those of the
    /// queue a kept module's outgoing queue leads into after a reload.
    pub fn set(&self, module: &str, queue: &str, stats: Arc<QueueStats>) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.retain(|entry| entry.module != module || entry.queue != queue);
        entries.push(QueueEntry {
            module: module.to_string(),
            queue: queue.to_string(),
            stats,
        });
    }

    /// Forgets the queues of a module that stopped for good or is being
    /// replaced: its counters are no longer reported.
    pub fn remove_module(&self, module: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .retain(|entry| entry.module != module);
    }

    /// A copy of the list, sorted by module and queue.
    pub fn entries(&self) -> Vec<QueueEntry> {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        entries.sort_by(|a, b| (&a.module, &a.queue).cmp(&(&b.module, &b.queue)));
        entries
    }
}
