//! Modules that bring events into a server.

pub mod generator;
mod listener;
pub mod metronome;
pub mod relp;
pub mod tcp;
