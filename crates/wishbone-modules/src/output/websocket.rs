//! `wishbone.output.websocket`: each event as one text frame to a websocket
//! server, with the same delivery contract as `wishbone.output.tcp`.
//!
//! The text `wishbone show --docs` prints is [`DOCS`]. A frame counts as
//! delivered once the server's TCP stack acknowledged its last byte: every
//! byte written to the socket is counted ([`CountingSocket`], which also
//! learns acknowledgements as they happen) and the size of every client
//! frame is known ([`frame_length`]), so each frame is recorded at the byte
//! offset where it ends. Connecting, backoff, the pump, `failed` and
//! `success` are `wishbone-output`'s, as for the tcp output.

use std::time::Duration;

use bytes::Bytes;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use wishbone_codecs::websocket::frame_length;
use wishbone_output::arguments::peer_port;
use wishbone_output::shared_arguments_docs;
use wishbone_output::tcp::{Acknowledgements, CountingSocket};
use wishbone_output::tls::{self, Socket, TlsArguments};
use wishbone_output::{Connection, Heard, Output, Sent, Settings, Transport, room_below};
use wishbone_runtime::{ArgumentError, Arguments, Module, ModuleKind, Parcel, QueueSpec};

/// What `wishbone show --docs` prints.
pub const DOCS: &str = concat!(
    r#"wishbone.output.websocket: events to a websocket server, one frame each.

Queues
  inbox      events to send: text frames (binary frames for events that are
             not UTF-8)
  failed     with `failed: true`, events it could not deliver
  success    with `success: true`, events the server acknowledged

Arguments (default)
  url                the server, ws://host:port/path or wss://… (required)
"#,
    wishbone_tls::tls_arguments_docs!(),
    shared_arguments_docs!(),
    r#"
Delivery
  As wishbone.output.tcp: a frame counts as delivered once the server's TCP
  stack acknowledged its last byte (every byte under the websocket is
  counted, control frames included); while the server is down or stopped
  reading, `inbox` is locked so a round robin routes around this output.
  When the connection dies, unacknowledged events are sent again on the
  next connection (counted as `resent`) or, with `failed: true`, go to
  `failed`. Events from a write-ahead buffer are acknowledged to it, or
  failed back to it. A server whose socket takes no more bytes for
  `timeout` is disconnected (its events kept, as for a dead one). Every
  failure, before or after the handshake, waits its turn in the backoff. Metrics as for the tcp output:
  module.<name>.connected, connects, delivered, bytes, failed_over, resent.

Example
  modules:
    ws0:
      module: wishbone.output.websocket
      arguments: {url: "ws://localhost:8080/", failed: true}
"#
);

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
/// Bytes the websocket library reads from the server at a time.
const READ_BUFFER: usize = 4096;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The server, `ws://host:port/path` or `wss://…`.
    pub url: String,
    /// With `wss://`: how to verify the server (and this side's certificate).
    #[serde(default)]
    pub tls: Option<TlsArguments>,
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let (settings, own) = Settings::split(arguments)?;
    let config: Config = own.deserialize()?;
    let uri = config
        .url
        .parse::<Uri>()
        .map_err(|error| ArgumentError::value("url", error.to_string()))?;
    let secure = match uri.scheme_str() {
        Some("ws") => false,
        Some("wss") => true,
        _ => {
            return Err(ArgumentError::field(
                "url",
                format!("must start with ws:// or wss://, not `{}`", config.url),
            ));
        }
    };
    let host = uri
        .host()
        .ok_or_else(|| ArgumentError::field("url", "names no host"))?
        .to_string();
    let tls = match (secure, &config.tls) {
        (true, arguments) => Some(tls::connector(
            &arguments.clone().unwrap_or_default(),
            &host,
        )?),
        (false, None) => None,
        (false, Some(_)) => {
            return Err(ArgumentError::field("tls", "goes with a wss:// url"));
        }
    };
    let default_port = if secure { 443 } else { 80 };
    Ok(Box::new(Output {
        transport: WebSocketTransport {
            timeout: settings.timeout,
            address: (
                host,
                peer_port("url", uri.port_u16().unwrap_or(default_port))?,
            ),
            url: config.url,
            tls,
        },
        settings,
    }))
}

/// The server the output connects to.
struct WebSocketTransport {
    url: String,
    /// The host and port of `url`, to open the TCP connection under it.
    address: (String, u16),
    /// With `wss://`: the handshake over each connection.
    tls: Option<tls::Connector>,
    /// How long a closing handshake may take.
    timeout: Duration,
}

impl Transport for WebSocketTransport {
    type Connection = WebSocketConnection;

    fn target(&self) -> String {
        self.url.clone()
    }

    async fn connect(&mut self) -> Result<WebSocketConnection, String> {
        let (host, port) = &self.address;
        let stream = TcpStream::connect((host.as_str(), *port))
            .await
            .map_err(|error| error.to_string())?;
        let _ = stream.set_nodelay(true);
        let counted = CountingSocket::new(stream).map_err(|error| error.to_string())?;
        let progress = counted.progress();
        let socket = Socket::connect(counted, self.tls.as_ref()).await?;
        // A server sends a client little (pongs, a close); the library
        // zeroes its whole read buffer before every read attempt, so a
        // small one saves that on every turn of the pump.
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
        let (socket, _) =
            tokio_tungstenite::client_async_with_config(self.url.as_str(), socket, Some(config))
                .await
                .map_err(|error| error.to_string())?;
        let (sink, stream) = socket.split();
        Ok(WebSocketConnection {
            sink,
            stream,
            acknowledgements: Acknowledgements::new(progress),
            timeout: self.timeout,
            closing: false,
        })
    }
}

