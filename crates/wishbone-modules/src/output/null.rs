//! `wishbone.output.null`: takes events and discards them, for tests and
//! benchmarks. The text `wishbone show --docs` prints is [`DOCS`].

use futures::future::LocalBoxFuture;
use serde::Deserialize;
use wishbone_runtime::{
    ArgumentError, Arguments, Module, ModuleContext, ModuleError, ModuleKind, QueueSpec,
};

/// What `wishbone show --docs` prints.
pub const DOCS: &str = r#"wishbone.output.null: takes events and discards them.

Queues
  inbox      events to discard; its out_total counts them

Arguments: none

Example
  modules:
    sink:
      module: wishbone.output.null
"#;

/// The kind, for the list of builtin modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "wishbone.output.null",
    aliases: &[],
    description: "takes events and discards them",
    docs: DOCS,
    queues: QueueSpec::SINK,
    build,
};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let _: Config = arguments.deserialize()?;
    Ok(Box::new(Null))
}

/// The module.
pub struct Null;

impl Module for Null {
    fn run(
        self: Box<Self>,
        mut context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        let mut inbox = context.take_incoming("inbox");
        Box::pin(async move {
            while let Some(parcel) = inbox.recv_parcel().await {
                parcel.acknowledge();
            }
            Ok(())
        })
    }
}
