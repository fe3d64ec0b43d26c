//! Modules that take events out of a server.

pub mod null;
pub mod stdout;
pub mod tcp;
