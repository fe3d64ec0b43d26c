#![doc = include_str!("../README.md")]

mod buffer;
mod builder;
mod pusher;
mod recorder;
mod render;

pub use buffer::LineBuffer;
pub use builder::{GraphiteBuilder, InstallError};
pub use recorder::{GraphiteHandle, GraphiteRecorder, Value};
pub use render::{LabelStyle, Snapshot, Summary, sanitize};
