//! `wishbone.input.metronome`: a JSON event every `interval` milliseconds,
//! `{"onramp":"metronome","id":N,"ingest_ns":T}`, `id` counting from 0.
//! The text `wishbone show --docs` prints is [`DOCS`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::LocalBoxFuture;
use serde::Deserialize;
use tokio::time::MissedTickBehavior;
use wishbone_runtime::{
    ArgumentError, Arguments, Event, Module, ModuleContext, ModuleError, ModuleKind, QueueSpec,
};

/// What `wishbone show --docs` prints.
pub const DOCS: &str = r#"wishbone.input.metronome: a numbered JSON event on a fixed beat.

Queues
  outbox     {"onramp":"metronome","id":N,"ingest_ns":T}; id counts from 0
             (a restart starts again at 0), ingest_ns is the wall clock

Arguments (default)
  interval   milliseconds between events (1000)

The beat does not drift: event N is due at start + N * interval, and a late
beat is caught up rather than pushing every later one back.

Example
  modules:
    metronome:
      module: wishbone.input.metronome
      arguments: {interval: 1000}
"#;

/// The kind, for the list of builtin modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "wishbone.input.metronome",
    aliases: &[],
    description: "a numbered JSON event on a fixed beat",
    docs: DOCS,
    queues: QueueSpec::SOURCE,
    build,
};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Milliseconds between events.
    #[serde(default = "default_interval")]
    pub interval: u64,
}

fn default_interval() -> u64 {
    1000
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let config: Config = arguments.deserialize()?;
    if config.interval == 0 {
        return Err(ArgumentError::field(
            "interval",
            "must be at least 1 millisecond",
        ));
    }
    Ok(Box::new(Metronome { config }))
}

/// The text of event `id`.
pub fn beat(id: u64, ingest_ns: u128) -> String {
    format!(r#"{{"onramp":"metronome","id":{id},"ingest_ns":{ingest_ns}}}"#)
}

/// The module.
pub struct Metronome {
    config: Config,
}

impl Module for Metronome {
    fn run(
        self: Box<Self>,
        mut context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        let outbox = context.outgoing("outbox");
        let stop = context.stopping();
        let interval = Duration::from_millis(self.config.interval);
        Box::pin(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
            for id in 0.. {
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {}
                }
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|since| since.as_nanos())
                    .unwrap_or(0);
                tokio::select! {
                    biased;
                    sent = outbox.send(vec![Event::new(beat(id, now))]) => if sent.is_err() { break },
                    _ = stop.cancelled() => break,
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_beat_is_the_seeds_json() {
        let value: serde_json::Value = serde_json::from_str(&beat(3, 1600689101122912000)).unwrap();
        assert_eq!(value["onramp"], "metronome");
        assert_eq!(value["id"], 3);
        assert_eq!(value["ingest_ns"].as_u64(), Some(1600689101122912000));
    }
}