type WebSocket = tokio_tungstenite::WebSocketStream<Socket<CountingSocket>>;

/// One live websocket.
struct WebSocketConnection {
    sink: SplitSink<WebSocket, Message>,
    stream: SplitStream<WebSocket>,
    acknowledgements: Acknowledgements,
    timeout: Duration,
    /// The server sent its close frame: ours answers it at the end.
    closing: bool,
}

impl Connection for WebSocketConnection {
    /// A bound on what is in flight, not a window: below it, everything
    /// waiting goes out in one write.
    fn room(&self, in_flight: usize) -> usize {
        room_below(in_flight, MAX_IN_FLIGHT)
    }

    /// Writes one frame per event and flushes. A server that stops reading
    /// stops the writes: after `timeout` it counts as gone (its events are
    /// kept).
    async fn send(&mut self, parcels: Vec<Parcel>, sent: &mut Sent<'_>) -> Result<(), String> {
        let written = tokio::time::timeout(sent.timeout(), send_frames(&mut self.sink, &parcels));
        match written.await {
            Ok(Ok(lengths)) => {
                record_frames(parcels, lengths, sent, self.acknowledgements.written());
                Ok(())
            }
            failed => {
                parcels
                    .into_iter()
                    .for_each(|parcel| sent.never_acknowledged(parcel));
                Err(match failed {
                    Ok(Err(error)) => error,
                    _ => "the server stopped reading".to_string(),
                })
            }
        }
    }

    /// The TCP stack's acknowledgements, and the server's frames (pongs are
    /// dropped; a close frame ends the connection).
    async fn heard(&mut self) -> Result<Heard, String> {
        loop {
            let message = tokio::select! {
                biased;
                message = self.stream.next() => message,
                acknowledged = self.acknowledgements.next() => {
                    return acknowledged.map(Heard::Acknowledged);
                }
            };
            match message {
                None => return Err("the server closed the connection".into()),
                Some(Err(error)) => return Err(error.to_string()),
                Some(Ok(Message::Close(_))) => {
                    self.closing = true;
                    return Err("the server closed the connection".into());
                }
                Some(Ok(_)) => {}
            }
        }
    }

    async fn close(&mut self, _timeout: Duration) {
        let _ = self.sink.close().await;
    }

    /// Answers a server's close frame first: the server may still read
    /// what is in flight until our close answers its own, so nothing is
    /// settled before that. Then the kernel's count.
    async fn finish(&mut self, lost: bool) -> Option<u64> {
        if self.closing {
            let (sink, stream) = (&mut self.sink, &mut self.stream);
            let _ = tokio::time::timeout(self.timeout, async {
                let _ = sink.close().await;
                while let Some(Ok(_)) = stream.next().await {}
            })
            .await;
        }
        self.acknowledgements.finish(lost).await
    }
}

/// Writes one frame per event and flushes; returns the bytes of each
/// parcel's frames. Lines go out as slices of their buffer: no event is
/// made for them.
async fn send_frames(
    sink: &mut SplitSink<WebSocket, Message>,
    parcels: &[Parcel],
) -> Result<Vec<u64>, String> {
    let mut lengths = Vec::with_capacity(parcels.len());
    for parcel in parcels {
        let mut length = 0;
        match parcel {
            Parcel::Lines(lines) => {
                for index in 0..lines.len() {
                    length += feed(sink, lines.line_bytes(index)).await?;
                }
            }
            Parcel::Events(events) => {
                for event in events {
                    length += feed(sink, event.data().clone()).await?;
                }
            }
        }
        lengths.push(length);
    }
    sink.flush().await.map_err(|error| error.to_string())?;
    Ok(lengths)
}

/// Writes one frame; returns its length.
#[inline]
async fn feed(sink: &mut SplitSink<WebSocket, Message>, payload: Bytes) -> Result<u64, String> {
    let length = frame_length(payload.len()) as u64;
    sink.feed(message(payload))
        .await
        .map_err(|error| error.to_string())?;
    Ok(length)
}

/// Records the frames written and flushed, with `written` bytes on the
/// wire: every byte is in the kernel and the count is exact, so the last
/// frame ends at or before it, each earlier one a frame's length before
/// the next (a control frame written in between only makes these ends
/// later, so no frame is ever taken as acknowledged too early). Lines are
/// recorded whole, so that a write-ahead buffer's block is resolved once,
/// not split into a token per event.
fn record_frames(parcels: Vec<Parcel>, lengths: Vec<u64>, sent: &mut Sent<'_>, written: u64) {
    let mut end = written.saturating_sub(lengths.iter().sum());
    for (parcel, length) in parcels.into_iter().zip(lengths) {
        match parcel {
            Parcel::Lines(lines) => sent.frames(lines, None, frame_length, end + length),
            Parcel::Events(events) => {
                let mut event_end = end;
                for event in events {
                    event_end += frame_length(event.len()) as u64;
                    sent.event_ending_at(event, event_end);
                }
            }
        }
        end += length;
    }
}

/// A text frame for UTF-8, a binary frame for anything else.
fn message(payload: Bytes) -> Message {
    if std::str::from_utf8(&payload).is_err() {
        return Message::Binary(payload);
    }
    // SAFETY: checked to be UTF-8 just above.
    Message::Text(unsafe { Utf8Bytes::from_bytes_unchecked(payload) })
}
