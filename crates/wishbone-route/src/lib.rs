//! Routing by content: jq conditions ([`Condition`]) compiled when a
//! bootstrap file is loaded, and the modules that send events by them,
//! `wishbone.flow.filter` and `wishbone.flow.queueselect`.
//!
//! They live in a crate of their own because of the jq engine (`jaq`)
//! they bring. How a parcel's events are sorted among queues, tokens
//! included, is [`sort`], plain logic tested without queues.

#![warn(missing_docs)]

pub mod condition;
mod fields;
pub mod filter;
pub mod queueselect;
mod quick;
mod route;
pub mod sort;

pub use condition::{Condition, ConditionError, Conditions};

/// The modules of this crate, for a binary's list of kinds.
pub fn kinds() -> [wishbone_runtime::ModuleKind; 2] {
    [filter::KIND, queueselect::KIND]
}
