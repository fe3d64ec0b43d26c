//! `wishbone.output.websocket`: each event as one text frame to a websocket
//! server, with the same delivery contract as `wishbone.output.tcp`.
//!
//! The text `wishbone show --docs` prints is [`DOCS`]. A frame counts as
//! delivered once the server's TCP stack acknowledged its last byte: every
//! byte written to the socket is counted ([`Counted`]) and the size of every
//! client frame is known ([`frame_length`]), so the same byte-offset
//! bookkeeping as the TCP output applies.

use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::LocalBoxFuture;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;
use wishbone_runtime::queue::Receiver;
use wishbone_runtime::{
    ArgumentError, Arguments, Batch, Event, Module, ModuleContext, ModuleError, ModuleKind,
    QueueSpec,
};

use super::{InFlight, release_buffered, settle, unacknowledged_bytes};
use crate::backoff::Backoff;
use crate::config::{
    default_reconnect_initial, default_reconnect_max, default_timeout, peer_port, seconds,
};

/// What `wishbone show --docs` prints.
pub const DOCS: &str = r#"wishbone.output.websocket: events to a websocket server, one frame each.

Queues
  inbox      events to send: text frames (binary frames for events that are
             not UTF-8)

Arguments (default)
  url                the server, ws://host:port/path (required)
  timeout            seconds to wait for a connection (10)
  reconnect_initial  first wait in seconds before reconnecting (0.1)
  reconnect_max      longest wait between attempts (1)

Delivery
  As wishbone.output.tcp: a frame counts as delivered once the server's TCP
  stack acknowledged its last byte; while the server is down, `inbox` is
  locked so a round robin routes around this output. Events from a
  write-ahead buffer are acknowledged to it, or failed back to it when the
  connection dies; other events wait for the next connection.

Example
  modules:
    ws0:
      module: wishbone.output.websocket
      arguments: {url: "ws://localhost:8080/"}
"#;

/// The kind, for the list of builtin modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "wishbone.output.websocket",
    aliases: &[],
    description: "events to a websocket server, one frame each",
    docs: DOCS,
    queues: QueueSpec::SINK,
    build,
};

/// Frames in flight before the inbox is read again.
const MAX_IN_FLIGHT: usize = 4096;
/// How often to ask the kernel what the server acknowledged while frames are in flight.
const ACK_INTERVAL: Duration = Duration::from_millis(1);

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The server, `ws://host:port/path`.
    pub url: String,
    /// Seconds to wait for a connection.
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    /// First wait before reconnecting, seconds.
    #[serde(default = "default_reconnect_initial")]
    pub reconnect_initial: f64,
    /// Longest wait between attempts, seconds.
    #[serde(default = "default_reconnect_max")]
    pub reconnect_max: f64,
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let config: Config = arguments.deserialize()?;
    let uri: Uri = config
        .url
        .parse()
        .map_err(|error| ArgumentError::new(format!("`url`: {error}")))?;
    if uri.scheme_str() != Some("ws") {
        return Err(ArgumentError::new(format!(
            "`url` must start with ws:// (wss is not supported), not `{}`",
            config.url
        )));
    }
    let host = uri
        .host()
        .ok_or_else(|| ArgumentError::new("`url` names no host"))?
        .to_string();
    Ok(Box::new(WebsocketOutput {
        port: peer_port("url", uri.port_u16().unwrap_or(80))?,
        host,
        timeout: seconds("timeout", config.timeout)?,
        backoff: Backoff::new(
            seconds("reconnect_initial", config.reconnect_initial)?,
            seconds("reconnect_max", config.reconnect_max)?,
        ),
        config,
    }))
}

/// Bytes of a masked client frame with a payload of `payload` bytes.
pub fn frame_length(payload: usize) -> usize {
    let extended = match payload {
        0..=125 => 0,
        126..=65535 => 2,
        _ => 8,
    };
    2 + extended + 4 + payload
}

/// The module.
pub struct WebsocketOutput {
    config: Config,
    host: String,
    port: u16,
    timeout: Duration,
    backoff: Backoff,
}

/// The socket's descriptor, for the kernel's count of unacknowledged bytes
/// while the websocket owns the socket.
struct Descriptor(RawFd);

