//! `example.input.heartbeat`: a JSON event `{"beat": N}` every `interval_ms`,
//! `count` of them (or until the server stops).
//!
//! An input owns no `inbox`; it puts what it makes on `outbox` and waits
//! when the queue is full (that wait is the pipeline's backpressure), and
//! returns when the server stops, which closes its outbox so the modules
//! behind it drain.

use std::time::Duration;

use futures::future::LocalBoxFuture;
use wishbone_runtime::{
    ArgumentError, Arguments, Event, Module, ModuleContext, ModuleError, ModuleKind, QueueSpec,
};

/// What `wishbone show --docs` prints.
pub const DOCS: &str = r#"example.input.heartbeat: a JSON event {"beat": N} every interval.

Queues
  outbox     the beats, numbered from 0

Arguments (default)
  interval_ms  milliseconds between beats (1000)
  count        beats to make, then stop making them; 0: no end (0)

Example
  modules:
    beat: {module: example.input.heartbeat, arguments: {interval_ms: 100}}
    out: {module: wishbone.output.stdout}
  routingtable:
    - beat.outbox -> out.inbox
"#;

/// The kind: its name, queues, docs and how to build it.
pub const KIND: ModuleKind = ModuleKind {
    name: "example.input.heartbeat",
    aliases: &[],
    description: "a JSON event every interval",
    docs: DOCS,
    queues: QueueSpec::SOURCE,
    build,
};

/// The arguments.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Milliseconds between beats.
    #[serde(default = "default_interval")]
    pub interval_ms: u64,
    /// Beats to make; 0 for no end.
    #[serde(default)]
    pub count: u64,
}

fn default_interval() -> u64 {
    1000
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let config: Config = arguments.deserialize()?;
    if config.interval_ms == 0 {
        return Err(ArgumentError::field("interval_ms", "must be at least 1"));
    }
    Ok(Box::new(Heartbeat { config }))
}

/// The module.
pub struct Heartbeat {
    config: Config,
}

/// The event of beat `number`.
pub fn beat(number: u64) -> Event {
    Event::new(format!("{{\"beat\":{number}}}"))
}

impl Module for Heartbeat {
    fn run(
        self: Box<Self>,
        mut context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        let outbox = context.outgoing("outbox");
        let stop = context.stopping();
        let Config { interval_ms, count } = self.config;
        Box::pin(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(interval_ms));
            let mut number = 0;
            while count == 0 || number < count {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {}
                }
                // Waits while the queue is full; fails only when the module
                // behind it is gone.
                if let Err(closed) = outbox.send(vec![beat(number)]).await {
                    return Err(ModuleError::DownstreamGone {
                        queue: "outbox".into(),
                        undelivered: closed.0.len(),
                    });
                }
                number += 1;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod documentation {
    use super::{Config, KIND};

    #[test]
    fn the_docs_describe_exactly_the_arguments_taken() {
        let taken = wishbone_runtime::field_names::<Config>();
        assert_eq!(KIND.docs_match(&taken), Ok(()));
    }

    #[test]
    fn the_docs_give_the_defaults_the_code_takes() {
        let example = wishbone_runtime::Arguments::from_yaml("{interval_ms: 100}").unwrap();
        let read = wishbone_runtime::read_config::<Config>;
        assert_eq!(KIND.defaults_match(&example, read), Ok(()));
    }
}
