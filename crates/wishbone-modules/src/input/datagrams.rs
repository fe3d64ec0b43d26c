//! Datagrams read many at a time, for the UDP and unix datagram inputs:
//! one `recvmmsg` call takes up to [`SLOTS`] datagrams, each into a slot of
//! `max_datagram` bytes, and with `SO_RXQ_OVFL` the kernel says with each
//! datagram how many it dropped for want of room in the socket's receive
//! buffer, so that a UDP input counts its losses instead of guessing them.
//!
//! Written against `libc` rather than a crate: tokio's sockets read one
//! datagram per call, and the kernel's drop count is a control message
//! they do not expose.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use bytes::Bytes;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use wishbone_runtime::LinesBuilder;

/// Datagrams one call takes, at most.
pub const SLOTS: usize = 64;
/// `SO_MEMINFO`'s values (`SK_MEMINFO_VARS` in linux/sock_diag.h), and
/// where the drop count is among them (`SK_MEMINFO_DROPS`).
const MEMINFO_VARS: usize = 9;
const MEMINFO_DROPS: usize = 8;
/// Room for the control messages of one datagram (the drop count).
const CONTROL: usize = 64;

/// What one read brought.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// Datagrams longer than a slot, cut to it.
    pub truncated: u64,
    /// The kernel's count of datagrams it dropped on this socket since it
    /// was opened, if it said.
    pub kernel_drops: Option<u32>,
}

/// Buffers for reading datagrams into, kept from read to read.
pub struct Datagrams {
    slot: usize,
    buffer: Vec<u8>,
    control: Vec<u8>,
}

impl Datagrams {
    /// Room for [`SLOTS`] datagrams of up to `slot` bytes.
    pub fn new(slot: usize) -> Self {
        let slot = slot.max(1);
        Self {
            slot,
            buffer: vec![0; slot * SLOTS],
            control: vec![0; CONTROL * SLOTS],
        }
    }

