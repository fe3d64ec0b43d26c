//! Copies every queue's counters into the `metrics` recorder, with rates,
//! every `--frequency`: `queue.<module>.<queue>.<stat>`.

use std::collections::HashMap;
use std::time::Duration;

use metrics::Gauge;

use crate::QueueTable;

/// The statistics of one queue, as the original Wishbone reported them.
const STATS: [&str; 7] = [
    "size",
    "in_total",
    "out_total",
    "dropped_total",
    "in_rate",
    "out_rate",
    "dropped_rate",
];

/// One queue's gauges and its totals at the last report, for the rates.
struct Published {
    gauges: [Gauge; 7],
    before: [u64; 3],
}

/// Publishes the table's counters; cheap enough to never matter to the
/// event flow (a few atomic stores per queue per report).
#[derive(Default)]
pub(crate) struct Publisher {
    queues: HashMap<(String, String), Published>,
}

impl Publisher {
    pub(crate) fn publish(&mut self, table: &QueueTable, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64().max(0.001);
        for entry in table.entries() {
            let totals = entry.stats.snapshot();
            let counts = [totals.in_total, totals.out_total, totals.dropped_total];
            let published = self
                .queues
                .entry((entry.module.clone(), entry.queue.clone()))
                .or_insert_with(|| {
                    // Module and queue names are letters, digits, `_` and
                    // `-` (the bootstrap checks): each is one path segment.
                    let base = format!("queue.{}.{}", entry.module, entry.queue);
                    Published {
                        gauges: STATS.map(|stat| metrics::gauge!(format!("{base}.{stat}"))),
                        before: counts,
                    }
                });
            let rate = |index: usize| {
                counts[index].saturating_sub(published.before[index]) as f64 / seconds
            };
            let values = [
                totals.size as f64,
                counts[0] as f64,
                counts[1] as f64,
                counts[2] as f64,
                rate(0),
                rate(1),
                rate(2),
            ];
            for (gauge, value) in published.gauges.iter().zip(values) {
                gauge.set(value);
            }
            published.before = counts;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_exporter_graphite::GraphiteBuilder;
    use wishbone_event::{Event, queue};

    #[test]
    fn queue_totals_and_rates_reach_the_recorder() {
        let (recorder, handle) = GraphiteBuilder::new().build();
        let table = QueueTable::default();
        let (sender, _receiver) = queue::channel(100);
        table.add("input", "outbox", sender.stats().clone());
        let mut publisher = Publisher::default();
        metrics::with_local_recorder(&recorder, || {
            publisher.publish(&table, Duration::from_secs(1))
        });
        sender.try_send(vec![Event::new("a"); 10]).unwrap();
        metrics::with_local_recorder(&recorder, || {
            publisher.publish(&table, Duration::from_secs(2))
        });
        let lines = handle.render(1);
        for expected in [
            "queue.input.outbox.in_total 10 1",
            "queue.input.outbox.size 10 1",
            "queue.input.outbox.in_rate 5 1",
        ] {
            assert!(
                lines.iter().any(|line| line == expected),
                "{expected} not in {lines:#?}"
            );
        }
    }
}
