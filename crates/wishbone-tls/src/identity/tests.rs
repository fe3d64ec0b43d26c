use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{CHECK_EVERY, Identity};

/// A self-signed certificate for localhost, its key, in PEM, and its DER.
struct Pair {
    cert: String,
    key: String,
    der: Vec<u8>,
}

fn generated() -> Pair {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    Pair {
        cert: made.cert.pem(),
        key: made.signing_key.serialize_pem(),
        der: made.cert.der().to_vec(),
    }
}

/// Puts `contents` at `path` the way renewals do: a new file renamed over it.
fn replace(path: &Path, contents: &str) {
    let fresh = path.with_extension("new");
    std::fs::write(&fresh, contents).unwrap();
    std::fs::rename(&fresh, path).unwrap();
}

/// An identity loaded from files of its own, and the pair it was loaded with.
struct Served {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
    identity: Identity,
    first: Pair,
    start: Instant,
}

impl Served {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let first = generated();
        replace(&cert, &first.cert);
        replace(&key, &first.key);
        let identity = Identity::load(&cert, &key).unwrap();
        Self {
            _dir: dir,
            cert,
            key,
            identity,
            first,
            start: Instant::now(),
        }
    }

    /// The certificate presented `checks` times CHECK_EVERY after loading.
    fn presented(&self, checks: u32) -> Vec<u8> {
        let at = self.start + CHECK_EVERY * checks;
        self.identity.current_at(at).cert[0].to_vec()
    }
}

#[test]
fn a_renewed_pair_is_presented_from_the_next_check_on() {
    let served = Served::new();
    assert_eq!(served.presented(0), served.first.der);
    let second = generated();
    replace(&served.cert, &second.cert);
    replace(&served.key, &second.key);
    assert_eq!(
        served.presented(0),
        served.first.der,
        "the files are not looked at again within CHECK_EVERY"
    );
    assert_eq!(served.presented(1), second.der);
    assert_eq!(served.presented(3), second.der);
}

#[test]
fn a_half_done_renewal_keeps_the_previous_pair_until_it_is_complete() {
    let served = Served::new();
    let second = generated();
    replace(&served.cert, &second.cert);
    assert_eq!(
        served.presented(1),
        served.first.der,
        "a new certificate beside the old key is not used"
    );
    replace(&served.key, &second.key);
    assert_eq!(served.presented(2), second.der);
}

#[test]
fn garbage_or_missing_files_keep_the_previous_pair() {
    let served = Served::new();
    replace(
        &served.cert,
        "-----BEGIN CERTIFICATE-----\nnot base64 at all\n",
    );
    assert_eq!(served.presented(1), served.first.der);
    std::fs::remove_file(&served.key).unwrap();
    assert_eq!(served.presented(2), served.first.der);
    replace(&served.cert, &served.first.cert);
    replace(&served.key, &served.first.key);
    assert_eq!(served.presented(3), served.first.der);
}

#[test]
fn files_that_are_unusable_at_the_start_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    replace(&cert, &generated().cert);
    replace(&key, &generated().key);
    let error = Identity::load(&cert, &key).unwrap_err().to_string();
    assert!(error.contains("does not match the certificate"), "{error}");
}
