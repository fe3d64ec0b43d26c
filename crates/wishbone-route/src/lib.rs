//! jq in the pipeline: conditions ([`Condition`]) and programs
//! ([`Program`]) compiled when a bootstrap file is loaded, and the modules
//! that route events by conditions, `wishbone.flow.filter` and
//! `wishbone.flow.queueselect`, and reshape them by a program,
//! `wishbone.process.jq`.
//!
//! They live in a crate of their own because of the jq engine (`jaq`)
//! they bring. How a parcel's events are sorted among queues, tokens
//! included, is [`sort`], and what a program makes of a parcel is
//! [`reshape`]: plain logic tested without queues.

#![warn(missing_docs)]

pub mod budget;
mod compile;
pub mod condition;
mod edits;
mod fields;
pub mod filter;
pub mod jq;
pub mod program;
pub mod queueselect;
mod quick;
pub mod reshape;
mod route;
pub mod sort;

pub use compile::CompileError;
pub use condition::{Condition, Conditions};
pub use program::Program;

/// The modules of this crate, for a binary's list of kinds.
pub fn kinds() -> [wishbone_runtime::ModuleKind; 3] {
    [filter::KIND, queueselect::KIND, jq::KIND]
}
