//! `example.flow.sample`: one event in `every` goes on to `outbox`, the
//! others to `skipped`.
//!
//! A flow module decides where events go; it changes nothing in them. The
//! decision is a plain struct ([`Sampler`]) tested without queues. What a
//! flow module owes the events it handles: an event from a write-ahead
//! buffer carries a token, and one put on a queue that no route connects
//! is dropped there, so it is acknowledged first (the configuration chose
//! to drop it); otherwise the buffer would send it again.

use futures::future::LocalBoxFuture;
use wishbone_runtime::{
    ArgumentError, Arguments, Batch, Event, Module, ModuleContext, ModuleError, ModuleKind,
    QueueSpec,
};

/// What `wishbone show --docs` prints.
pub const DOCS: &str = r#"example.flow.sample: one event in `every` goes on, the others to skipped.

Queues
  inbox      events
  outbox     the first event, then every `every`-th after it
  skipped    the others; with no route from it they are dropped, counted in
             its dropped_total, and acknowledged to a write-ahead buffer

Arguments (default)
  every      keep one event in this many (10)

Example
  modules:
    beat: {module: example.input.heartbeat, arguments: {interval_ms: 10}}
    sample: {module: example.flow.sample, arguments: {every: 100}}
    out: {module: wishbone.output.stdout}
  routingtable:
    - beat.outbox -> sample.inbox
    - sample.outbox -> out.inbox
"#;

/// The kind: its name, queues, docs and how to build it.
pub const KIND: ModuleKind = ModuleKind {
    name: "example.flow.sample",
    aliases: &[],
    description: "one event in N goes on",
    docs: DOCS,
    queues: QueueSpec {
        incoming: &["inbox"],
        outgoing: &["outbox", "skipped"],
        any_incoming: false,
        any_outgoing: false,
    },
    build,
};

/// The arguments.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Keep one event in this many.
    #[serde(default = "default_every")]
    pub every: u64,
}

fn default_every() -> u64 {
    10
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let config: Config = arguments.deserialize()?;
    if config.every == 0 {
        return Err(ArgumentError::field("every", "must be at least 1"));
    }
    Ok(Box::new(Sample { config }))
}

/// Which events are kept: the first, then every `every`-th.
#[derive(Debug)]
pub struct Sampler {
    every: u64,
    seen: u64,
}

impl Sampler {
    pub fn new(every: u64) -> Self {
        Self { every, seen: 0 }
    }

    /// The events kept, and the others.
    pub fn split(&mut self, events: Batch) -> (Batch, Batch) {
        let (mut kept, mut skipped) = (Batch::new(), Batch::new());
        for event in events {
            match self.seen % self.every {
                0 => kept.push(event),
                _ => skipped.push(event),
            }
            self.seen += 1;
        }
        (kept, skipped)
    }
}

/// The module.
pub struct Sample {
    config: Config,
}

impl Module for Sample {
    fn run(
        self: Box<Self>,
        mut context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        let mut inbox = context.take_incoming("inbox");
        let outbox = context.outgoing("outbox");
        let skipped = context.outgoing("skipped");
        let mut sampler = Sampler::new(self.config.every);
        Box::pin(async move {
            // A flow module runs until its inbox closes: the modules before
            // it have stopped, and everything they sent has been taken.
            while let Some(events) = inbox.recv().await {
                let (kept, dropped) = sampler.split(events);
                if !skipped.is_connected() {
                    dropped.iter().for_each(Event::acknowledge);
                }
                for (queue, sender, events) in
                    [("outbox", &outbox, kept), ("skipped", &skipped, dropped)]
                {
                    if let Err(closed) = sender.send(events).await {
                        return Err(ModuleError::DownstreamGone {
                            queue: queue.into(),
                            undelivered: closed.0.len(),
                        });
                    }
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(range: std::ops::Range<u64>) -> Batch {
        range.map(crate::heartbeat::beat).collect()
    }

    #[test]
    fn one_in_every_is_kept_across_batches() {
        let mut sampler = Sampler::new(3);
        let (kept, skipped) = sampler.split(numbered(0..4));
        assert_eq!((kept.len(), skipped.len()), (2, 2));
        let (kept, _) = sampler.split(numbered(4..7));
        assert_eq!(kept, numbered(6..7));
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
        let example = wishbone_runtime::Arguments::from_yaml("{every: 100}").unwrap();
        let read = wishbone_runtime::read_config::<Config>;
        assert_eq!(KIND.defaults_match(&example, read), Ok(()));
    }
}
