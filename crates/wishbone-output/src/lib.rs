//! Writing an output that reaches a peer: the public output API of
//! wishbone.
//!
//! An output is an [`Output`] module around a [`Transport`] of its own. The
//! transport says how to connect; its [`Connection`] says how to write a
//! batch ([`Connection::send`], recording each event's position in
//! [`Sent`]) and how to learn what the peer acknowledged
//! ([`Connection::heard`]), in the transport's own unit: bytes of a stream
//! or numbered messages ([`Unit`]). Everything else is the same for every
//! output and lives here once:
//!
//! - the pump (`pump.rs`): takes parcels while the connection has room,
//!   gathers what else waits into one write, takes in acknowledgements,
//!   notices a stalled peer ([`OnStall`]), drains on stop;
//! - the shell (`shell.rs`): connects with backoff, locks the inbox while
//!   the peer is down (so a round robin routes around it), holds or fails
//!   over what arrives meanwhile, logs one line per outage;
//! - the delivery core ([`Delivery`]): what was written, what the peer
//!   acknowledged, what to send again or fail over, a write-ahead buffer's
//!   tokens;
//! - the arguments every such output shares ([`arguments`]: `timeout`,
//!   `failed`, `success`, `reconnect_initial`, `reconnect_max`, the checks
//!   of `host` and `port`) and the one `tls` shape ([`tls`]);
//! - for transports over TCP, the kernel's word on what the peer received
//!   ([`tcp`]).
//!
//! `examples/file-output` is an output written only against this crate.

#![warn(missing_docs)]

pub mod arguments;
pub mod backoff;
mod delivery;
mod pump;
mod shell;
mod state;
pub mod tcp;
mod transport;

pub use arguments::Settings;
pub use delivery::{Delivery, Lost, Released, Stall, Unit};
pub use shell::Output;
pub use transport::{Connection, Heard, OnStall, Sent, Transport, room_below};
pub use wishbone_tls as tls;