impl AsRawFd for Descriptor {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

impl Module for WebsocketOutput {
    fn run(
        self: Box<Self>,
        mut context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        let session = Session {
            module: context.name().to_string(),
            inbox: context.take_incoming("inbox"),
            inbox_open: true,
            held: Batch::new(),
            output: *self,
        };
        Box::pin(session.run(context.aborting()))
    }
}

/// The state of one output across its connections.
struct Session {
    module: String,
    output: WebsocketOutput,
    inbox: Receiver,
    inbox_open: bool,
    /// Events without a buffer's token, waiting for the next connection.
    held: Batch,
}

impl Session {
    async fn run(mut self, abort: CancellationToken) -> Result<(), ModuleError> {
        loop {
            self.inbox.lock();
            if !self.inbox_open && self.held.is_empty() {
                return Ok(());
            }
            let (host, port, url) = (
                self.output.host.clone(),
                self.output.port,
                self.output.config.url.clone(),
            );
            let attempt = tokio::time::timeout(self.output.timeout, connect(host, port, url));
            let failure = match self.while_down(attempt, &abort).await {
                None => return Err(self.undelivered()),
                Some(Ok(Ok(stream))) => {
                    tracing::info!(module = %self.module, url = %self.output.config.url, "connected");
                    self.inbox.unlock();
                    let began = tokio::time::Instant::now();
                    match self.pump(stream, &abort).await {
                        Ok(true) => return Ok(()),
                        Ok(false) => return Err(self.undelivered()),
                        Err(reason) => {
                            self.output.backoff.connection_ended(began.elapsed());
                            format!("disconnected: {reason}")
                        }
                    }
                }
                Some(Ok(Err(error))) => format!("cannot connect: {error}"),
                Some(Err(_)) => {
                    format!("cannot connect: no answer within {:?}", self.output.timeout)
                }
            };
            // Every failure, before or after the handshake, waits its turn,
            // with the inbox locked so a round robin routes around it.
            self.inbox.lock();
            let wait = self.output.backoff.next_wait();
            if self.output.backoff.announce() {
                tracing::warn!(module = %self.module, url = %self.output.config.url, %failure, held = self.held.len(), "server unavailable; retrying with backoff");
            } else {
                tracing::debug!(module = %self.module, %failure, ?wait, "still unavailable");
            }
            if self
                .while_down(tokio::time::sleep(wait), &abort)
                .await
                .is_none()
            {
                return Err(self.undelivered());
            }
        }
    }

    /// Runs `work` while the server is down: events from a write-ahead
    /// buffer go back to it, others are held (up to a queue's worth).
    async fn while_down<T>(
        &mut self,
        work: impl Future<Output = T>,
        abort: &CancellationToken,
    ) -> Option<T> {
        let mut work = std::pin::pin!(work);
        loop {
            let room = self.held.len() < self.inbox.capacity();
            tokio::select! {
                biased;
                _ = abort.cancelled() => return None,
                done = &mut work => return Some(done),
                batch = self.inbox.recv(), if self.inbox_open && room => match batch {
                    None => self.inbox_open = false,
                    Some(batch) => self.held.extend(release_buffered(batch)),
                },
            }
        }
    }

    /// Sends until the inbox closes and everything is acknowledged (true),
    /// an abort (false), or the connection dies (the reason).
    async fn pump(&mut self, socket: WebSocket, abort: &CancellationToken) -> Result<bool, String> {
        let descriptor = Descriptor(socket.get_ref().inner.as_raw_fd());
        let written = socket.get_ref().written.clone();
        let (mut sink, mut stream) = socket.split();
        let mut inflight = InFlight::default();
        let mut tick = tokio::time::interval(ACK_INTERVAL);
        let mut pending = std::mem::take(&mut self.held);
        let outcome = loop {
            if !pending.is_empty()
                && let Err(error) = send_frames(
                    &mut sink,
                    std::mem::take(&mut pending),
                    &mut inflight,
                    &written,
                )
                .await
            {
                break Err(error);
            }
            acknowledge(&descriptor, written.load(Ordering::Relaxed), &mut inflight);
            if !self.inbox_open && inflight.is_empty() {
                let _ = sink.close().await;
                break Ok(true);
            }
            tokio::select! {
                biased;
                _ = abort.cancelled() => break Ok(false),
                message = stream.next() => match message {
                    None => break Err("the server closed the connection".into()),
                    Some(Err(error)) => break Err(error.to_string()),
                    Some(Ok(Message::Close(_))) => {
                        // The server may still read what is in flight until our close
                        // answers its own: settle nothing before the connection ends.
                        let _ = tokio::time::timeout(self.output.timeout, async {
                            let _ = sink.close().await;
                            while let Some(Ok(_)) = stream.next().await {}
                        })
                        .await;
                        break Err("the server closed the connection".into());
                    }
                    Some(Ok(_)) => {}
                },
                batch = self.inbox.recv(), if self.inbox_open && inflight.len() < MAX_IN_FLIGHT => match batch {
                    None => self.inbox_open = false,
                    Some(batch) => pending = batch,
                },
                _ = tick.tick(), if !inflight.is_empty() => {}
            }
        };
        if outcome.is_err() {
            settle(&descriptor).await;
        }
        acknowledge(&descriptor, written.load(Ordering::Relaxed), &mut inflight);
        self.held.extend(release_buffered(inflight.take_all()));
        self.held.extend(release_buffered(pending));
        outcome
    }

