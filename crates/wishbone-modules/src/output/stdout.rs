//! `wishbone.output.stdout`: writes each event, followed by the delimiter, to
//! standard output. The text `wishbone show --docs` prints is [`DOCS`].

use futures::future::LocalBoxFuture;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use wishbone_runtime::{
    ArgumentError, Arguments, Module, ModuleContext, ModuleError, ModuleKind, QueueSpec,
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
    delimiter: Vec<u8>,
}

impl Module for Stdout {
    fn run(
        self: Box<Self>,
        mut context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        let mut inbox = context.take_incoming("inbox");
        Box::pin(async move {
            let mut stdout = tokio::io::stdout();
            let mut text = Vec::new();
            while let Some(batch) = inbox.recv().await {
                text.clear();
                for event in &batch {
                    text.extend_from_slice(event.data());
                    text.extend_from_slice(&self.delimiter);
                }
                stdout.write_all(&text).await?;
                stdout.flush().await?;
                batch.iter().for_each(wishbone_runtime::Event::acknowledge);
            }
            Ok(())
        })
    }
}
