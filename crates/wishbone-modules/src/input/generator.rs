//! `wishbone.input.generator`: emits a fixed payload on a schedule, for
//! demos and tests. The text `wishbone show --docs` prints is [`DOCS`].

use futures::future::LocalBoxFuture;
use serde::Deserialize;
use tokio::time::MissedTickBehavior;
use wishbone_runtime::{
    ArgumentError, Arguments, Batch, Event, Module, ModuleContext, ModuleError, ModuleKind,
    QueueSpec,
};

use wishbone_runtime::seconds;

/// What `wishbone show --docs` prints.
pub const DOCS: &str = r#"wishbone.input.generator: emits a payload every interval.

Queues
  outbox     the generated events

Arguments (default)
  payload    the event's text ("hello world")
  interval   seconds between events (1); 0 emits as fast as the pipeline
             takes them, a queue's worth at a time
  count      stop after this many events, 0 for never (0)

Example
  modules:
    generator:
      module: wishbone.input.generator
      arguments:
        payload: hello
        interval: 0.5
"#;

/// The kind, for the list of builtin modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "wishbone.input.generator",
    aliases: &["wishbone.input.testevent"],
    description: "emits a payload every interval, for demos and tests",
    docs: DOCS,
    queues: QueueSpec::SOURCE,
    build,
};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The event's text.
    #[serde(default = "default_payload")]
    pub payload: String,
    /// Seconds between events; 0 for as fast as possible.
    #[serde(default = "default_interval")]
    pub interval: f64,
    /// Events to emit before stopping; 0 for no end.
    #[serde(default)]
    pub count: u64,
}

fn default_payload() -> String {
    "hello world".to_string()
}

fn default_interval() -> f64 {
    1.0
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let config: Config = arguments.deserialize()?;
    seconds("interval", config.interval)?;
    Ok(Box::new(Generator { config }))
}

/// The module.
pub struct Generator {
    config: Config,
}

impl Module for Generator {
    fn run(
        self: Box<Self>,
        mut context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        let outbox = context.outgoing("outbox");
        let stop = context.stopping();
        let payload = Event::new(self.config.payload.clone().into_bytes());
        let limit = if self.config.count == 0 {
            u64::MAX
        } else {
            self.config.count
        };
        let interval = std::time::Duration::from_secs_f64(self.config.interval);
        Box::pin(async move {
            let mut emitted = 0u64;
            let mut tick = (!interval.is_zero()).then(|| {
                let mut tick = tokio::time::interval(interval);
                tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
                tick
            });
            while emitted < limit {
                let size = match tick {
                    Some(_) => 1,
                    None => (limit - emitted).min(outbox.capacity().min(1 << 20) as u64) as usize,
                };
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => break,
                    _ = async { if let Some(tick) = tick.as_mut() { tick.tick().await; } } => {}
                }
                let batch: Batch = std::iter::repeat_n(payload.clone(), size).collect();
                tokio::select! {
                    biased;
                    sent = outbox.send(batch) => if sent.is_err() { break },
                    _ = stop.cancelled() => break,
                }
                emitted += size as u64;
            }
            Ok(())
        })
    }
}
