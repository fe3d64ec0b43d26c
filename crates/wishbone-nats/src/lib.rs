//! wishbone modules for NATS JetStream, in a crate of their own because
//! they bring the NATS client (`async-nats`) and what it depends on.
//!
//! - [`output`], `wishbone.output.nats`: publishes each event to a stream
//!   and counts it delivered when the stream's PubAck arrives. It is the
//!   shared output shell of `wishbone-modules` around a NATS transport.
//! - [`input`], `wishbone.input.nats`: a durable pull consumer on a stream.
//!   Each message becomes an event carrying an acknowledgement token, and
//!   is acked once the token is resolved downstream (nak'ed when it fails).
//!
//! `docs/scaling.md` shows how they carry a pipeline across hosts.

pub mod input;
pub mod output;

use std::path::Path;

use async_nats::ServerAddr;
use wishbone_output::tls::{self, TlsArguments};
use wishbone_runtime::{ArgumentError, ModuleKind};

/// The kinds this crate adds, for the one list of builtin modules.
pub const KINDS: [ModuleKind; 2] = [input::KIND, output::KIND];

fn default_servers() -> Vec<String> {
    vec!["nats://127.0.0.1:4222".to_string()]
}

/// The `servers` argument, each checked.
fn parse_servers(servers: &[String]) -> Result<Vec<ServerAddr>, ArgumentError> {
    if servers.is_empty() {
        return Err(ArgumentError::field(
            "servers",
            "must name at least one server",
        ));
    }
    servers
        .iter()
        .map(|server| {
            server.parse::<ServerAddr>().map_err(|error| {
                ArgumentError::value("servers", format!("`{server}` is not a NATS URL: {error}"))
            })
        })
        .collect()
}

/// The client side of `tls` for NATS. The client verifies each server
/// against the host of its URL and offers no other name, so `server_name`
/// is refused rather than ignored.
fn tls_config(arguments: &TlsArguments) -> Result<rustls::ClientConfig, ArgumentError> {
    if arguments.server_name.is_some() {
        return Err(ArgumentError::field(
            "tls.server_name",
            "is not taken by the NATS modules: each server's certificate must carry the host of its URL in `servers`",
        ));
    }
    tls::client_config(arguments)
}

/// Connects to one of `servers`; fails (for the shell's backoff) when none
/// answers, instead of retrying in the background.
async fn connect(
    servers: &[ServerAddr],
    credentials: Option<&Path>,
    tls: Option<&rustls::ClientConfig>,
) -> Result<async_nats::Client, String> {
    let mut options = async_nats::ConnectOptions::new();
    if let Some(config) = tls {
        options = options.require_tls(true).tls_client_config(config.clone());
    }
    if let Some(path) = credentials {
        options = options
            .credentials_file(path)
            .await
            .map_err(|error| format!("credentials {}: {error}", path.display()))?;
    }
    async_nats::connect_with_options(servers.to_vec(), options)
        .await
        .map_err(|error| error.to_string())
}

/// The `Nats-Msg-Id` of an event: a 128-bit hash of its payload, the same
/// whenever the same event is published again.
fn message_id(payload: &[u8]) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_payload_gets_the_same_id_and_another_one_another() {
        assert_eq!(message_id(b"line 1"), message_id(b"line 1"));
        assert_ne!(message_id(b"line 1"), message_id(b"line 2"));
        assert_eq!(message_id(b"").len(), 32);
    }

    #[test]
    fn tls_server_name_is_refused_not_ignored() {
        let arguments = TlsArguments {
            server_name: Some("backend".into()),
            ..TlsArguments::default()
        };
        let error = tls_config(&arguments).unwrap_err().to_string();
        assert!(error.contains("not taken by the NATS modules"), "{error}");
    }

    #[test]
    fn servers_must_be_nats_urls() {
        assert!(parse_servers(&default_servers()).is_ok());
        assert!(parse_servers(&[]).is_err());
        let error = parse_servers(&["http://[bad".to_string()]).unwrap_err();
        assert!(error.to_string().contains("is not a NATS URL"), "{error}");
    }
}
