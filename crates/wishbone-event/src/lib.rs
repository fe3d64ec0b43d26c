//! The event and queue model of wishbone.
//!
//! A wishbone server is a set of *modules* (a TCP input, a round robin, a TCP
//! output, ...), each with named *queues*. A bootstrap file's routing table
//! connects one module's queue to another's, `input.outbox -> output.inbox`.
//! This crate holds the parts every other crate shares and that know nothing
//! of actors, sockets or configuration files:
//!
//! - [`Event`]: one unit of data, usually one line read from a socket. Its
//!   payload is a [`bytes::Bytes`], so the events cut from one socket read
//!   share that read's buffer instead of owning a copy each.
//! - [`Batch`]: events travel between modules many at a time. One socket read
//!   becomes one batch; one queue operation moves a whole batch. This is what
//!   makes the runtime fast: the fixed cost of waking a module is paid per
//!   batch, not per event.
//! - [`Lines`]: events still in their wire form, one buffer of delimited
//!   lines and where each ends. A TCP input sends each read as `Lines`; a
//!   round robin deals them by copying lines into one buffer per
//!   destination; a TCP output writes that buffer as it is. No module on
//!   that path touches an event one by one except to find or copy it.
//!   A [`Parcel`] is either form; modules that want separate events get them.
//! - [`queue`]: the bounded channel behind a route. Its capacity counts
//!   *events*, not batches, so `--queue-size 1000` means what it says. A full
//!   queue makes the producer wait (backpressure travels upstream until a TCP
//!   input stops reading its sockets). A queue can be *locked* by its consumer
//!   (an output whose peer is down) so flow modules route around it.
//! - [`QueueStats`]: the counters every queue keeps (`in_total`, `out_total`,
//!   `dropped_total`, and `size`), read by the metrics modules.
//! - [`Ack`]: a write-ahead buffer's token that travels with an event until
//!   the output that handles it says whether the peer has it.
//! - [`QueueSpec`]: which queues a kind of module has, so a bootstrap file
//!   that names a queue a module lacks is refused before anything starts.
//!
//! How an event travels: a TCP input reads 256 KiB from a socket, finds the
//! delimiters, and sends the complete lines as one [`Lines`] parcel on its
//! `outbox` [`queue::Sender`]. The route's [`queue::Receiver`] hands the
//! parcel to the next module (a round robin deals it among its destinations,
//! a funnel passes it on), and finally a TCP output writes the lines to its
//! peer and keeps them until the peer's TCP stack has acknowledged their
//! bytes.

#![warn(missing_docs)]

pub mod ack;
mod event;
mod lines;
mod parcel;
mod positions;
pub mod queue;
pub mod random;
mod spec;
mod stats;
mod tap;

pub use ack::{Ack, AckIssuer, Outcome};
pub use event::{Batch, Event};
pub use lines::{Lines, LinesBuilder};
pub use parcel::Parcel;
pub use positions::Positions;
pub use spec::{QueueSpec, RESERVED_QUEUES};
pub use stats::{QueueSnapshot, QueueStats};
pub use tap::{Tap, TapPoint};
