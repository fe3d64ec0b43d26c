//! Who may POST: a bearer token, or users with bcrypt password hashes (an
//! `htpasswd -B` file). Either file is read when the bootstrap is loaded.
//! A token is compared in constant time; a password is checked against
//! its hash once, then remembered (as a SHA-256 of what the client sent,
//! a few hundred at most), since bcrypt takes tens of milliseconds on
//! purpose and a client sends its credentials with every request. The
//! check runs on a blocking thread, so wrong passwords sent in a flood
//! hold up no module.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The `auth` argument.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// A file holding the one token clients send as `Authorization:
    /// Bearer TOKEN` (surrounding white space ignored).
    pub bearer_token_file: Option<PathBuf>,
    /// A file of `user:bcrypt-hash` lines (`htpasswd -B`), for
    /// `Authorization: Basic`.
    pub basic_users_file: Option<PathBuf>,
}

/// Verified credentials remembered, at most.
const REMEMBERED: usize = 256;

/// What a request must carry.
#[derive(Debug)]
pub enum Auth {
    /// The token's bytes.
    Bearer(Vec<u8>),
    /// Users with bcrypt hashes.
    Basic {
        /// Each user's bcrypt hash.
        users: HashMap<String, String>,
        /// SHA-256 digests of the `Basic` values already verified.
        verified: Mutex<HashSet<[u8; 32]>>,
    },
}

/// The digests verified so far, locked (clients are served on several
/// threads); a panic while it was held left at worst a digest missing.
fn remembered(verified: &Mutex<HashSet<[u8; 32]>>) -> MutexGuard<'_, HashSet<[u8; 32]>> {
    verified
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Auth {
    /// Reads the file `config` names; the problem, as `check` says it.
    pub fn load(config: &AuthConfig) -> Result<Auth, String> {
        match (&config.bearer_token_file, &config.basic_users_file) {
            (Some(path), None) => {
                let token = read(path)?.trim().as_bytes().to_vec();
                if token.is_empty() {
                    return Err(format!("{}: the token file is empty", path.display()));
                }
                Ok(Auth::Bearer(token))
            }
            (None, Some(path)) => Ok(Auth::Basic {
                users: users(path, &read(path)?)?,
                verified: Mutex::default(),
            }),
            _ => Err("takes one of `bearer_token_file` and `basic_users_file`".into()),
        }
    }

    /// The `WWW-Authenticate` value of a refusal.
    pub fn challenge(&self) -> &'static str {
        match self {
            Auth::Bearer(_) => "Bearer",
            Auth::Basic { .. } => "Basic realm=\"wishbone\"",
        }
    }

    /// Whether an `Authorization` header value lets the request in.
    pub async fn admits(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        match self {
            Auth::Bearer(token) => value
                .strip_prefix(b"Bearer ")
                .is_some_and(|sent| bool::from(sent.trim_ascii().ct_eq(token))),
            Auth::Basic { users, verified } => {
                let Some(encoded) = value.strip_prefix(b"Basic ") else {
                    return false;
                };
                let digest: [u8; 32] = Sha256::digest(encoded.trim_ascii()).into();
                if remembered(verified).contains(&digest) {
                    return true;
                }
                let Some((password, hash)) = basic(users, encoded.trim_ascii()) else {
                    return false;
                };
                let admitted = tokio::task::spawn_blocking(move || {
                    bcrypt::verify(password, &hash).unwrap_or(false)
                })
                .await
                .unwrap_or(false);
                if admitted {
                    let mut verified = remembered(verified);
                    if verified.len() >= REMEMBERED {
                        verified.clear();
                    }
                    verified.insert(digest);
                }
                admitted
            }
        }
    }
}

/// The password of base64 `user:password` and the user's hash, when the
/// user is known.
fn basic(users: &HashMap<String, String>, encoded: &[u8]) -> Option<(String, String)> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((password.to_string(), users.get(user)?.clone()))
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))
}

/// The users of an `htpasswd -B` file.
fn users(path: &Path, text: &str) -> Result<HashMap<String, String>, String> {
    let mut users = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let place = || format!("{} line {}", path.display(), index + 1);
        let Some((user, hash)) = line.split_once(':') else {
            return Err(format!("{}: not `user:hash`", place()));
        };
        if !hash.starts_with("$2") {
            return Err(format!(
                "{}: the hash of `{user}` is not bcrypt (`htpasswd -B` makes one)",
                place()
            ));
        }
        users.insert(user.to_string(), hash.to_string());
    }
    if users.is_empty() {
        return Err(format!("{}: no users", path.display()));
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic_header(user: &str, password: &str) -> Vec<u8> {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {encoded}").into_bytes()
    }

    #[tokio::test]
    async fn a_bearer_token_is_the_whole_token_or_nothing() {
        let auth = Auth::Bearer(b"s3cret".to_vec());
        assert!(auth.admits(Some(b"Bearer s3cret")).await);
        for refused in [
            &b"Bearer s3cre"[..],
            b"Bearer s3cret2",
            b"bearer s3cret",
            b"s3cret",
            b"",
        ] {
            assert!(!auth.admits(Some(refused)).await, "{refused:?}");
        }
        assert!(!auth.admits(None).await);
    }

    #[tokio::test]
    async fn basic_users_are_checked_against_their_bcrypt_hash_and_remembered() {
        let hash = bcrypt::hash("pass word", 4).unwrap();
        let dir = std::env::temp_dir().join(format!("wishbone-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("users");
        std::fs::write(&file, format!("# users\nalice:{hash}\n")).unwrap();
        let auth = Auth::load(&AuthConfig {
            bearer_token_file: None,
            basic_users_file: Some(file.clone()),
        })
        .unwrap();
        assert!(auth.admits(Some(&basic_header("alice", "pass word"))).await);
        assert!(
            auth.admits(Some(&basic_header("alice", "pass word"))).await,
            "remembered"
        );
        assert!(!auth.admits(Some(&basic_header("alice", "password"))).await);
        assert!(!auth.admits(Some(&basic_header("bob", "pass word"))).await);
        assert!(!auth.admits(Some(b"Basic !!!")).await);
        std::fs::write(&file, "alice:plain\n").unwrap();
        let refused = Auth::load(&AuthConfig {
            bearer_token_file: None,
            basic_users_file: Some(file),
        })
        .unwrap_err();
        assert!(refused.contains("not bcrypt"), "{refused}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