    fn undelivered(&mut self) -> ModuleError {
        let mut count = self.held.len();
        while let Some(batch) = self.inbox.try_recv() {
            count += batch.len();
        }
        ModuleError::Aborted { undelivered: count }
    }
}

async fn connect(host: String, port: u16, url: String) -> Result<WebSocket, String> {
    let stream = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|error| error.to_string())?;
    let _ = stream.set_nodelay(true);
    let counted = Counted {
        inner: stream,
        written: Arc::new(AtomicU64::new(0)),
    };
    let (socket, _) = tokio_tungstenite::client_async(url.as_str(), counted)
        .await
        .map_err(|error| error.to_string())?;
    Ok(socket)
}

type WebSocket = tokio_tungstenite::WebSocketStream<Counted>;

/// The TCP stream under the websocket, counting every byte written to it
/// (frames, and the control frames the websocket writes by itself), so that
/// the kernel's count of unacknowledged bytes can be compared with it.
pub struct Counted {
    inner: TcpStream,
    written: Arc<AtomicU64>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = &polled {
            self.written.fetch_add(*written as u64, Ordering::Relaxed);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Writes one frame per event and flushes. Once flushed, every byte is in
/// the kernel and the count of bytes written is exact: the last frame ends
/// at or before it, each earlier one a frame's length before the next (a
/// control frame written in between only makes these ends later, so no
/// frame is ever taken as acknowledged too early). Frames of a batch that
/// failed are recorded as never acknowledged.
async fn send_frames(
    sink: &mut futures::stream::SplitSink<WebSocket, Message>,
    events: Batch,
    inflight: &mut InFlight,
    written: &AtomicU64,
) -> Result<(), String> {
    let mut sent = Vec::with_capacity(events.len());
    let mut failure = None;
    for event in events {
        if failure.is_none()
            && let Err(error) = sink.feed(message(&event)).await
        {
            failure = Some(error.to_string());
        }
        sent.push(event);
    }
    if failure.is_none()
        && let Err(error) = sink.flush().await
    {
        failure = Some(error.to_string());
    }
    if let Some(error) = failure {
        for event in sent {
            inflight.push_ending_at(event, u64::MAX);
        }
        return Err(error);
    }
    let mut end = written.load(Ordering::Relaxed);
    let mut ends = Vec::with_capacity(sent.len());
    for event in sent.iter().rev() {
        ends.push(end);
        end = end.saturating_sub(frame_length(event.len()) as u64);
    }
    for (event, end) in sent.into_iter().zip(ends.into_iter().rev()) {
        inflight.push_ending_at(event, end);
    }
    Ok(())
}

/// Releases the frames the server's TCP stack acknowledged.
fn acknowledge(descriptor: &Descriptor, written: u64, inflight: &mut InFlight) {
    if inflight.is_empty() {
        return;
    }
    if let Ok(unacknowledged) = unacknowledged_bytes(descriptor) {
        inflight.acknowledge(written - unacknowledged.min(written), |event| {
            event.acknowledge()
        });
    }
}

fn message(event: &Event) -> Message {
    match Utf8Bytes::try_from(event.data().clone()) {
        Ok(text) => Message::Text(text),
        Err(_) => Message::Binary(event.data().clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frame_lengths_follow_the_protocol() {
        assert_eq!(frame_length(0), 6);
        assert_eq!(frame_length(125), 131);
        assert_eq!(frame_length(126), 134);
        assert_eq!(frame_length(65535), 65543);
        assert_eq!(frame_length(65536), 65550);
    }
}
