//! `wishbone.output.stdout`: writes each event, followed by the delimiter, to
//! standard output. The text `wishbone show --docs` prints is [`DOCS`].

use bytes::Bytes;
use futures::future::LocalBoxFuture;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use wishbone_runtime::{
    ArgumentError, Arguments, Module, ModuleContext, ModuleError, ModuleKind, Parcel, QueueSpec,
};

use crate::config::{default_delimiter, delimiter_bytes};

/// What `wishbone show --docs` prints.
pub const DOCS: &str = r#"wishbone.output.stdout: events to standard output.

Queues
  inbox      events to print

Arguments (default)
  delimiter  written after each event ("\n")

Example
  modules:
    stdout:
      module: wishbone.output.stdout
"#;

/// The kind, for the list of builtin modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "wishbone.output.stdout",
    aliases: &[],
    description: "events to standard output",
    docs: DOCS,
    queues: QueueSpec::SINK,
    build,
};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Written after each event.
    #[serde(default = "default_delimiter")]
    pub delimiter: String,
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let config: Config = arguments.deserialize()?;
    Ok(Box::new(Stdout {
        delimiter: delimiter_bytes(&config.delimiter)?,
    }))
}

/// The module.
pub struct Stdout {
    delimiter: Bytes,
}

impl Module for Stdout {
    fn run(
        self: Box<Self>,
        mut context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        let mut inbox = context.take_incoming("inbox");
        Box::pin(async move {
            let mut stdout = tokio::io::stdout();
            while let Some(parcel) = inbox.recv_parcel().await {
                let (lines, events) = parcel.into_wire(&self.delimiter);
                let written = async {
                    stdout.write_all(lines.data()).await?;
                    stdout.flush().await
                };
                written
                    .await
                    .map_err(|error| ModuleError::io("cannot write to standard output", error))?;
                match events {
                    Some(events) => Parcel::Events(events).acknowledge(),
                    None => Parcel::Lines(lines).acknowledge(),
                }
            }
            Ok(())
        })
    }
}
