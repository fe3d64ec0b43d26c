//! Small helpers shared by the modules' `Config` types.

use std::time::Duration;

use bytes::Bytes;
use wishbone_runtime::{ArgumentError, Arguments};

/// A module's own arguments, once the ones several modules share (a
/// listening input's, a delivering output's) are split off.
pub struct OwnArguments {
    arguments: Arguments,
    shared: &'static [&'static str],
}

impl OwnArguments {
    /// Splits `shared` off `arguments`: (the shared ones, the module's own).
    pub fn split(arguments: &Arguments, shared: &'static [&'static str]) -> (Arguments, Self) {
        let (common, own) = arguments.split(shared);
        (
            common,
            Self {
                arguments: own,
                shared,
            },
        )
    }

    /// Deserializes the module's `Config`; an unknown field's error names
    /// the shared arguments too.
    pub fn deserialize<T: serde::de::DeserializeOwned>(&self) -> Result<T, ArgumentError> {
        self.arguments.deserialize().map_err(|error| {
            let message = error.to_string();
            if message.contains("unknown field") {
                let shared: Vec<String> =
                    self.shared.iter().map(|name| format!("`{name}`")).collect();
                ArgumentError::new(format!("{message}, or one of {}", shared.join(", ")))
            } else {
                error
            }
        })
    }
}

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

/// Where a listening input listens by default: every interface.
pub fn default_listen_address() -> String {
    "0.0.0.0".to_string()
}

/// The peer an output reaches by default: this host.
pub fn default_peer_host() -> String {
    "localhost".to_string()
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

/// Refuses a host that is neither an IP address nor a well-formed host name
/// (labels of letters, digits and `-`, at most 63 bytes each, 253 in all),
/// so `wishbone check` catches what would only fail when the server starts.
pub fn host_name(field: &str, host: &str) -> Result<(), ArgumentError> {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let name = host.strip_suffix('.').unwrap_or(host);
    if !name.is_empty() && name.len() <= 253 && name.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(ArgumentError::new(format!(
            "`{field}` must be an IP address (such as 127.0.0.1 or ::1) or a host name (such as localhost), not `{host}`"
        )))
    }
}

/// Refuses port 0 where a peer must be reached: nothing listens there.
pub fn peer_port(field: &str, port: u16) -> Result<u16, ArgumentError> {
    if port == 0 {
        return Err(ArgumentError::new(format!(
            "`{field}` must be a port from 1 to 65535; 0 cannot be connected to"
        )));
    }
    Ok(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_addresses_or_host_names() {
        for good in [
            "127.0.0.1",
            "::1",
            "0.0.0.0",
            "localhost",
            "carbon-1.example.org",
            "a.",
        ] {
            assert!(host_name("host", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "not an address",
            "host:80",
            "-a",
            "a..b",
            "under_score",
            &"a".repeat(64),
        ] {
            let error = host_name("host", bad).unwrap_err().to_string();
            assert!(
                error.contains("`host` must be an IP address"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn port_zero_cannot_be_reached() {
        assert!(peer_port("port", 0).is_err());
        assert_eq!(peer_port("port", 2003).unwrap(), 2003);
    }
}
