//! Small helpers shared by the modules' `Config` types.

use std::time::Duration;

use bytes::Bytes;
use wishbone_runtime::ArgumentError;

/// A delimiter as the bytes it stands for; refuses an empty one, which would
/// make every byte an event boundary.
pub fn delimiter_bytes(delimiter: &str) -> Result<Bytes, ArgumentError> {
    if delimiter.is_empty() {
        return Err(ArgumentError::new("`delimiter` must not be empty"));
    }
    Ok(Bytes::copy_from_slice(delimiter.as_bytes()))
}

/// Seconds as a duration; refuses negative, infinite and NaN values.
pub fn seconds(name: &str, value: f64) -> Result<Duration, ArgumentError> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        ArgumentError::new(format!(
            "`{name}` must be a number of seconds of 0 or more, not {value}"
        ))
    })
}

/// The default delimiter: one event per line.
pub fn default_delimiter() -> String {
    "\n".to_string()
}

/// Seconds an output waits for a connection (and, for tcp, for a peer that
/// stopped reading) before it counts the peer as down.
pub fn default_timeout() -> f64 {
    10.0
}

/// An output's first wait before reconnecting, seconds.
pub fn default_reconnect_initial() -> f64 {
    0.1
}

/// An output's longest wait between reconnection attempts, seconds; the
/// original Wishbone retried every second.
pub fn default_reconnect_max() -> f64 {
    1.0
}
