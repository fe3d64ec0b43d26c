//! Modules that bring events into a server.

pub mod file;
pub mod generator;
mod listener;
pub use listener::SHARED as LISTENING_ARGUMENTS;
pub mod metronome;
mod presence;
mod read_buffer;
pub mod relp;
pub mod tcp;
