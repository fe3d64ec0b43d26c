//! `wishbone.process.jq`: reshapes events by a jq program. The text
//! `wishbone show --docs` prints is [`DOCS`].

use futures::future::LocalBoxFuture;
use serde::Deserialize;
use wishbone_runtime::rewrite::Rewriting;
use wishbone_runtime::{
    ArgumentError, Arguments, Counted, Module, ModuleContext, ModuleError, ModuleKind, QueueSpec,
};

use crate::program::Program;
use crate::reshape::reshape;

/// What `wishbone show --docs` prints.
pub const DOCS: &str = r#"wishbone.process.jq: reshapes events by a jq program.

Queues
  inbox      events, JSON texts
  outbox     each value the program yields, as compact JSON, in order
  failed     events the program fails on (or that are not JSON), as
             {"error": REASON, "event": TEXT}, counted in
             module.<name>.failed

Arguments (default)
  program    a jq program (required), compiled when the file is loaded: an
             error is reported with its line and column. `debug`, `stderr`,
             `halt_error`, `input` and `inputs` are refused.

Each value the program yields for an event is an event. None (`empty`,
`select` false): the event is dropped, counted in module.<name>.dropped,
and acknowledged: a write-ahead buffer or RELP input upstream does not
send it again. Several (`.items[]`): they share the original's
acknowledgement, which is given once every one of them is delivered and
fails when one fails. Lines stay lines (one write for the block) where
every event yields exactly one value. See docs/routing.md, "Reshaping
events".

Example
  modules:
    input: {module: wishbone.input.tcp, arguments: {port: 19283}}
    reshape:
      module: wishbone.process.jq
      arguments:
        program: '.host = .hostname | del(.hostname) | .pipeline = "edge"'
    output: {module: wishbone.output.tcp, arguments: {port: 10001}}
  routingtable:
    - input.outbox -> reshape.inbox
    - reshape.outbox -> output.inbox
"#;

/// The kind, for the list of builtin modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "wishbone.process.jq",
    aliases: &[],
    description: "reshapes events by a jq program",
    docs: DOCS,
    queues: QueueSpec::PROCESS,
    build,
};

/// The arguments.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The jq program.
    pub program: String,
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let config: Config = arguments.deserialize()?;
    let program = Program::compile(&config.program)
        .map_err(|error| ArgumentError::field("program", error.to_string()))?;
    Ok(Box::new(Jq { program }))
}

/// The module.
pub struct Jq {
    program: Program,
}

impl Module for Jq {
    /// In jaq, a condition or program takes microseconds per event: worth
    /// a thread of its own.
    fn cpu_bound(&self) -> bool {
        !self.program.is_quick()
    }

    fn run(
        self: Box<Self>,
        mut context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        let program = self.program;
        let dropped = Counted::new(context.name(), "dropped");
        let rewriting = Rewriting::of(&mut context);
        let name = context.name().to_string();
        let workers = context.options().threads;
        Box::pin(async move {
            let ended = rewriting
                .run(|parcel| {
                    let reshaped = reshape(&program, parcel, workers);
                    dropped.add(reshaped.dropped as u64);
                    reshaped.rewritten
                })
                .await;
            tracing::info!(module = %name, dropped = dropped.total(), "events the program yielded nothing for");
            ended
        })
    }
}
