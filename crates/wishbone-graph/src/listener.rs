//! A listener that holds at most [`MAX_CONNECTIONS`] connections: the next
//! client waits in the kernel's backlog until one closes. A connection
//! that leaves a request unsent or unfinished for [`REQUEST_TIMEOUT`]
//! (counted from the connection, or from the last bytes of the previous
//! answer) is closed, so that clients which never send a request, or
//! send one a byte a second, cannot keep the page from others for longer
//! than that.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 64;

/// How long a client may take to send a whole request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// A listener for `axum::serve` that holds at most a given number of
/// connections and closes those that send no whole request in time (the
/// live page's, and the Prometheus page's).
pub struct Bounded {
    listener: TcpListener,
    room: Arc<Semaphore>,
    /// Connections closed for [`REQUEST_TIMEOUT`].
    timed_out: Arc<AtomicU64>,
}

impl Bounded {
    /// A listener holding at most `connections` connections at once.
    pub fn new(listener: TcpListener, connections: usize) -> Self {
        Self {
            listener,
            room: Arc::new(Semaphore::new(connections)),
            timed_out: Arc::default(),
        }
    }
}

/// A connection and its place among the [`MAX_CONNECTIONS`].
pub struct Held {
    stream: TcpStream,
    _place: OwnedSemaphorePermit,
    /// When the request being read is due, once reading began after the
    /// last write.
    due: Pin<Box<Sleep>>,
    reading: bool,
    timed_out: Arc<AtomicU64>,
}

impl axum::serve::Listener for Bounded {
    type Io = Held;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Held, std::net::SocketAddr) {
        let place = self
            .room
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        loop {
            match self.listener.accept().await {
                Ok((stream, address)) => {
                    let held = Held {
                        stream,
                        _place: place,
                        due: Box::pin(tokio::time::sleep(REQUEST_TIMEOUT)),
                        reading: false,
                        timed_out: self.timed_out.clone(),
                    };
                    return (held, address);
                }
                // Out of descriptors or memory: wait rather than spin.
                Err(error) => {
                    tracing::warn!(%error, "graph page: cannot accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }
}

impl AsyncRead for Held {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.reading {
            self.reading = true;
            self.due.as_mut().reset(Instant::now() + REQUEST_TIMEOUT);
        }
        let read = Pin::new(&mut self.stream).poll_read(cx, buf);
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
    use std::time::Duration;

    #[tokio::test]
    async fn a_connection_beyond_the_bound_waits_for_one_to_close() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut bounded = Bounded::new(listener, 1);
        let _client_1 = TcpStream::connect(address).await.unwrap();
        let _client_2 = TcpStream::connect(address).await.unwrap();
        let (first, _) = bounded.accept().await;
        let waiting = tokio::time::timeout(Duration::from_millis(200), bounded.accept()).await;
        assert!(
            waiting.is_err(),
            "the second is not taken while the first is held"
        );
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(5), bounded.accept()).await;
        assert!(second.is_ok(), "taken once the first closed");
    }
}
