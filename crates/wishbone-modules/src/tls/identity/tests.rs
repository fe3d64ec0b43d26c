use std::path::Path;
use std::time::Instant;

use super::{CHECK_EVERY, Identity};

/// A self-signed certificate for localhost: its PEM, its key's PEM, its DER.
fn generated() -> (String, String, Vec<u8>) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    (
        made.cert.pem(),
        made.signing_key.serialize_pem(),
        made.cert.der().to_vec(),
    )
}

/// Puts `contents` at `path` the way renewals do: a new file renamed over it.
fn replace(path: &Path, contents: &str) {
    let fresh = path.with_extension("new");
    std::fs::write(&fresh, contents).unwrap();
    std::fs::rename(&fresh, path).unwrap();
}

fn presented(identity: &Identity, at: Instant) -> Vec<u8> {
    identity.current_at(at).cert[0].to_vec()
}

#[test]
fn a_renewed_pair_is_presented_from_the_next_check_on() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let (first, first_key, first_der) = generated();
    replace(&cert, &first);
    replace(&key, &first_key);
    let identity = Identity::load(&cert, &key).unwrap();
    let start = Instant::now();
    assert_eq!(presented(&identity, start), first_der);
    let (second, second_key, second_der) = generated();
    replace(&cert, &second);
    replace(&key, &second_key);
    assert_eq!(
        presented(&identity, start),
        first_der,
        "the files are not looked at again within CHECK_EVERY"
    );
    assert_eq!(presented(&identity, start + CHECK_EVERY), second_der);
    assert_eq!(presented(&identity, start + CHECK_EVERY * 3), second_der);
}

#[test]
fn a_half_done_renewal_keeps_the_previous_pair_until_it_is_complete() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let (first, first_key, first_der) = generated();
    replace(&cert, &first);
    replace(&key, &first_key);
    let identity = Identity::load(&cert, &key).unwrap();
    let start = Instant::now();
    let (second, second_key, second_der) = generated();
    replace(&cert, &second);
    assert_eq!(
        presented(&identity, start + CHECK_EVERY),
        first_der,
        "a new certificate beside the old key is not used"
    );
    replace(&key, &second_key);
    assert_eq!(presented(&identity, start + CHECK_EVERY * 2), second_der);
}

#[test]
fn garbage_or_missing_files_keep_the_previous_pair() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let (first, first_key, first_der) = generated();
    replace(&cert, &first);
    replace(&key, &first_key);
    let identity = Identity::load(&cert, &key).unwrap();
    let start = Instant::now();
    replace(&cert, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n");
    assert_eq!(presented(&identity, start + CHECK_EVERY), first_der);
    std::fs::remove_file(&key).unwrap();
    assert_eq!(presented(&identity, start + CHECK_EVERY * 2), first_der);
    replace(&cert, &first);
    replace(&key, &first_key);
    assert_eq!(presented(&identity, start + CHECK_EVERY * 3), first_der);
}

#[test]
fn files_that_are_unusable_at_the_start_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let (first, _, _) = generated();
    let (_, other_key, _) = generated();
    replace(&cert, &first);
    replace(&key, &other_key);
    let error = Identity::load(&cert, &key).unwrap_err().to_string();
    assert!(error.contains("does not match the certificate"), "{error}");
}
