//! `wishbone.metrics.graphite`: every `--frequency` seconds, everything the
//! server recorded (queue statistics, output counters) as Graphite plaintext
//! lines on `outbox`, to be routed to a `wishbone.output.tcp` pointed at
//! carbon. The text `wishbone show --docs` prints is [`DOCS`].

use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::LocalBoxFuture;
use metrics_exporter_graphite::{GraphiteHandle, sanitize};
use serde::Deserialize;
use tokio::time::MissedTickBehavior;
use wishbone_runtime::queue::TrySendError;
use wishbone_runtime::{
    ArgumentError, Arguments, Batch, Event, Module, ModuleContext, ModuleError, ModuleKind,
    QueueSpec, RecordedMetrics, RecordedValue,
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
and for every tcp output:
  <prefix>.<host>.module.<module>.connected|connects|delivered|bytes|failed_over|resent
Dots, spaces and slashes inside a name become `_`. docs/metrics.md says
what each means. When `outbox` is full the
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

/// What the Graphite recorder holds, as the runtime asks for it.
#[derive(Debug)]
pub struct RecordedByGraphite(pub GraphiteHandle);

impl RecordedMetrics for RecordedByGraphite {
    fn lines(&self, prefix: &str, now: u64) -> Vec<String> {
        self.0.snapshot().lines(prefix, now)
    }

    fn forget_module(&self, module: &str) {
        let (counters, queues) = (format!("module.{module}."), format!("queue.{module}."));
        self.0
            .forget(|name| name.starts_with(&counters) || name.starts_with(&queues));
    }

    fn values(&self) -> Vec<RecordedValue> {
        self.0
            .values()
            .into_iter()
            .map(|value| RecordedValue {
                path: value.name,
                value: value.value,
                counter: value.counter,
            })
            .collect()
    }
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
        let stop = context.stopping();
        let frequency = context.options().frequency;
        let handle = context.options().metrics.clone();
        let mut prefix = sanitize(&self.config.prefix);
        if self.config.include_hostname {
            prefix = format!("{prefix}.{}", sanitize(&context.options().hostname));
        }
        let name = context.name().to_string();
        Box::pin(async move {
            let Some(handle) = handle else {
                tracing::warn!(module = %name, "no metrics recorder is installed: nothing to report");
                return Ok(());
            };
            let mut tick = tokio::time::interval(frequency);
            tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
            loop {
                let stopping = tokio::select! {
                    _ = tick.tick() => false,
                    _ = stop.cancelled() => true,
                };
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let lines: Batch = handle
                    .lines(&prefix, now)
                    .into_iter()
                    .map(Event::new)
                    .collect();
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
