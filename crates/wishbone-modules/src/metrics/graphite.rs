//! `wishbone.metrics.graphite`: every `--frequency` seconds, the statistics
//! of every queue as Graphite plaintext lines on `outbox`, to be routed to a
//! `wishbone.output.tcp` pointed at carbon. The text `wishbone show --docs`
//! prints is [`DOCS`].

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::LocalBoxFuture;
use serde::Deserialize;
use tokio::time::MissedTickBehavior;
use wishbone_runtime::queue::TrySendError;
use wishbone_runtime::{
    ArgumentError, Arguments, Batch, Event, Module, ModuleContext, ModuleError, ModuleKind,
    QueueSpec,
};

/// What `wishbone show --docs` prints.
pub const DOCS: &str = r#"wishbone.metrics.graphite: queue statistics as Graphite lines.

Queues
  outbox     one event per statistic: `<path> <value> <unix time>`

Arguments (default)
  prefix            first segment of every path ("wishbone")
  include_hostname  put the host name after the prefix (true)

Every --frequency seconds (default 1), for every queue of every module:
  <prefix>.<host>.queue.<module>.<queue>.size|in_total|out_total|dropped_total
  <prefix>.<host>.queue.<module>.<queue>.in_rate|out_rate|dropped_rate
Dots, spaces and slashes inside a name become `_`. When `outbox` is full the
report is dropped and counted in outbox's dropped_total: metrics never slow
the event flow.

Example (the article's form)
  metrics:
    graphite:
      module: wishbone.builtin.metrics.graphite
  modules:
    graphite_server:
      module: wishbone.output.tcp
      arguments: {host: graphite-001, port: 2013}
  routingtable:
    - graphite.outbox -> graphite_server.inbox
"#;

/// The kind, for the list of builtin modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "wishbone.metrics.graphite",
    aliases: &["wishbone.builtin.metrics.graphite"],
    description: "queue statistics as Graphite plaintext lines",
    docs: DOCS,
    queues: QueueSpec::SOURCE,
    build,
};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// First segment of every path.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Put the host name after the prefix.
    #[serde(default = "default_include_hostname")]
    pub include_hostname: bool,
}

fn default_prefix() -> String {
    "wishbone".to_string()
}

fn default_include_hostname() -> bool {
    true
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    Ok(Box::new(Graphite {
        config: arguments.deserialize()?,
    }))
}

/// Makes a name safe as one segment of a Graphite path.
pub fn sanitize(segment: &str) -> String {
    segment
        .chars()
        .map(|c| {
            if c == '.' || c == '/' || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// The module.
pub struct Graphite {
    config: Config,
}

impl Module for Graphite {
    fn run(
        self: Box<Self>,
        mut context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        let outbox = context.outgoing("outbox");
        let table = context.queue_table();
        let stop = context.stopping();
        let frequency = context.options().frequency;
        let mut base = sanitize(&self.config.prefix);
        if self.config.include_hostname {
            base = format!("{base}.{}", sanitize(&context.options().hostname));
        }
        Box::pin(async move {
            let mut tick = tokio::time::interval(frequency);
            tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
            let mut previous: HashMap<(String, String), [u64; 3]> = HashMap::new();
            loop {
                let stopping = tokio::select! {
                    _ = tick.tick() => false,
                    _ = stop.cancelled() => true,
                };
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let mut lines = Batch::new();
                for entry in table.entries() {
                    let totals = entry.stats.snapshot();
                    let counts = [totals.in_total, totals.out_total, totals.dropped_total];
                    let before = previous
                        .insert((entry.module.clone(), entry.queue.clone()), counts)
                        .unwrap_or(counts);
                    let path = format!(
                        "{base}.queue.{}.{}",
                        sanitize(&entry.module),
                        sanitize(&entry.queue)
                    );
                    let seconds = frequency.as_secs_f64().max(0.001);
                    let rate = |index: usize| (counts[index] - before[index]) as f64 / seconds;
                    let stats = [
                        ("size", totals.size as f64),
                        ("in_total", totals.in_total as f64),
                        ("out_total", totals.out_total as f64),
                        ("dropped_total", totals.dropped_total as f64),
                        ("in_rate", rate(0)),
                        ("out_rate", rate(1)),
                        ("dropped_rate", rate(2)),
                    ];
                    for (stat, value) in stats {
                        lines.push(Event::new(format!("{path}.{stat} {value} {now}")));
                    }
                }
                match outbox.try_send(lines) {
                    Ok(()) => {}
                    Err(TrySendError::Full(lines)) => outbox.stats().record_dropped(lines.len()),
                    Err(TrySendError::Closed(_)) => return Ok(()),
                }
                if stopping {
                    return Ok(());
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_lose_dots_spaces_and_slashes() {
        assert_eq!(sanitize("web-01.example.com"), "web-01_example_com");
        assert_eq!(sanitize("a b/c"), "a_b_c");
    }
}
