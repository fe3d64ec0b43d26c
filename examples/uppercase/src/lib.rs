//! `example.uppercase`: upper-cases the ASCII letters of every event, to
//! show how a module of one's own is written. `docs/writing-a-module.md`
//! walks through this file.
//!
//! Queues: `inbox` in, `outbox` out. Arguments: `only_first` (false): upper-case
//! only the first letter of each event.
//!
//! ```yaml
//! modules:
//!   shout:
//!     module: example.uppercase
//!     arguments: {only_first: false}
//! ```

use futures::future::LocalBoxFuture;
use serde::Deserialize;
use wishbone_runtime::{
    ArgumentError, Arguments, Batch, Module, ModuleContext, ModuleError, ModuleKind, QueueSpec,
};

/// What `show --docs example.uppercase` prints.
pub const DOCS: &str = r#"example.uppercase: upper-cases the ASCII letters of every event.

Queues
  inbox      events
  outbox     the same events, upper-cased

Arguments (default)
  only_first  upper-case only the first letter of each event (false)

Example
  modules:
    shout:
      module: example.uppercase
"#;

/// The kind: what a binary adds to its module set to offer this module.
pub const KIND: ModuleKind = ModuleKind {
    name: "example.uppercase",
    aliases: &[],
    description: "upper-cases the ASCII letters of every event",
    docs: DOCS,
    queues: QueueSpec::PROCESS,
    build,
};

/// The arguments a bootstrap may give.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Upper-case only the first letter of each event.
    #[serde(default)]
    pub only_first: bool,
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    Ok(Box::new(Uppercase {
        config: arguments.deserialize()?,
    }))
}

/// The logic, a plain function: testable without any runtime.
pub fn shout(data: &[u8], only_first: bool) -> Vec<u8> {
    let mut out = data.to_vec();
    match only_first {
        true => {
            if let Some(first) = out.iter_mut().find(|byte| byte.is_ascii_alphabetic()) {
                first.make_ascii_uppercase();
            }
        }
        false => out.make_ascii_uppercase(),
    }
    out
}

/// The module: takes batches from `inbox`, sends them on to `outbox`.
pub struct Uppercase {
    config: Config,
}

impl Module for Uppercase {
    fn run(
        self: Box<Self>,
        mut context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        let mut inbox = context.take_incoming("inbox");
        let outbox = context.outgoing("outbox");
        Box::pin(async move {
            // The inbox closes once everything upstream has stopped: then we stop too.
            while let Some(batch) = inbox.recv().await {
                let shouted: Batch = batch
                    .iter()
                    .map(|event| event.with_data(shout(event.data(), self.config.only_first)))
                    .collect();
                if let Err(closed) = outbox.send(shouted).await {
                    return Err(ModuleError::DownstreamGone {
                        queue: "outbox".into(),
                        undelivered: closed.0.len(),
                    });
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wishbone_runtime::{Event, RuntimeOptions, queue};

    #[test]
    fn shout_upper_cases_ascii_letters_only() {
        assert_eq!(shout(b"hello, world 1", false), b"HELLO, WORLD 1");
        assert_eq!(shout(b"  hello", true), b"  Hello");
        assert_eq!(shout("é a".as_bytes(), false), "é A".as_bytes());
    }

    /// The module itself, on plain queues: no actix system, no sockets.
    #[tokio::test(flavor = "current_thread")]
    async fn the_module_moves_batches_from_inbox_to_outbox() {
        let mut context = ModuleContext::detached("shout", RuntimeOptions::default());
        let (to_module, inbox) = queue::channel(10);
        let (outbox, mut from_module) = queue::channel(10);
        context.connect_incoming("inbox", inbox);
        context.connect_outgoing("outbox", outbox);
        let module = build(&Arguments::from_yaml("only_first: false").unwrap()).unwrap();
        let running = tokio::task::LocalSet::new();
        running
            .run_until(async move {
                let task = tokio::task::spawn_local(module.run(context));
                to_module
                    .send(vec![Event::new("ab"), Event::new("c")])
                    .await
                    .unwrap();
                drop(to_module);
                assert_eq!(
                    from_module.recv().await.unwrap(),
                    vec![Event::new("AB"), Event::new("C")]
                );
                task.await.unwrap().unwrap();
            })
            .await;
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
        let example = wishbone_runtime::Arguments::from_yaml("{}").unwrap();
        let read = wishbone_runtime::read_config::<Config>;
        assert_eq!(KIND.defaults_match(&example, read), Ok(()));
    }
}
