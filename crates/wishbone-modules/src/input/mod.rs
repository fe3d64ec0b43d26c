//! Modules that bring events into a server.

mod client;
mod datagrams;
pub mod generator;
pub use wishbone_listen::SHARED as LISTENING_ARGUMENTS;
pub mod metronome;
mod read_buffer;
mod receiving;
pub mod relp;
pub mod tcp;
pub mod udp;
pub mod unix;
