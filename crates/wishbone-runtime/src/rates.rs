//! Per-second rates of every queue's totals, from one reading to the next:
//! what the metrics reports and the `--graph` page both show.

use std::collections::HashMap;

use wishbone_event::QueueSnapshot;

use crate::QueueEntry;

/// Each queue's totals at the last reading, by module and queue name.
#[derive(Debug, Default)]
pub struct QueueRates {
    before: HashMap<(String, String), [u64; 4]>,
}

/// A queue's counters now, and its rates since the last reading.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QueueReading {
    /// The counters as read.
    pub totals: QueueSnapshot,
    /// Events put on the queue per second.
    pub in_rate: f64,
    /// Events taken off per second.
    pub out_rate: f64,
    /// Events dropped per second.
    pub dropped_rate: f64,
    /// Events discarded per second.
    pub discarded_rate: f64,
}

impl QueueRates {
    /// Reads `entry` `seconds` after the last reading; a queue read for the
    /// first time, or `seconds` of 0, has rates of 0.
    pub fn read(&mut self, entry: &QueueEntry, seconds: f64) -> QueueReading {
        let totals = entry.stats.snapshot();
        let now = [
            totals.in_total,
            totals.out_total,
            totals.dropped_total,
            totals.discarded_total,
        ];
        let before = self
            .before
            .insert((entry.module.clone(), entry.queue.clone()), now)
            .unwrap_or(now);
        let rate = |index: usize| {
            if seconds > 0.0 {
                now[index].saturating_sub(before[index]) as f64 / seconds
            } else {
                0.0
            }
        };
        QueueReading {
            totals,
            in_rate: rate(0),
            out_rate: rate(1),
            dropped_rate: rate(2),
            discarded_rate: rate(3),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::QueueTable;
    use wishbone_event::{Event, queue};

    #[test]
    fn rates_count_from_the_previous_reading_of_the_same_queue() {
        let table = QueueTable::default();
        let (sender, _receiver) = queue::channel(100);
        table.add("input", "outbox", sender.stats().clone());
        let entry = &table.entries()[0];
        let mut rates = QueueRates::default();
        sender.try_send(vec![Event::new("a"); 4]).unwrap();
        let first = rates.read(entry, 1.0);
        assert_eq!(
            (first.totals.in_total, first.in_rate),
            (4, 0.0),
            "first reading"
        );
        sender.try_send(vec![Event::new("a"); 10]).unwrap();
        let second = rates.read(entry, 2.0);
        assert_eq!((second.totals.in_total, second.in_rate), (14, 5.0));
        assert_eq!(rates.read(entry, 0.0).in_rate, 0.0, "no time, no rate");
    }
}
