//! Copies every queue's counters into the `metrics` recorder, with rates,
//! every `--frequency`: `queue.<module>.<queue>.<stat>`.

use std::collections::HashMap;
use std::time::Duration;

use metrics::Gauge;

use crate::{QueueRates, QueueTable};

/// The statistics of one queue, as the original Wishbone reported them,
/// and what was discarded on purpose.
const STATS: [&str; 9] = [
    "size",
    "in_total",
    "out_total",
    "dropped_total",
    "discarded_total",
    "in_rate",
    "out_rate",
    "dropped_rate",
    "discarded_rate",
];

/// Publishes the table's counters; cheap enough to never matter to the
/// event flow (a few atomic stores per queue per report).
#[derive(Default)]
pub(crate) struct Publisher {
    gauges: HashMap<(String, String), [Gauge; 9]>,
    rates: QueueRates,
}

impl Publisher {
    pub(crate) fn publish(&mut self, table: &QueueTable, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64().max(0.001);
        let entries = table.entries();
        // The gauges of queues a reload removed are not set again.
        self.gauges.retain(|(module, queue), _| {
            entries
                .iter()
                .any(|entry| entry.module == *module && entry.queue == *queue)
        });
        for entry in entries {
            let reading = self.rates.read(&entry, seconds);
            let gauges = self
                .gauges
                .entry((entry.module.clone(), entry.queue.clone()))
                .or_insert_with(|| {
                    // Module and queue names are letters, digits, `_` and
                    // `-` (the bootstrap checks): each is one path segment.
                    let base = format!("queue.{}.{}", entry.module, entry.queue);
                    STATS.map(|stat| metrics::gauge!(format!("{base}.{stat}")))
                });
            let totals = reading.totals;
            let values = [
                totals.size as f64,
                totals.in_total as f64,
                totals.out_total as f64,
                totals.dropped_total as f64,
                totals.discarded_total as f64,
                reading.in_rate,
                reading.out_rate,
                reading.dropped_rate,
                reading.discarded_rate,
            ];
            for (gauge, value) in gauges.iter().zip(values) {
                gauge.set(value);
            }
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
