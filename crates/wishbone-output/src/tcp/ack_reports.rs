//! Acknowledgements as they happen: the kernel reports when the peer's TCP
//! stack acknowledged the last byte of each write (Linux `SO_TIMESTAMPING`
//! with `SOF_TIMESTAMPING_TX_ACK`), on the socket's error queue.
//!
//! Polling `SIOCOUTQ` makes every acknowledgement wait for the next tick;
//! with few events allowed in flight (an output's window, a sender waiting
//! for its acknowledgements), that wait is the whole throughput. These
//! reports wake the output as soon as the peer acknowledged. Each carries
//! the offset of the last byte of one write, counted from when the option
//! was set (modulo 2^32), so the option is set right after connecting,
//! before the first write.
//! `SIOCOUTQ` stays the authority when a connection dies, and the fallback
//! where the option is refused.
//!
//! No crate offers this: it is one `setsockopt` and one `recvmsg` loop over
//! `libc`, kept here.

use std::os::fd::{AsRawFd, RawFd};

/// `SCM_TSTAMP_ACK`: the report kind for "the peer acknowledged".
const SCM_TSTAMP_ACK: u32 = 2;

/// Asks the kernel to report every acknowledgement of `socket`'s writes;
/// false where it refuses (then only `SIOCOUTQ` tells).
#[cfg(target_os = "linux")]
pub fn enable(socket: &impl AsRawFd) -> bool {
    let flags: libc::c_uint = libc::SOF_TIMESTAMPING_TX_ACK
        | libc::SOF_TIMESTAMPING_SOFTWARE
        | libc::SOF_TIMESTAMPING_OPT_ID
        | libc::SOF_TIMESTAMPING_OPT_TSONLY;
    // SAFETY: setsockopt reads one c_uint through a pointer to a live local.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPING,
            (&flags as *const libc::c_uint).cast(),
            std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
        )
    };
    result == 0
}

#[cfg(not(target_os = "linux"))]
pub fn enable(_socket: &impl AsRawFd) -> bool {
    false
}

/// Reads every report waiting on `socket`'s error queue and returns the
/// furthest acknowledged position, given that `written` bytes were written
/// since the option was set. Ends with `WouldBlock` once the queue is
/// empty (so the caller's readiness is cleared); `furthest` keeps what was
/// read before.
#[cfg(target_os = "linux")]
pub fn drain(socket: RawFd, written: u64, furthest: &mut Option<u64>) -> std::io::Result<()> {
    let mut control = [0u64; 64];
    loop {
        // SAFETY: a zeroed msghdr is valid; only the control buffer is set,
        // pointing at a live local of the given length.
        let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
        message.msg_control = control.as_mut_ptr().cast();
        message.msg_controllen = std::mem::size_of_val(&control) as _;
        // SAFETY: recvmsg writes at most msg_controllen bytes of control
        // data into `control`; no data buffers are given.
        let received = unsafe {
            libc::recvmsg(
                socket,
                &mut message,
                libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT,
            )
        };
        if received < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: the CMSG macros walk the control data recvmsg filled in,
        // bounded by msg_controllen.
        let mut header = unsafe { libc::CMSG_FIRSTHDR(&message) };
        while !header.is_null() {
            // SAFETY: `header` points at a complete control message header.
            let cmsg = unsafe { &*header };
            let is_error = (cmsg.cmsg_level == libc::SOL_IP && cmsg.cmsg_type == libc::IP_RECVERR)
                || (cmsg.cmsg_level == libc::SOL_IPV6 && cmsg.cmsg_type == libc::IPV6_RECVERR);
            if is_error {
                // SAFETY: an IP(V6)_RECVERR message carries a
                // sock_extended_err; read unaligned from its data.
                let report = unsafe {
                    std::ptr::read_unaligned(
                        libc::CMSG_DATA(header).cast::<libc::sock_extended_err>(),
                    )
                };
                if report.ee_origin == libc::SO_EE_ORIGIN_TIMESTAMPING
                    && report.ee_info == SCM_TSTAMP_ACK
                {
                    let position = widen(report.ee_data.wrapping_add(1), written);
                    *furthest = Some(furthest.map_or(position, |before| before.max(position)));
                }
            }
            // SAFETY: as above, bounded by msg_controllen.
            header = unsafe { libc::CMSG_NXTHDR(&message, header) };
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub fn drain(_socket: RawFd, _written: u64, _furthest: &mut Option<u64>) -> std::io::Result<()> {
    Err(std::io::ErrorKind::WouldBlock.into())
}

/// The full position whose low 32 bits are `low`, at or before `written`.
fn widen(low: u32, written: u64) -> u64 {
    let behind = (written as u32).wrapping_sub(low) as u64;
    written.saturating_sub(behind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn positions_are_widened_across_the_32_bit_wrap() {
        assert_eq!(widen(1000, 1000), 1000);
        assert_eq!(widen(999, 5000), 999);
        let written = (5u64 << 32) + 10;
        assert_eq!(widen(5, written), (5u64 << 32) + 5);
        assert_eq!(widen(u32::MAX - 1, written), (5u64 << 32) - 2);
    }

    #[test]
    fn each_write_is_reported_once_the_peer_acknowledged_it() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        assert!(enable(&client), "the kernel takes SO_TIMESTAMPING");
        let mut written = 0;
        for _ in 0..5 {
            client.write_all(&[b'x'; 1000]).unwrap();
            written += 1000;
        }
        let mut received = vec![0u8; 5000];
        server.read_exact(&mut received).unwrap();
        let mut furthest = None;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while furthest != Some(5000) {
            assert!(
                std::time::Instant::now() < deadline,
                "reports arrive: {furthest:?}"
            );
            let drained = drain(client.as_raw_fd(), written, &mut furthest);
            assert_eq!(drained.unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}