    /// Waits until datagrams wait on `socket`, and reads as many as one
    /// call takes into `lines`, one event each (a trailing newline
    /// dropped).
    pub async fn receive<S: AsRawFd>(
        &mut self,
        socket: &AsyncFd<S>,
        lines: &mut LinesBuilder,
    ) -> io::Result<(usize, Received)> {
        loop {
            let mut guard = socket.ready(Interest::READABLE).await?;
            match guard.try_io(|socket| self.read(socket.get_ref().as_raw_fd(), lines)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// One `recvmmsg` without waiting: the datagrams read, or
    /// `WouldBlock`.
    pub fn read(&mut self, fd: RawFd, lines: &mut LinesBuilder) -> io::Result<(usize, Received)> {
        let slot = self.slot;
        let mut iovecs: Vec<libc::iovec> = self
            .buffer
            .chunks_exact_mut(slot)
            .map(|chunk| libc::iovec {
                iov_base: chunk.as_mut_ptr().cast(),
                iov_len: slot,
            })
            .collect();
        // SAFETY: an all-zero msghdr is a valid empty one.
        let mut headers: Vec<libc::mmsghdr> = (0..SLOTS)
            .map(|_| unsafe { std::mem::zeroed::<libc::mmsghdr>() })
            .collect();
        for (index, (header, iovec)) in headers.iter_mut().zip(iovecs.iter_mut()).enumerate() {
            header.msg_hdr.msg_iov = iovec;
            header.msg_hdr.msg_iovlen = 1;
            header.msg_hdr.msg_control = self.control[index * CONTROL..].as_mut_ptr().cast();
            header.msg_hdr.msg_controllen = CONTROL as _;
        }
        // SAFETY: every header points at an iovec and a control area that
        // live until the call returns, with their true lengths.
        let count = unsafe {
            libc::recvmmsg(
                fd,
                headers.as_mut_ptr(),
                SLOTS as _,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if count < 0 {
            return Err(io::Error::last_os_error());
        }
        let count = count as usize;
        let mut received = Received::default();
        for (index, header) in headers.iter().take(count).enumerate() {
            let length = (header.msg_len as usize).min(slot);
            if header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                received.truncated += 1;
            }
            let data = &self.buffer[index * slot..index * slot + length];
            lines.push(data.strip_suffix(b"\n").unwrap_or(data));
            if let Some(drops) = kernel_drops(&header.msg_hdr) {
                received.kernel_drops = Some(drops);
            }
        }
        Ok((count, received))
    }
}

/// The drop count in a datagram's control messages (`SO_RXQ_OVFL`).
fn kernel_drops(header: &libc::msghdr) -> Option<u32> {
    // SAFETY: the header's control area was filled by the kernel, and the
    // CMSG macros stay within `msg_controllen`.
    unsafe {
        let mut message = libc::CMSG_FIRSTHDR(header);
        while !message.is_null() {
            if (*message).cmsg_level == libc::SOL_SOCKET
                && (*message).cmsg_type == libc::SO_RXQ_OVFL
            {
                let data = libc::CMSG_DATA(message).cast::<u32>();
                return Some(data.read_unaligned());
            }
            message = libc::CMSG_NXTHDR(header, message);
        }
    }
    None
}

/// Asks the kernel to say, with each datagram, how many it dropped.
pub fn count_kernel_drops(socket: &socket2::Socket) -> io::Result<()> {
    set_int_option(socket, libc::SO_RXQ_OVFL, 1)
}

/// Sets the `SOL_SOCKET` option `name`, one that socket2 does not offer,
/// to `value`.
pub fn set_int_option(
    socket: &impl AsRawFd,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: a valid socket, and an int option of its size.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    match result {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// The kernel's count of datagrams dropped on `socket` so far
/// (`SO_MEMINFO`), for the totals at a stop.
pub fn kernel_drops_now(socket: &impl AsRawFd) -> io::Result<u32> {
    let mut meminfo = [0u32; MEMINFO_VARS];
    let mut length = std::mem::size_of_val(&meminfo) as libc::socklen_t;
    // SAFETY: a valid socket, and an array of the size the kernel fills.
    let result = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MEMINFO,
            meminfo.as_mut_ptr().cast(),
            &mut length,
        )
    };
    match result {
        0 => Ok(meminfo[MEMINFO_DROPS]),
        _ => Err(io::Error::last_os_error()),
    }
}

/// `socket` (non-blocking) registered with the runtime, to wait on.
pub fn registered(socket: socket2::Socket) -> io::Result<AsyncFd<socket2::Socket>> {
    // SAFETY: a `Socket` owns its descriptor and keeps it open and the same
    // until it is dropped, which the `AsyncFd` that owns it does last.
    unsafe { AsyncFd::register(socket) }.map_err(|error| io::Error::other(error.to_string()))
}

/// A builder for the events of one read.
pub fn lines_builder(slot: usize) -> LinesBuilder {
    LinesBuilder::new(Bytes::from_static(b"\n"), slot.min(64 * 1024) * 4, SLOTS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn many_datagrams_are_read_in_one_call_cut_to_the_slot() {
        let (sender, receiver) = UnixDatagram::pair().unwrap();
        receiver.set_nonblocking(true).unwrap();
        for text in ["one\n", "two", "", "a datagram longer than the slot"] {
            sender.send(text.as_bytes()).unwrap();
        }
        let mut datagrams = Datagrams::new(16);
        let mut lines = lines_builder(16);
        let (count, received) = datagrams.read(receiver.as_raw_fd(), &mut lines).unwrap();
        assert_eq!(count, 4);
        assert_eq!(received.truncated, 1);
        let lines = lines.finish();
        let texts: Vec<&[u8]> = lines.iter().collect();
        assert_eq!(texts, [&b"one"[..], b"two", b"", b"a datagram longe"]);
        let error = datagrams.read(receiver.as_raw_fd(), &mut lines_builder(16));
        assert_eq!(error.unwrap_err().kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn the_kernel_says_how_many_datagrams_it_dropped() {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        count_kernel_drops(&socket).unwrap();
        socket
            .bind(
                &"127.0.0.1:0"
                    .parse::<std::net::SocketAddr>()
                    .unwrap()
                    .into(),
            )
            .unwrap();
        socket.set_nonblocking(true).unwrap();
        let address = socket.local_addr().unwrap().as_socket().unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..200 {
            sender.send_to(&[b'x'; 1000], address).unwrap();
        }
        let mut datagrams = Datagrams::new(2048);
        let mut read = 0;
        while let Ok((count, received)) =
            datagrams.read(socket.as_raw_fd(), &mut lines_builder(2048))
        {
            assert_eq!(received.kernel_drops, None, "queued before the drops");
            read += count;
        }
        assert!(read > 0 && read < 200, "{read}");
        // The count comes with the next datagram queued after the drops.
        sender.send_to(b"after", address).unwrap();
        let (count, received) = datagrams
            .read(socket.as_raw_fd(), &mut lines_builder(2048))
            .unwrap();
        assert_eq!(count, 1);
        assert_eq!(received.kernel_drops, Some(200 - read as u32));
        assert_eq!(kernel_drops_now(&socket).unwrap(), 200 - read as u32);
    }
}
