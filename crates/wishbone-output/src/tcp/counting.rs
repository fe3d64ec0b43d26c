//! A TCP stream for a protocol library that wants an `AsyncRead +
//! AsyncWrite` (TLS, a websocket): it counts every byte written, so each
//! frame's end is known as a position in the stream, and it learns the
//! peer's acknowledgements as they happen ([`Progress`]).
//!
//! With acknowledgement reports on ([`ack_reports`]), the socket is
//! registered for reading and for its error queue only. Tokio takes a
//! socket with pending error-queue reports for a closed writer and would
//! report it writable for good; so a write that finds the send buffer full
//! waits for the next report instead (an acknowledgement is what frees
//! room, and a full buffer means one is due), reading the reports as it
//! goes. Without reports it is an ordinary registered socket.

use std::future::Future;
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

use super::{ack_reports, kernel_acknowledged, settle};

type RoomWait = Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>>;

/// A connected socket that counts what it writes.
pub struct CountingSocket {
    socket: Arc<AsyncFd<std::net::TcpStream>>,
    /// Bytes written since the connection began.
    written: Arc<AtomicU64>,
    /// The furthest position the peer's reports acknowledged.
    acknowledged: Arc<AtomicU64>,
    reports: bool,
    /// A write waiting for room.
    waiting: Option<RoomWait>,
}

/// What the owner of the connection keeps to follow it while a protocol
/// library owns the [`CountingSocket`] itself.
#[derive(Clone)]
pub struct Progress {
    socket: Arc<AsyncFd<std::net::TcpStream>>,
    written: Arc<AtomicU64>,
    acknowledged: Arc<AtomicU64>,
    /// Whether the kernel reports acknowledgements as they happen.
    pub reports: bool,
}

impl CountingSocket {
    /// Takes over a connected socket, turning acknowledgement reports on
    /// where the system offers them (before anything is written).
    pub fn new(stream: tokio::net::TcpStream) -> std::io::Result<Self> {
        let stream = stream.into_std()?;
        let reports = ack_reports::enable(&stream);
        let interest = if reports {
            Interest::READABLE | Interest::ERROR
        } else {
            Interest::READABLE | Interest::WRITABLE
        };
        // SAFETY: a std TcpStream owns its descriptor, keeps it open and
        // returns the same one until it is dropped with the AsyncFd.
        let socket = unsafe { AsyncFd::register_with_interest(stream, interest) }
            .map_err(std::io::Error::from)?;
        Ok(Self {
            socket: Arc::new(socket),
            written: Arc::new(AtomicU64::new(0)),
            acknowledged: Arc::new(AtomicU64::new(0)),
            reports,
            waiting: None,
        })
    }

    /// A handle to follow what is written and acknowledged.
    pub fn progress(&self) -> Progress {
        Progress {
            socket: self.socket.clone(),
            written: self.written.clone(),
            acknowledged: self.acknowledged.clone(),
            reports: self.reports,
        }
    }
}

impl Progress {
    /// Bytes written so far.
    #[inline]
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// The furthest position acknowledged in the reports read so far.
    #[inline]
    pub fn acknowledged(&self) -> u64 {
        self.acknowledged.load(Ordering::Relaxed)
    }

    /// Waits for reports and reads them: how far they say the peer
    /// acknowledged. Without reports, waits for ever. Cancel-safe; an error
    /// is the connection's.
    pub async fn reported(&self) -> Result<u64, String> {
        if !self.reports {
            return std::future::pending().await;
        }
        let mut guard = self
            .socket
            .ready(Interest::ERROR)
            .await
            .map_err(|error| error.to_string())?;
        read_reports(&mut guard, &self.written, &self.acknowledged);
        Ok(self.acknowledged())
    }

    /// How far the peer acknowledged, as known without waiting: from the
    /// reports read so far, or by asking the kernel.
    #[inline]
    pub fn acknowledged_now(&self) -> Option<u64> {
        if self.reports {
            Some(self.acknowledged())
        } else {
            self.kernel_count()
        }
    }

    /// How far the peer acknowledged, by the kernel's count (`SIOCOUTQ`):
    /// the safety net should reports stop coming, and the authority once
    /// the connection is over.
    pub fn kernel_count(&self) -> Option<u64> {
        kernel_acknowledged(self, self.written()).ok()
    }

    /// The end of a connection: what the peer acknowledged before it still
    /// counts (after waiting for the kernel's count to settle, when the
    /// connection died).
    pub async fn finish(&self, lost: bool) -> Option<u64> {
        if lost {
            settle(self).await;
        }
        self.kernel_count()
    }
}

impl AsRawFd for Progress {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

/// Reads every waiting report into `acknowledged`, clearing the readiness.
#[inline]
fn read_reports(
    guard: &mut tokio::io::unix::AsyncFdReadyGuard<'_, std::net::TcpStream>,
    written: &AtomicU64,
    acknowledged: &AtomicU64,
) {
    let mut furthest = None;
    let written = written.load(Ordering::Relaxed);
    let _ = guard.try_io(|socket| ack_reports::drain(socket.as_raw_fd(), written, &mut furthest));
    if let Some(position) = furthest {
        acknowledged.fetch_max(position, Ordering::Relaxed);
    }
}

impl AsyncRead for CountingSocket {
    #[inline]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            let mut guard = ready!(self.socket.poll_read_ready(cx))?;
            // Read into the buffer's uninitialised part: zeroing it first
            // (the library's read buffer is large) cost more than the read.
            // SAFETY: nothing uninitialised is read from `unfilled`; only
            // the kernel writes into it.
            let unfilled = unsafe { buf.unfilled_mut() };
            let read = guard.try_io(|socket| {
                // SAFETY: read(2) writes at most `unfilled.len()` bytes
                // into memory this slice owns.
                let read = unsafe {
                    libc::read(
                        socket.as_raw_fd(),
                        unfilled.as_mut_ptr().cast(),
                        unfilled.len(),
                    )
                };
                usize::try_from(read).map_err(|_| std::io::Error::last_os_error())
            });
            match read {
                Ok(Ok(read)) => {
                    // SAFETY: the kernel initialised the first `read` bytes.
                    unsafe { buf.assume_init(read) };
                    buf.advance(read);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(error)) => return Poll::Ready(Err(error)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for CountingSocket {
    #[inline]
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        loop {
            if let Some(waiting) = &mut self.waiting {
                let waited = ready!(waiting.as_mut().poll(cx));
                self.waiting = None;
                waited?;
            }
            if !self.reports {
                let mut guard = ready!(self.socket.poll_write_ready(cx))?;
                match guard.try_io(|socket| socket.get_ref().write(buf)) {
                    Ok(result) => return Poll::Ready(self.count(result)),
                    Err(_would_block) => continue,
                }
            }
            match self.socket.get_ref().write(buf) {
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    let (socket, written, acknowledged) = (
                        self.socket.clone(),
                        self.written.clone(),
                        self.acknowledged.clone(),
                    );
                    self.waiting = Some(Box::pin(async move {
                        let mut guard = socket.ready(Interest::ERROR).await?;
                        read_reports(&mut guard, &written, &acknowledged);
                        Ok(())
                    }));
                }
                result => return Poll::Ready(self.count(result)),
            }
        }
    }

    #[inline]
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(self.socket.get_ref().shutdown(std::net::Shutdown::Write))
    }
}

impl CountingSocket {
    #[inline]
    fn count(&self, result: std::io::Result<usize>) -> std::io::Result<usize> {
        if let Ok(written) = &result {
            self.written.fetch_add(*written as u64, Ordering::Relaxed);
        }
        result
    }
}
