//! What `/api/pipeline` returns and the page draws: the modules with their
//! places, queues and counters, and the routes, at one moment. Rates are
//! per second over the time since the previous sample.

use std::collections::{BTreeMap, HashMap};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use wishbone_runtime::{QueueEntry, QueueRates, RecordedValue};

use crate::layout::{Position, layout};

/// The modules and routes of a bootstrap; a reload gives a new one.
#[derive(Clone, Debug, Default)]
pub struct Topology {
    /// Each module's instance name and canonical kind, in bootstrap order.
    pub modules: Vec<(String, String)>,
    /// Each route as (`module`, `queue`) to (`module`, `queue`).
    pub routes: Vec<((String, String), (String, String))>,
}

/// The pipeline at one moment.
#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    /// When the figures were read, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The host name, as metric paths carry it.
    pub host: String,
    /// The seconds the rates were measured over (0 for the first sample).
    pub interval_seconds: f64,
    pub modules: Vec<ModuleFigures>,
    pub routes: Vec<RouteFigures>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ModuleFigures {
    pub name: String,
    pub kind: String,
    #[serde(flatten)]
    pub position: Position,
    pub queues: Vec<QueueFigures>,
    /// The module's own counters, `module.<name>.<counter>` without the
    /// prefix: `connected`, `delivered`, `resent`, `failed_over`, ...
    pub counters: BTreeMap<String, f64>,
    /// Per second since the previous sample, for those of `counters` that
    /// are totals (`delivered`, not `connected`); none in the first sample.
    pub rates: BTreeMap<String, f64>,
}

/// How a queue is wired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The end of a route: the module takes events from it.
    In,
    /// The start of a route: the module puts events on it.
    Out,
    /// No route: what a module puts there is dropped (or, where its
    /// configuration chose to leave events, discarded) and counted.
    Unrouted,
}

#[derive(Clone, Debug, Serialize)]
pub struct QueueFigures {
    pub name: String,
    pub direction: Direction,
    pub size: u64,
    pub in_total: u64,
    pub out_total: u64,
    pub dropped_total: u64,
    pub discarded_total: u64,
    pub in_rate: f64,
    pub out_rate: f64,
    pub dropped_rate: f64,
    pub discarded_rate: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct RouteFigures {
    /// `module.queue`, as the routing table writes it.
    pub from: String,
    pub to: String,
}

/// Turns the queue table and the recorded counters into [`Snapshot`]s,
/// remembering the totals of the previous sample for the rates.
pub struct Sampler {
    topology: Topology,
    host: String,
    places: Vec<Position>,
    /// Each module's index in `topology.modules`, by name.
    index: HashMap<String, usize>,
    /// How each routed queue is wired; any other queue is unrouted.
    directions: HashMap<(String, String), Direction>,
    rates: QueueRates,
    /// Each module counter's total at the previous sample.
    totals: HashMap<String, f64>,
    last: Option<Instant>,
}

impl Sampler {
    pub fn new(topology: Topology, host: String) -> Self {
        let index: HashMap<String, usize> = topology
            .modules
            .iter()
            .enumerate()
            .map(|(index, (name, _))| (name.clone(), index))
            .collect();
        let links: Vec<(usize, usize)> = topology
            .routes
            .iter()
            .filter_map(|((from, _), (to, _))| Some((*index.get(from)?, *index.get(to)?)))
            .collect();
        let places = layout(topology.modules.len(), &links);
        // A queue that ends a route is `in` even if another starts there.
        let mut directions = HashMap::new();
        for (from, to) in &topology.routes {
            directions.entry(from.clone()).or_insert(Direction::Out);
            directions.insert(to.clone(), Direction::In);
        }
        Self {
            topology,
            host,
            places,
            index,
            directions,
            rates: QueueRates::default(),
            totals: HashMap::new(),
            last: None,
        }
    }

