//! SIGHUP as "reopen your files": besides reloading the bootstrap file, a
//! SIGHUP counts here, and a module that writes files (logrotate's
//! `postrotate` sends one after renaming them) reopens each file before
//! its next write once the count moved.

use std::sync::atomic::{AtomicU64, Ordering};

static REQUESTS: AtomicU64 = AtomicU64::new(0);

/// How many reopens were asked for since the process started: a module
/// keeps the value it last saw and reopens its files when it changes.
pub fn requests() -> u64 {
    REQUESTS.load(Ordering::Relaxed)
}

/// Asks every module that writes files to reopen them (on SIGHUP).
pub fn request() {
    REQUESTS.fetch_add(1, Ordering::Relaxed);
}
