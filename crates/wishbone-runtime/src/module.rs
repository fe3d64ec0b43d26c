use futures::future::LocalBoxFuture;
use wishbone_bootstrap::{ArgumentError, Arguments};
use wishbone_event::QueueSpec;

use crate::ModuleContext;

/// A running piece of a wishbone server.
///
/// `run` owns the module for its whole life: it takes its queues from the
/// context, moves events until its work is done, and returns. A source stops
/// producing when [`ModuleContext::stopping`] fires; every other module
/// finishes when its incoming queues close (every sender gone, queue empty),
/// which is how a stop drains the pipeline from the inputs to the outputs.
pub trait Module: Send + 'static {
    /// Runs the module to completion.
    fn run(
        self: Box<Self>,
        context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>>;

    /// Where the module listens for connections, if it does: the launcher
    /// of `wishbone start --instances N` binds it once for every instance.
    /// A module that listens gets that socket from
    /// [`ModuleContext::listener`].
    fn listens(&self) -> Option<crate::ListenAddress> {
        None
    }
}

/// A module gave up: it could not start (a port in use), or it was aborted
/// while still holding events it had accepted.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ModuleError(pub String);

impl From<std::io::Error> for ModuleError {
    fn from(error: std::io::Error) -> Self {
        ModuleError(error.to_string())
    }
}

/// Everything the runtime and the `wishbone` command know of one kind of
/// module: one entry in a [`crate::ModuleSet`].
#[derive(Clone, Copy, Debug)]
pub struct ModuleKind {
    /// The name a bootstrap uses, `wishbone.output.tcp`.
    pub name: &'static str,
    /// Older names still accepted, `wishbone.builtin.flow.roundrobin`.
    pub aliases: &'static [&'static str],
    /// One line for `wishbone list`.
    pub description: &'static str,
    /// What `wishbone show --docs` prints: queues, arguments with their
    /// defaults, and an example.
    pub docs: &'static str,
    /// The queues routes may name.
    pub queues: QueueSpec,
    /// Builds a module from its arguments without starting it; `wishbone
    /// check` calls it to validate arguments.
    pub build: fn(&Arguments) -> Result<Box<dyn Module>, ArgumentError>,
}
