//! The builtin wishbone modules, one file per kind, named as in a bootstrap:
//! `wishbone.flow.roundrobin` lives in `flow/roundrobin.rs`.
//!
//! The one list of every builtin kind is the `wishbone` crate's
//! `builtin()`, with the kinds of `wishbone-wal` (the write-ahead buffer,
//! with its own log on disk), `wishbone-nats` and `wishbone-prometheus`. Each module file opens
//! with its documentation, then its `Config`, then its logic as plain
//! structs, then the module itself, then unit tests.

mod config;
pub mod flow;
pub mod input;
pub mod metrics;
pub mod output;
pub mod process;