    /// The pipeline now, from the queue table's entries and the recorder's
    /// values (`module.<name>.<counter>` paths; others are ignored).
    pub fn sample(
        &mut self,
        queues: &[QueueEntry],
        values: &[RecordedValue],
        now: Instant,
        wall: SystemTime,
    ) -> Snapshot {
        let seconds = self
            .last
            .map_or(0.0, |last| now.duration_since(last).as_secs_f64());
        self.last = Some(now);
        let mut modules: Vec<ModuleFigures> = self
            .topology
            .modules
            .iter()
            .zip(&self.places)
            .map(|((name, kind), position)| ModuleFigures {
                name: name.clone(),
                kind: kind.clone(),
                position: *position,
                queues: Vec::new(),
                counters: BTreeMap::new(),
                rates: BTreeMap::new(),
            })
            .collect();
        for entry in queues {
            let Some(&module) = self.index.get(&entry.module) else {
                continue;
            };
            let figures = self.queue_figures(entry, seconds);
            modules[module].queues.push(figures);
        }
        for recorded in values {
            let Some((module, counter)) = recorded
                .path
                .strip_prefix("module.")
                .and_then(|rest| rest.split_once('.'))
            else {
                continue;
            };
            let Some(&module) = self.index.get(module) else {
                continue;
            };
            let figures = &mut modules[module];
            figures.counters.insert(counter.to_string(), recorded.value);
            if recorded.counter {
                let before = self.totals.insert(recorded.path.clone(), recorded.value);
                if let Some(before) = before
                    && seconds > 0.0
                {
                    let rate = (recorded.value - before).max(0.0) / seconds;
                    figures.rates.insert(counter.to_string(), rate);
                }
            }
        }
        Snapshot {
            timestamp_ms: wall
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_millis() as u64),
            host: self.host.clone(),
            interval_seconds: seconds,
            modules,
            routes: self
                .topology
                .routes
                .iter()
                .map(|((from, from_queue), (to, to_queue))| RouteFigures {
                    from: format!("{from}.{from_queue}"),
                    to: format!("{to}.{to_queue}"),
                })
                .collect(),
        }
    }

    fn queue_figures(&mut self, entry: &QueueEntry, seconds: f64) -> QueueFigures {
        let reading = self.rates.read(entry, seconds);
        let direction = self
            .directions
            .get(&(entry.module.clone(), entry.queue.clone()))
            .copied()
            .unwrap_or(Direction::Unrouted);
        QueueFigures {
            name: entry.queue.clone(),
            direction,
            size: reading.totals.size,
            in_total: reading.totals.in_total,
            out_total: reading.totals.out_total,
            dropped_total: reading.totals.dropped_total,
            discarded_total: reading.totals.discarded_total,
            in_rate: reading.in_rate,
            out_rate: reading.out_rate,
            dropped_rate: reading.dropped_rate,
            discarded_rate: reading.discarded_rate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use wishbone_runtime::{Event, QueueTable, queue};

    fn end(module: &str, queue: &str) -> (String, String) {
        (module.to_string(), queue.to_string())
    }

    #[test]
    fn rates_are_per_second_since_the_previous_sample() {
        let topology = Topology {
            modules: vec![
                end("input", "wishbone.input.tcp"),
                end("output", "wishbone.output.tcp"),
            ],
            routes: vec![(end("input", "outbox"), end("output", "inbox"))],
        };
        let table = QueueTable::default();
        let (sender, receiver) = queue::channel(100);
        table.add("input", "outbox", sender.stats().clone());
        table.add("output", "inbox", receiver.stats().clone());
        table.add("output", "failed", std::sync::Arc::default());
        let mut sampler = Sampler::new(topology, "host".into());
        let start = Instant::now();
        let value = |path: &str, value: f64, counter: bool| RecordedValue {
            path: path.to_string(),
            value,
            counter,
        };
        let before = [value("module.output.delivered", 3.0, true)];
        let first = sampler.sample(&table.entries(), &before, start, SystemTime::now());
        assert_eq!(first.interval_seconds, 0.0);
        assert!(
            first.modules[1].rates.is_empty(),
            "no rate without an interval"
        );
        sender.try_send(vec![Event::new("a"); 10]).unwrap();
        let values = [
            value("module.output.connected", 1.0, false),
            value("module.output.delivered", 7.0, true),
            value("queue.output.inbox.size", 10.0, false),
        ];
        let second = sampler.sample(
            &table.entries(),
            &values,
            start + Duration::from_secs(2),
            SystemTime::now(),
        );
        let output = &second.modules[1];
        assert_eq!((output.position.column, output.position.row), (1, 0));
        let inbox = output.queues.iter().find(|q| q.name == "inbox").unwrap();
        assert_eq!((inbox.size, inbox.in_total, inbox.in_rate), (10, 10, 5.0));
        assert_eq!(inbox.direction, Direction::In);
        let failed = output.queues.iter().find(|q| q.name == "failed").unwrap();
        assert_eq!(failed.direction, Direction::Unrouted);
        assert_eq!(second.modules[0].queues[0].direction, Direction::Out);
        assert_eq!(
            output.counters.len(),
            2,
            "only module counters: {:?}",
            output.counters
        );
        assert_eq!(output.counters["delivered"], 7.0);
        assert_eq!(
            output.rates,
            BTreeMap::from([("delivered".to_string(), 2.0)]),
            "(7 - 3) / 2 s, and none for the gauge `connected`"
        );
        assert_eq!(second.routes[0].from, "input.outbox");
        let json = serde_json::to_value(&second).unwrap();
        assert_eq!(
            json["modules"][1]["column"], 1,
            "the position is flattened: {json}"
        );
        assert_eq!(json["modules"][1]["queues"][1]["direction"], "in");
    }
}
