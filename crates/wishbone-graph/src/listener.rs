//! A listener that holds at most [`MAX_CONNECTIONS`] connections. When
//! they are all taken and another client comes, the idlest connection (the
//! one that has waited longest without sending a byte of a request; one
//! that never had an answer before a client's kept-alive one) is closed
//! to make room, as the listening inputs evict their idlest client:
//! silent clients cannot keep a scrape waiting. With no idle connection
//! the new client waits until one closes. A connection that leaves a
//! request unsent or unfinished for [`REQUEST_TIMEOUT`] (counted from the
//! connection, or from the last bytes of the previous answer) is closed
//! too.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 64;

/// How long a client may take to send a whole request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// A listener for `axum::serve` that holds at most a given number of
/// connections, makes room for a new client by closing the idlest one, and
/// closes those that send no whole request in time (the live page's, and
/// the Prometheus page's).
pub struct Bounded {
    listener: TcpListener,
    room: Arc<Semaphore>,
    /// Every connection held, to find the idlest.
    held: Arc<Mutex<Vec<Arc<Presence>>>>,
    /// Connections closed for [`REQUEST_TIMEOUT`].
    timed_out: Arc<AtomicU64>,
    /// Connections closed to make room.
    evicted: Arc<AtomicU64>,
    /// A client taken while every place was held, waiting for one.
    waiting: Option<(TcpStream, std::net::SocketAddr)>,
}

/// What the listener knows of one connection it holds.
#[derive(Default)]
struct Presence {
    /// Since when it waits for a request of which no byte came yet; none
    /// while a request is read or answered.
    idle_since: Mutex<Option<Instant>>,
    /// Set once it was answered: a client's kept-alive connection, spared
    /// while any connection that never sent a whole request is idle.
    served: AtomicBool,
    /// Set to close it; its reader is woken.
    evicted: AtomicBool,
    waker: AtomicWaker,
}

impl Presence {
    fn idle_since(&self) -> Option<Instant> {
        *self
            .idle_since
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn set_idle(&self, since: Option<Instant>) {
        *self
            .idle_since
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = since;
    }
}

impl Bounded {
    /// A listener holding at most `connections` connections at once.
    pub fn new(listener: TcpListener, connections: usize) -> Self {
        Self {
            listener,
            room: Arc::new(Semaphore::new(connections)),
            held: Arc::default(),
            timed_out: Arc::default(),
            evicted: Arc::default(),
            waiting: None,
        }
    }

    /// Closes the connection idle longest, if any is idle; true if one was.
    fn evict_idlest(&self) -> bool {
        let held = self
            .held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let idlest = held
            .iter()
            .filter(|presence| !presence.evicted.load(Ordering::Acquire))
            .filter_map(|presence| {
                let served = presence.served.load(Ordering::Acquire);
                presence
                    .idle_since()
                    .map(|since| ((served, since), presence))
            })
            .min_by_key(|(order, _)| *order);
        let Some((_, presence)) = idlest else {
            return false;
        };
        presence.evicted.store(true, Ordering::Release);
        presence.waker.wake();
        let count = self.evicted.fetch_add(1, Ordering::Relaxed) + 1;
        if count == 1 || count.is_multiple_of(100) {
            tracing::warn!(
                closed = count,
                "graph page: every connection taken; closed the idlest to make room"
            );
        }
        true
    }

