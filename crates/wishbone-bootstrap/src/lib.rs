//! The bootstrap file: which modules a wishbone server runs and how their
//! queues are connected.
//!
//! ```yaml
//! modules:
//!   input:
//!     module: wishbone.input.tcp
//!     arguments:
//!       port: 10000
//!   output:
//!     module: wishbone.output.tcp
//!     arguments:
//!       port: 20000
//! routingtable:
//!   - input.outbox -> output.inbox
//! ```
//!
//! Loading happens in two steps, as in Vector's config compiler: the text is
//! parsed into a plain document, then [`validate`] walks it and collects
//! *every* problem (unknown keys, unknown module kinds, bad arguments, routes
//! that name missing modules or queues, queues connected twice) before
//! failing, so a user fixes a file in one pass. Which module kinds exist and
//! what arguments they take is asked of a [`Catalog`], so this crate knows
//! nothing of the modules themselves.
//!
//! This is the only crate that touches the YAML libraries (serde_yaml for
//! values, yaml-rust2 for where each key is): module arguments
//! reach modules as [`Arguments`], which deserialize into each module's own
//! `Config` type.

#![warn(missing_docs)]

mod argument_error;
mod arguments;
mod document;
mod environment;
mod error;
mod field_names;
mod locate;
mod route;
mod suggest;
mod suite;
mod validate;

pub use argument_error::{ArgumentError, ArgumentProblem};
pub use arguments::{Arguments, OwnArguments, host_name, octal_mode, seconds};
pub use error::{LoadError, Problem};
pub use field_names::field_names;
pub use locate::Location;
pub use route::{QueueRef, Route};
pub use suggest::nearest;
pub use suite::{Case, Expectation, Input, Suite, load_suite};
pub use validate::{
    Bootstrap, Catalog, MAX_FILE_BYTES, ModuleDecl, Section, Validated, load, validate,
};
