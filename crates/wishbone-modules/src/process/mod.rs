//! Modules that change events on their way.

pub mod modify;
