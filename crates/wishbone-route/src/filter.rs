//! `wishbone.flow.filter`: events for which a jq condition is true go on,
//! the rest to `rejected`. The text `wishbone show --docs` prints is
//! [`DOCS`].

use futures::future::LocalBoxFuture;
use serde::Deserialize;
use wishbone_runtime::{
    ArgumentError, Arguments, Module, ModuleContext, ModuleError, ModuleKind, QueueSpec,
};

use crate::condition::Condition;
use crate::route::route;

/// What `wishbone show --docs` prints.
pub const DOCS: &str = r#"wishbone.flow.filter: passes the events a jq condition holds for.

Queues
  inbox      events, JSON objects to be tested
  outbox     the events for which the condition is true
  rejected   the others: false, null or no output, and events the condition
             fails on (not JSON, or an error), those counted in
             module.<name>.condition_errors

Arguments (default)
  condition  a jq expression (required); true means its first output is
             neither false nor null. Compiled when the file is loaded: an
             error is reported with its line and column.

Events on rejected when no route connects it are discarded: counted in its
discarded_total (filtering, not loss: dropped_total stays for events lost
for want of room or of a route nobody chose to leave out), and
acknowledged: a write-ahead buffer or RELP input upstream does not send
them again. See docs/routing.md.

Example
  modules:
    input: {module: wishbone.input.tcp, arguments: {port: 19283}}
    errors:
      module: wishbone.flow.filter
      arguments: {condition: '.level == "error"'}
    output: {module: wishbone.output.tcp, arguments: {port: 10001}}
  routingtable:
    - input.outbox -> errors.inbox
    - errors.outbox -> output.inbox
"#;

/// The kind, for the list of builtin modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "wishbone.flow.filter",
    aliases: &[],
    description: "passes the events a jq condition holds for",
    docs: DOCS,
    queues: QueueSpec {
        incoming: &["inbox"],
        outgoing: &["outbox", "rejected"],
        any_incoming: false,
        any_outgoing: false,
    },
    build,
};

/// The arguments.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The jq expression events must satisfy.
    pub condition: String,
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let config: Config = arguments.deserialize()?;
    let condition = Condition::compile(&config.condition)
        .map_err(|error| ArgumentError::field("condition", error.to_string()))?;
    Ok(Box::new(Filter { condition }))
}

/// The module.
pub struct Filter {
    condition: Condition,
}

impl Module for Filter {
    /// In jaq, a condition or program takes microseconds per event: worth
    /// a thread of its own.
    fn cpu_bound(&self) -> bool {
        !self.condition.is_quick()
    }

    fn run(
        self: Box<Self>,
        context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        let condition = self.condition;
        let paced = !condition.is_quick();
        Box::pin(route(
            context,
            ["outbox", "rejected"],
            "rejected",
            paced,
            move |event, errors| match condition.matches(event) {
                Ok(true) => 0b01,
                Ok(false) => 0b10,
                Err(reason) => {
                    errors.count("condition", &reason);
                    0b10
                }
            },
        ))
    }
}
