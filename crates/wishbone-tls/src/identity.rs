//! This side's certificate and key, read again when their files change: a
//! renewed certificate serves the next handshake, without a restart.
//!
//! The files are looked at, at most once every [`CHECK_EVERY`], by the
//! handshake that needs them. A change is read whole and checked as at the
//! start (a chain, a key that matches it, a date within its validity);
//! files that fail the check are logged and the previous certificate stays
//! in use until they change again, so a renewal caught half written
//! (a new certificate beside the old key) is picked up once it is
//! complete.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::SignatureScheme;
use rustls::client::ResolvesClientCert;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use wishbone_runtime::ArgumentError;

use super::{certificates, problem, provider, valid_now};

/// How often, at most, the files are looked at.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// A certificate chain and its key, from two files, kept current.
pub struct Identity {
    cert: PathBuf,
    key: PathBuf,
    state: Mutex<State>,
}

struct State {
    current: Arc<CertifiedKey>,
    /// The files as they were when last read, whether they were used or not.
    stamps: Stamps,
    checked: Instant,
}

/// What tells that a file changed: a write, or another file renamed over it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

type Stamps = [Option<Stamp>; 2];

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: metadata.modified().ok(),
        len: metadata.len(),
        inode: metadata.ino(),
    })
}

/// Reads and checks a chain and its key.
fn read(cert: &Path, key: &Path) -> Result<CertifiedKey, ArgumentError> {
    let chain = certificates(cert)?;
    valid_now(&chain, cert)?;
    let private = PrivateKeyDer::from_pem_file(key).map_err(|error| problem("key", key, error))?;
    let signing = provider()
        .key_provider
        .load_private_key(private)
        .map_err(|error| problem("key", key, error))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|_| {
        problem(
            "key",
            key,
            format!("does not match the certificate in {}", cert.display()),
        )
    })?;
    Ok(certified)
}

impl Identity {
    /// Reads `cert` and `key`, which must be usable now.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, ArgumentError> {
        let stamps = [stamp(cert), stamp(key)];
        let current = Arc::new(read(cert, key)?);
        Ok(Self {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            state: Mutex::new(State {
                current,
                stamps,
                checked: Instant::now(),
            }),
        })
    }

    /// The certificate and key to present at `now`.
    pub fn current_at(&self, now: Instant) -> Arc<CertifiedKey> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if now.saturating_duration_since(state.checked) >= CHECK_EVERY {
            state.checked = now;
            self.refresh(&mut state);
        }
        state.current.clone()
    }

    fn refresh(&self, state: &mut State) {
        let stamps = [stamp(&self.cert), stamp(&self.key)];
        if stamps == state.stamps {
            return;
        }
        state.stamps = stamps;
        match read(&self.cert, &self.key) {
            Ok(renewed) => {
                state.current = Arc::new(renewed);
                tracing::info!(cert = %self.cert.display(), "read the renewed TLS certificate; new handshakes use it");
            }
            Err(error) => {
                tracing::warn!(cert = %self.cert.display(), %error, "the TLS certificate files changed and cannot be used; the previous certificate stays in use");
            }
        }
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Identity")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for Identity {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current_at(Instant::now()))
    }
}

impl ResolvesClientCert for Identity {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _schemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.current_at(Instant::now()))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests;
