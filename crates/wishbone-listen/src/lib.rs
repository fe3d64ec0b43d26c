//! The listening side every input that serves TCP clients shares, public so
//! that an input in a crate of its own (HTTP, a user's) serves its clients
//! as the builtin tcp and RELP inputs do: [`Listening`] binds (or takes the
//! launcher's socket), accepts up to `max_connections` clients, shakes
//! hands under `tls`, and gives each client its [`Presence`], which closes
//! it for a frame left unfinished past `frame_timeout` or to make room for
//! a new client.
//!
//! An input splits the shared arguments ([`SHARED`]) off its own with
//! [`Listening::split`], says where it listens with [`Listening::address`]
//! (its `Module::listens`), and serves with [`Listening::serve`] (every
//! client on the module's thread) or [`Listening::serve_spread`] (each on
//! the thread where it has the fewest, for a client that is `Send` until
//! it is served). Its docs
//! take [`slots_docs!`] for the slots and `frame_timeout`.

#![warn(missing_docs)]

mod accepting;
mod listener;
mod presence;

pub use listener::{AcceptTotals, LIVE, Listening, SHARED, default_connection_limit};
pub use presence::{Closing, MIN_IDLE, Presence, Registry};

/// Where a listening input listens by default: every interface.
pub fn default_listen_address() -> String {
    "0.0.0.0".to_string()
}
