//! Giving freed memory back to the system, after a burst (thousands of
//! sessions that came and went) left the allocator holding pages it no
//! longer uses. Which call does that depends on the allocator the binary
//! installed, so the binary says ([`set_give_back`]); without it, glibc's
//! `malloc_trim` is used where there is glibc, and nothing elsewhere.

use std::sync::OnceLock;

static GIVE_BACK: OnceLock<fn()> = OnceLock::new();

/// Sets how [`give_back`] returns free memory, for a binary that installs
/// its own global allocator; the first call wins.
pub fn set_give_back(give_back: fn()) {
    let _ = GIVE_BACK.set(give_back);
}

/// Returns the allocator's free pages to the system, as well as the
/// installed allocator can.
pub fn give_back() {
    match GIVE_BACK.get() {
        Some(give_back) => give_back(),
        None => trim_glibc(),
    }
}

fn trim_glibc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
