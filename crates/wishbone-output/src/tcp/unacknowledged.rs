//! How many bytes written to a socket the peer has not acknowledged yet.

use std::os::fd::AsRawFd;

/// Bytes in the socket's send queue: not yet sent, or sent and not yet
/// acknowledged by the peer's TCP stack (Linux `SIOCOUTQ`).
#[cfg(target_os = "linux")]
pub fn unacknowledged_bytes(stream: &impl AsRawFd) -> std::io::Result<u64> {
    let mut queued: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int through the pointer, which
    // points at a live local; the descriptor is owned by `stream`, a TCP socket.
    let result = unsafe { libc::ioctl(stream.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
    if result < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(queued.max(0) as u64)
}

/// Elsewhere bytes count as delivered once written (documented in the docs).
#[cfg(not(target_os = "linux"))]
pub fn unacknowledged_bytes(_stream: &impl AsRawFd) -> std::io::Result<u64> {
    Ok(0)
}
