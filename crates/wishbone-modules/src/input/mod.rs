//! Modules that bring events into a server.

pub mod file;
pub mod generator;
pub use wishbone_listen::SHARED as LISTENING_ARGUMENTS;
pub mod metronome;
mod read_buffer;
pub mod relp;
pub mod tcp;
