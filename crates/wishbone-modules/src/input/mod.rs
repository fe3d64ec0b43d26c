//! Modules that bring events into a server.

pub mod generator;
pub mod metronome;
pub mod tcp;