    async fn accept_one(&self) -> (TcpStream, std::net::SocketAddr) {
        loop {
            match self.listener.accept().await {
                Ok(accepted) => return accepted,
                // Out of descriptors or memory: wait rather than spin.
                Err(error) => {
                    tracing::warn!(%error, "graph page: cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// A connection and its place among the [`MAX_CONNECTIONS`].
pub struct Held {
    stream: TcpStream,
    _place: OwnedSemaphorePermit,
    presence: Arc<Presence>,
    held: Arc<Mutex<Vec<Arc<Presence>>>>,
    /// When the request being read is due, once reading began after the
    /// last write.
    due: Pin<Box<Sleep>>,
    reading: bool,
    /// Whether a byte of the request being read came.
    heard: bool,
    timed_out: Arc<AtomicU64>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .retain(|presence| !Arc::ptr_eq(presence, &self.presence));
    }
}

impl axum::serve::Listener for Bounded {
    type Io = Held;
    type Addr = std::net::SocketAddr;

    /// Cancelled, it loses nothing: a client taken while full waits in
    /// `self.waiting` for the next call.
    async fn accept(&mut self) -> (Held, std::net::SocketAddr) {
        if self.waiting.is_none() {
            match self.room.clone().try_acquire_owned() {
                Ok(place) => {
                    let (stream, address) = self.accept_one().await;
                    return (self.hold(stream, place), address);
                }
                Err(_) => {
                    // Full: take the next client, and make room for it by
                    // closing the idlest connection; with none idle, it
                    // waits for one to close.
                    self.waiting = Some(self.accept_one().await);
                }
            }
        }
        // One connection is closed for the client that waits: the idlest
        // now, or the first found idle (a connection is idle once it was
        // read and had nothing).
        let mut evicted = false;
        let place = loop {
            if !evicted {
                evicted = self.evict_idlest();
            }
            tokio::select! {
                place = self.room.clone().acquire_owned() => {
                    break place.expect("the semaphore is never closed");
                }
                () = tokio::time::sleep(Duration::from_millis(10)), if !evicted => {}
            }
        };
        let (stream, address) = self.waiting.take().expect("a client waits");
        (self.hold(stream, place), address)
    }

    fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }
}

impl Bounded {
    fn hold(&self, stream: TcpStream, place: OwnedSemaphorePermit) -> Held {
        let presence = Arc::new(Presence::default());
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(presence.clone());
        Held {
            stream,
            _place: place,
            presence,
            held: self.held.clone(),
            due: Box::pin(tokio::time::sleep(REQUEST_TIMEOUT)),
            reading: false,
            heard: false,
            timed_out: self.timed_out.clone(),
        }
    }
}

impl AsyncRead for Held {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.presence.waker.register(cx.waker());
        if self.presence.evicted.load(Ordering::Acquire) {
            return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()));
        }
        if !self.reading {
            self.reading = true;
            self.heard = false;
            self.due.as_mut().reset(Instant::now() + REQUEST_TIMEOUT);
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.heard = true;
            self.presence.set_idle(None);
        } else if read.is_pending() && !self.heard && self.presence.idle_since().is_none() {
            // Idle from the moment it was found with nothing to read, not
            // from its accept: a client whose request waits in the socket
            // before its first read is never taken for an idle one.
            self.presence.set_idle(Some(Instant::now()));
        }
        if read.is_pending() && self.due.as_mut().poll(cx).is_ready() {
            let count = self.timed_out.fetch_add(1, Ordering::Relaxed) + 1;
            if count == 1 || count.is_multiple_of(100) {
                tracing::warn!(timeout = ?REQUEST_TIMEOUT, closed = count, "graph page: closed a connection that sent no whole request in time");
            }
            return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
        }
        read
    }
}

impl AsyncWrite for Held {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.reading = false;
        self.presence.served.store(true, Ordering::Release);
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::serve::Listener;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_new_client_of_a_full_listener_closes_the_idlest() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut bounded = Bounded::new(listener, 2);
        let _silent_1 = TcpStream::connect(address).await.unwrap();
        let (mut first, _) = bounded.accept().await;
        // Read, and found with nothing: idle from now.
        let mut nothing = [0u8; 1];
        let quiet = tokio::time::timeout(Duration::from_millis(10), first.read(&mut nothing)).await;
        assert!(quiet.is_err());
        let mut busy = TcpStream::connect(address).await.unwrap();
        let (mut second, _) = bounded.accept().await;
        // The second is reading a request: not idle.
        busy.write_all(b"GET").await.unwrap();
        let mut bytes = [0u8; 3];
        second.read_exact(&mut bytes).await.unwrap();
        let _newcomer = TcpStream::connect(address).await.unwrap();
        let third = tokio::time::timeout(Duration::from_secs(1), bounded.accept()).await;
        assert!(
            third.is_err(),
            "the idlest is closed once its reader sees it"
        );
        let mut byte = [0u8; 1];
        let evicted = tokio::time::timeout(Duration::from_secs(1), first.read(&mut byte)).await;
        assert!(matches!(evicted, Ok(Err(_))), "the silent one is closed");
        drop(first);
        let third = tokio::time::timeout(Duration::from_secs(1), bounded.accept()).await;
        assert!(third.is_ok(), "the newcomer is taken");
        assert_eq!(bounded.evicted.load(Ordering::Relaxed), 1);
        drop(second);
    }

    #[tokio::test]
    async fn with_no_idle_connection_a_new_client_waits_for_one_to_close() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut bounded = Bounded::new(listener, 1);
        let mut client_1 = TcpStream::connect(address).await.unwrap();
        let _client_2 = TcpStream::connect(address).await.unwrap();
        let (mut first, _) = bounded.accept().await;
        client_1.write_all(b"G").await.unwrap();
        let mut byte = [0u8; 1];
        first.read_exact(&mut byte).await.unwrap();
        let waiting = tokio::time::timeout(Duration::from_millis(200), bounded.accept()).await;
        assert!(waiting.is_err(), "a request being read is not evicted");
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(5), bounded.accept()).await;
        assert!(second.is_ok(), "taken once the first closed");
    }
}
