//! Modules that turn the server's own statistics into events.

pub mod graphite;
