//! Modules that change events on their way.

pub(crate) mod convert;
pub mod decode;
pub mod encode;
pub mod modify;
mod parsers;
mod timestamp;
