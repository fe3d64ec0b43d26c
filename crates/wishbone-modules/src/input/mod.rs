//! Modules that bring events into a server.

pub mod generator;
mod listener;
pub mod metronome;
mod presence;
mod read_buffer;
pub mod relp;
pub mod tcp;
