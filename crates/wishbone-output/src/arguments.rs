//! The arguments every output that reaches a peer shares, parsed and
//! described once: `timeout`, `failed`, `success`, `reconnect_initial`,
//! `reconnect_max` ([`Settings`]); and the checks of the arguments that
//! name the peer (`host`, `port`). The `tls` argument's shape is
//! [`crate::tls`]'s.

use std::time::Duration;

use serde::Deserialize;
use wishbone_runtime::{ArgumentError, Arguments, OwnArguments, seconds};

pub use wishbone_runtime::host_name;

use crate::backoff::Backoff;

/// The arguments every output that reaches a peer takes besides its own,
/// described once here and in [`shared_arguments_docs!`](crate::shared_arguments_docs).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveryArguments {
    /// Seconds to wait for a connection, and for a peer that stopped
    /// acknowledging, before it counts as down.
    #[serde(default = "default_timeout")]
    timeout: f64,
    /// Undeliverable events go to `failed` instead of waiting.
    #[serde(default)]
    failed: bool,
    /// Acknowledged events go to `success`.
    #[serde(default)]
    success: bool,
    /// First wait before reconnecting, seconds.
    #[serde(default = "default_reconnect_initial")]
    reconnect_initial: f64,
    /// Longest wait between attempts, seconds.
    #[serde(default = "default_reconnect_max")]
    reconnect_max: f64,
}

/// Their names, to split them off a module's arguments.
pub const SHARED: [&str; 5] = [
    "timeout",
    "failed",
    "success",
    "reconnect_initial",
    "reconnect_max",
];

/// What `show --docs` of each such output says of them, for `concat!`
/// (`wishbone_output::shared_arguments_docs!()`).
#[macro_export]
macro_rules! shared_arguments_docs {
    () => {
        "  timeout            seconds to wait for a connection, and for a peer that
                     stopped acknowledging, before it counts as down (10)
  failed             send undeliverable events to `failed` instead of keeping
                     them for the next connection (false)
  success            send acknowledged events to `success` (false)
  reconnect_initial  first wait in seconds before reconnecting (0.1)
  reconnect_max      longest wait between attempts; waits double up to it (1)
"
    };
}

/// The shared settings, from the arguments every such output takes.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How long a connection attempt, or a peer that stopped acknowledging,
    /// may take before the peer counts as down.
    pub timeout: Duration,
    /// The waits between connection attempts (`reconnect_initial`,
    /// `reconnect_max`).
    pub backoff: Backoff,
    /// Undeliverable events go to `failed`.
    pub failover: bool,
    /// Acknowledged events go to `success`.
    pub success: bool,
}

impl Settings {
    /// The shared settings and the module's own arguments, whose `Config`
    /// is deserialized by the module (an unknown field there names these
    /// shared ones too).
    pub fn split(arguments: &Arguments) -> Result<(Self, OwnArguments), ArgumentError> {
        let (shared, own) = OwnArguments::split(arguments, &SHARED);
        let shared: DeliveryArguments = shared.deserialize()?;
        let settings = Self {
            timeout: seconds("timeout", shared.timeout)?,
            backoff: Backoff::new(
                seconds("reconnect_initial", shared.reconnect_initial)?,
                seconds("reconnect_max", shared.reconnect_max)?,
            ),
            failover: shared.failed,
            success: shared.success,
        };
        Ok((settings, own))
    }
}

/// The peer an output reaches by default: this host.
pub fn default_peer_host() -> String {
    "localhost".to_string()
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

/// Refuses port 0 where a peer must be reached: nothing listens there.
pub fn peer_port(field: &str, port: u16) -> Result<u16, ArgumentError> {
    if port == 0 {
        return Err(ArgumentError::field(
            field,
            "must be a port from 1 to 65535; 0 cannot be connected to",
        ));
    }
    Ok(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_cannot_be_reached() {
        assert!(peer_port("port", 0).is_err());
        assert_eq!(peer_port("port", 2003).unwrap(), 2003);
    }
}
