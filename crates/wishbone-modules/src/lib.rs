//! The builtin wishbone modules, one file per kind, named as in a bootstrap:
//! `wishbone.flow.roundrobin` lives in `flow/roundrobin.rs`.
//!
//! [`builtin`] is the one list of every builtin kind. Each module file opens
//! with its documentation, then its `Config`, then its logic as plain
//! structs, then the module itself, then unit tests.

mod backoff;
mod config;
pub mod flow;
pub mod framer;
pub mod input;
mod metric;
pub mod metrics;
pub mod output;
pub mod process;
#[cfg(test)]
mod random;
pub mod relp;
mod scan;

use wishbone_runtime::{ModuleKind, ModuleSet};

/// Every builtin kind of module.
pub fn builtin() -> Vec<ModuleKind> {
    vec![
        input::tcp::KIND,
        input::relp::KIND,
        input::generator::KIND,
        input::metronome::KIND,
        process::modify::KIND,
        flow::roundrobin::KIND,
        flow::funnel::KIND,
        flow::fanout::KIND,
        flow::wal::KIND,
        output::tcp::KIND,
        output::stdout::KIND,
        output::null::KIND,
        output::websocket::KIND,
        output::relp::KIND,
        metrics::graphite::KIND,
    ]
}

/// The builtin kinds as a set, ready to validate bootstraps and run servers.
pub fn builtin_set() -> ModuleSet {
    ModuleSet::new(builtin())
}
