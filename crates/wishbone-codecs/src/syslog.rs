//! Syslog messages and JSON: [`decode::to_json`] for
//! `wishbone.process.decode` and [`encode::from_json`] for
//! `wishbone.process.encode`.

pub mod decode;
pub mod encode;
mod strict;
