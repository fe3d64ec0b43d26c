//! The wishbone runtime: turns a validated bootstrap into running modules.
//!
//! - [`Module`] and [`ModuleKind`] are the module API. A kind describes
//!   itself (name, older names, one-line description, documentation, queues)
//!   and builds a module from its arguments; the builtin modules and a user's
//!   own modules use exactly this API.
//! - [`ModuleSet`] is a list of kinds; it answers the bootstrap validator's
//!   questions and builds modules.
//! - [`ModuleContext`] is what a running module gets: the receivers of its
//!   incoming queues, the senders of its outgoing ones, and the stop signal.
//! - [`ModuleActor`] is the actix actor that hosts one module for its life.
//! - [`Server`] wires the queues of a bootstrap, starts the actors (outputs
//!   first, inputs last), and on SIGINT or SIGTERM stops the inputs and lets
//!   every queue drain into its outputs before it returns.
//!
//! Events do not travel as actix messages: actix mailboxes count messages,
//! not events, and `do_send` ignores their capacity. They travel in batches on
//! the bounded queues of [`wishbone_event::queue`], whose capacity counts
//! events and whose full state makes producers wait.

#![warn(missing_docs)]

mod actor;
mod context;
mod kind_docs;
mod listen;
pub mod memory;
mod metric;
mod module;
mod options;
mod order;
mod pipeline;
mod plan;
mod publish;
mod rates;
mod readiness;
mod relay;
pub mod reopen;
pub mod resend;
pub mod rewrite;
mod server;
mod set;
mod spread;
mod supervision;
mod table;
mod threads;
pub mod turn;
pub mod workers;

pub use actor::ModuleActor;
pub use context::ModuleContext;
pub use kind_docs::read_config;
pub use listen::{
    INSTANCE_VARIABLE, InheritedListeners, LISTENERS_VARIABLE, ListenAddress, bind,
    instance_from_environment,
};
pub use metric::{Counted, module_metric};
pub use module::{Module, ModuleError, ModuleKind};
pub use options::{RecordedMetrics, RecordedValue, RuntimeOptions};
pub use plan::Plan;
pub use rates::{QueueRates, QueueReading};
pub use readiness::{ModuleReadiness, Readiness};
pub use relay::LockRelay;
pub use server::{Reloaded, Reloader, Server, ServerError};
pub use set::ModuleSet;
pub use spread::{Placed, Spread};
pub use table::{QueueEntry, QueueTable};

pub use wishbone_bootstrap::{
    ArgumentError, Arguments, OwnArguments, Validated, field_names, host_name, octal_mode, seconds,
};

/// A bootstrap file loaded: checked, with each of its modules as checking
/// its arguments built it, to run as it is.
pub type Loaded = Validated<Box<dyn Module>>;
pub use wishbone_event::{
    Batch, Event, Lines, LinesBuilder, Parcel, Positions, QueueSpec, Tap, ack, queue, random,
};
