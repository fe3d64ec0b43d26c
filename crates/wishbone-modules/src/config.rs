//! Small helpers shared by the modules' `Config` types.

use bytes::Bytes;
use wishbone_runtime::ArgumentError;

/// A delimiter as the bytes it stands for; refuses an empty one, which would
/// make every byte an event boundary.
pub fn delimiter_bytes(delimiter: &str) -> Result<Bytes, ArgumentError> {
    if delimiter.is_empty() {
        return Err(ArgumentError::field("delimiter", "must not be empty"));
    }
    Ok(Bytes::copy_from_slice(delimiter.as_bytes()))
}

/// The default delimiter: one event per line.
pub fn default_delimiter() -> String {
    "\n".to_string()
}
