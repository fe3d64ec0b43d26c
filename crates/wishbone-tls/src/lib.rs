//! The one `tls` argument shape every network input and output takes, and
//! the rustls configurations made from it.
//!
//! ```yaml
//! tls:
//!   cert: server.pem      # PEM certificate chain (required for inputs)
//!   key: server.key       # PEM private key matching it
//!   ca: ca.pem            # PEM roots to verify the peer (outputs: the system's by default)
//!   verify_peer: true     # inputs: require a client certificate signed by `ca` (mutual TLS)
//!   server_name: backend  # outputs: the name to verify (default: the host)
//! ```
//!
//! Files are read and checked when the module is built, so `wishbone
//! check` names a missing or unreadable file, or a key that does not match
//! its certificate, or an expired certificate, and exits 2. This side's
//! `cert` and `key` are read again when they change (`identity.rs`); `ca`
//! is read again on a restart.

mod identity;
mod socket;

use identity::Identity;
pub use socket::Socket;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::client::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use wishbone_runtime::ArgumentError;

/// What `show --docs` of each module with TLS says of it, for `concat!`.
#[macro_export]
macro_rules! tls_arguments_docs {
    () => {
        "  tls                TLS on the connection (none: plain TCP), with
                     cert, key  PEM certificate chain and private key,
                                read again when they change (new
                                connections use the renewed pair)
                     ca         PEM roots that verify the peer (outputs: the
                                system's roots when absent)
                     verify_peer  inputs: require client certificates
                                signed by `ca` (mutual TLS)
                     server_name  outputs: the name the peer's certificate
                                must carry (default: host)
"
    };
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsArguments {
    /// PEM certificate chain, this side's.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// PEM private key matching `cert`.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// PEM roots to verify the peer with.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Inputs: require and verify client certificates.
    #[serde(default)]
    pub verify_peer: bool,
    /// Outputs: the name to verify.
    #[serde(default)]
    pub server_name: Option<String>,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn problem(what: &str, path: &Path, why: impl std::fmt::Display) -> ArgumentError {
    ArgumentError::field(format!("tls.{what}"), format!("{}: {why}", path.display()))
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, ArgumentError> {
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|error| problem("cert", path, error))?
        .collect::<Result<_, _>>()
        .map_err(|error| problem("cert", path, error))?;
    if certificates.is_empty() {
        return Err(problem("cert", path, "holds no PEM certificate"));
    }
    Ok(certificates)
}

/// Refuses a certificate chain whose first certificate has expired (or is
/// not valid yet): every handshake would fail.
fn valid_now(chain: &[CertificateDer<'_>], path: &Path) -> Result<(), ArgumentError> {
    let Some(first) = chain.first() else {
        return Ok(());
    };
    let (_, certificate) = x509_parser::parse_x509_certificate(first).map_err(|error| {
        problem(
            "cert",
            path,
            format!("is not an X.509 certificate: {error}"),
        )
    })?;
    let validity = certificate.validity();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64);
    if validity.not_after.timestamp() < now {
        return Err(problem(
            "cert",
            path,
            format!("expired on {}", validity.not_after),
        ));
    }
    if validity.not_before.timestamp() > now {
        return Err(problem(
            "cert",
            path,
            format!("is not valid before {}", validity.not_before),
        ));
    }
    Ok(())
}

fn roots(path: Option<&Path>) -> Result<rustls::RootCertStore, ArgumentError> {
    let mut roots = rustls::RootCertStore::empty();
    match path {
        Some(path) => {
            for certificate in certificates(path)
                .map_err(|_| problem("ca", path, "holds no readable PEM certificate"))?
            {
                roots
                    .add(certificate)
                    .map_err(|error| problem("ca", path, error))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for certificate in found.certs {
                let _ = roots.add(certificate);
            }
        }
    }
    Ok(roots)
}

/// This side's certificate and key, when given, read again as they change.
fn identity(arguments: &TlsArguments) -> Result<Option<Identity>, ArgumentError> {
    match (&arguments.cert, &arguments.key) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => Identity::load(cert, key).map(Some),
        _ => Err(ArgumentError::field(
            "tls.cert",
            "and `tls.key` go together",
        )),
    }
}

/// The acceptor of an input.
pub fn acceptor(arguments: &TlsArguments) -> Result<TlsAcceptor, ArgumentError> {
    if arguments.server_name.is_some() {
        return Err(ArgumentError::field(
            "tls.server_name",
            "names what an output verifies; an input presents its `cert`",
        ));
    }
    let identity = identity(arguments)?
        .ok_or_else(|| ArgumentError::field("tls", "on an input needs `cert` and `key`"))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| ArgumentError::value("tls", error.to_string()))?;
    let builder = if arguments.verify_peer {
        let ca = arguments
            .ca
            .as_deref()
            .ok_or_else(|| ArgumentError::field("tls.verify_peer", "needs `tls.ca`"))?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots(Some(ca))?),
            provider(),
        )
        .build()
        .map_err(|error| ArgumentError::value("tls.ca", error.to_string()))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let config = builder.with_cert_resolver(Arc::new(identity));
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The client side's configuration: roots to verify the server with, and
/// this side's certificate when given (for a server that asks).
pub fn client_config(arguments: &TlsArguments) -> Result<rustls::ClientConfig, ArgumentError> {
    if arguments.verify_peer {
        return Err(ArgumentError::field(
            "tls.verify_peer",
            "is for inputs: an output always verifies its server, with `ca` or the system's roots",
        ));
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| ArgumentError::value("tls", error.to_string()))?
        .with_root_certificates(roots(arguments.ca.as_deref())?);
    Ok(match identity(arguments)? {
        Some(identity) => builder.with_client_cert_resolver(Arc::new(identity)),
        None => builder.with_no_client_auth(),
    })
}

/// The client side of an output reaching `host`: its configuration, and
/// the name the server's certificate must carry.
pub fn connector(arguments: &TlsArguments, host: &str) -> Result<Connector, ArgumentError> {
    let name = arguments.server_name.as_deref().unwrap_or(host);
    let server_name = ServerName::try_from(name.to_string()).map_err(|_| {
        ArgumentError::value("tls.server_name", format!("`{name}` is not a host name"))
    })?;
    let config = client_config(arguments)?;
    Ok(Connector {
        connector: TlsConnector::from(Arc::new(config)),
        server_name,
    })
}

/// How an output opens TLS over a connection it made: see [`connector`].
#[derive(Clone)]
pub struct Connector {
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

impl Connector {
    /// The handshake over `stream`; a failure says so, with its reason
    /// (an unknown issuer, a name the certificate does not carry, ...).
    pub async fn connect<S>(&self, stream: S) -> Result<TlsStream<S>, String>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.connector
            .connect(self.server_name.clone(), stream)
            .await
            .map_err(|error| format!("TLS handshake failed: {error}"))
    }
}

#[cfg(test)]
mod tests;
