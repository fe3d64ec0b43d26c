//! `wishbone.output.tcp`: writes each event, followed by the delimiter, to
//! one long-lived TCP connection, and loses none when the peer goes away.
//!
//! The text `wishbone show --docs wishbone.output.tcp` prints is [`DOCS`].
//! Lines arriving in their wire form with this output's delimiter are written
//! as they are, many blocks per vectored write; other events are encoded
//! into one block per batch. Every block is recorded at its byte offset;
//! the kernel reports each acknowledgement of the peer's TCP stack as it
//! happens ([`ack_reports`]), or where it cannot, says how far it got when
//! asked ([`kernel_acknowledged`], `SIOCOUTQ`). Everything else (connecting, backoff,
//! the pump, what happens to events while the peer is down) is
//! `wishbone-output`'s.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::os::fd::AsRawFd;
use std::time::Duration;

use bytes::{Buf, Bytes};
use serde::Deserialize;
use tokio::io::Interest;
use tokio::net::TcpStream;
use wishbone_output::arguments::peer_port;
use wishbone_output::shared_arguments_docs;
use wishbone_output::tcp::{ack_reports, ack_ticks, kernel_acknowledged, settle};
use wishbone_output::tls::{self, TlsArguments};
use wishbone_output::{Connection, Heard, Output, Sent, Settings, Transport, room_below};
use wishbone_runtime::{
    ArgumentError, Arguments, Module, ModuleKind, Parcel, QueueSpec, host_name,
};

use super::tcp_tls::TlsTransport;
use crate::config::{default_delimiter, delimiter_bytes};
use wishbone_codecs::wire::{Encoded, Wire};

/// What `wishbone show --docs` prints.
pub const DOCS: &str = concat!(
    r#"wishbone.output.tcp: events to one TCP peer, each followed by the delimiter.

Queues
  inbox      events to deliver
  failed     with `failed: true`, events it could not deliver
  success    with `success: true`, events the peer acknowledged

Arguments (default)
  host               peer to connect to, an IP address or host name ("localhost")
  port               peer's port, 1 to 65535 (19283)
  delimiter          written after each event ("\n")
  framing            newline | octet_counted (newline): each event followed
                     by the delimiter, or preceded by its length in decimal
                     and a space (RFC 6587 octet counting, what rsyslog's
                     imtcp and wishbone.input.tcp take as octet_counted)
"#,
    wishbone_output::tls::tls_arguments_docs!(),
    shared_arguments_docs!(),
    r#"
Delivery
  An event counts as delivered once the peer's TCP stack has acknowledged
  its last byte: Linux reports each acknowledgement as it happens
  (SO_TIMESTAMPING TX_ACK), or, where it cannot, says how many bytes are
  unacknowledged (SIOCOUTQ); elsewhere, once written. While the peer is
  down or has stopped reading, `inbox` is locked so a round robin routes
  around this output. When the connection dies, every unacknowledged event
  is sent again on the next connection (a peer may then see a line twice:
  counted as `resent`), or with `failed: true` goes to `failed` together
  with whatever waits in `inbox`. Events from a write-ahead buffer
  (wishbone.flow.wal) are acknowledged to it on delivery and failed back to
  it instead, so it can send them through another output. Not covered:
  bytes the peer's kernel acknowledged but its program never read. With
  `tls` the same holds of the TLS stream: positions count the ciphertext
  bytes on the socket, and a line counts as delivered once every byte up to
  the end of the TLS record holding it is acknowledged. A handshake that
  fails (unknown CA, name mismatch, expired certificate) is logged with its
  reason and retried like a refused connection.

Example
  modules:
    output:
      module: wishbone.output.tcp
      arguments:
        host: 127.0.0.1
        port: 20000
"#
);

/// The kind, for the list of builtin modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "wishbone.output.tcp",
    aliases: &[],
    description: "events to a TCP peer; nothing lost when it goes away",
    docs: DOCS,
    queues: QueueSpec::SINK,
    build,
};

/// Encoded bytes waiting for the socket before the inbox is read again.
const HIGH_WATER: usize = 256 * 1024;
/// Blocks handed to one vectored write.
const MAX_SLICES: usize = 64;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Peer to connect to.
    #[serde(default = "wishbone_output::arguments::default_peer_host")]
    pub host: String,
    /// Peer's port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Written after each event.
    #[serde(default = "default_delimiter")]
    pub delimiter: String,
    /// Events followed by the delimiter, or preceded by their length.
    #[serde(default)]
    pub framing: OutputFraming,
    /// TLS on the connection.
    #[serde(default)]
    pub tls: Option<TlsArguments>,
}

fn default_port() -> u16 {
    19283
}

/// The `framing` argument.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OutputFraming {
    /// Each event followed by the delimiter.
    #[default]
    Newline,
    /// Each event preceded by its length and a space (RFC 6587).
    OctetCounted,
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let (settings, own) = Settings::split(arguments)?;
    let config: Config = own.deserialize()?;
    host_name("host", &config.host)?;
    peer_port("port", config.port)?;
    let wire = match config.framing {
        OutputFraming::Newline => Wire::Delimited(delimiter_bytes(&config.delimiter)?),
        OutputFraming::OctetCounted => Wire::OctetCounted,
    };
    if let Some(tls) = &config.tls {
        let tls = tls::connector(tls, &config.host)?;
        return Ok(Box::new(Output {
            settings,
            transport: TlsTransport {
                host: config.host,
                port: config.port,
                wire,
                tls,
            },
        }));
    }
    Ok(Box::new(Output {
        settings,
        transport: TcpTransport {
            wire,
            host: config.host,
            port: config.port,
        },
    }))
}

/// Where the output connects, and how it writes.
struct TcpTransport {
    host: String,
    port: u16,
    wire: Wire,
}

impl Transport for TcpTransport {
    type Connection = TcpConnection;

    fn target(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    async fn connect(&mut self) -> Result<TcpConnection, String> {
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|error| error.to_string())?;
        let _ = stream.set_nodelay(true);
        // Before the first write: report positions count from here.
        let reports = ack_reports::enable(&stream);
        Ok(TcpConnection {
            stream,
            wire: self.wire.clone(),
            reports,
            pending: VecDeque::new(),
            pending_bytes: 0,
            written: 0,
            told: 0,
            freed: false,
            tick: ack_ticks(),
            scratch: vec![0; 4096],
        })
    }
}

/// One live connection and what was encoded for it.
struct TcpConnection {
    stream: TcpStream,
    wire: Wire,
    /// Whether the kernel reports each acknowledgement as it happens.
    reports: bool,
    /// Encoded blocks not yet written, the first perhaps in part.
    pending: VecDeque<Bytes>,
    /// Their bytes.
    pending_bytes: usize,
    /// Bytes written on this connection.
    written: u64,
    /// The furthest acknowledgement told.
    told: u64,
    /// A report came since the last write: the send buffer has room.
    freed: bool,
    /// When the kernel's count is asked while something is unacknowledged.
    tick: tokio::time::Interval,
    /// Where what the peer sends is read (and dropped).
    scratch: Vec<u8>,
}

impl Connection for TcpConnection {
    fn room(&self, _in_flight: usize) -> usize {
        // The kernel's send buffer bounds what is in flight; this bounds
        // what waits for it.
        room_below(self.pending_bytes, HIGH_WATER)
    }

    /// Queues the parcels' lines for writing, records them, and writes what
    /// the socket takes without waiting. Lines with this output's delimiter
    /// go out as they are; other events are encoded into one block.
    async fn send(&mut self, parcels: Vec<Parcel>, sent: &mut Sent<'_>) -> Result<(), String> {
        for parcel in parcels {
            let encoded = self.wire.encode(parcel);
            let start = self.written + self.pending_bytes as u64;
            if !encoded.data().is_empty() {
                self.pending_bytes += encoded.data().len();
                self.pending.push_back(encoded.data().clone());
            }
            record(encoded, sent, start);
        }
        self.freed = false;
        self.write().map_err(|error| error.to_string())
    }

    /// The TCP stack's acknowledgements: the kernel's reports as they come
    /// and its count every [`ACK_INTERVAL`](wishbone_output::tcp::ACK_INTERVAL) while something is
    /// unacknowledged (the only source without reports, a safety net with
    /// them). Says the socket is writable when pending bytes may go: a
    /// report (an acknowledgement frees room in the send buffer), or,
    /// without reports, the socket's readiness. What the peer sends is read
    /// and dropped.
    async fn heard(&mut self) -> Result<Heard, String> {
        let lost = |error: std::io::Error| error.to_string();
        loop {
            if self.freed && !self.pending.is_empty() {
                self.freed = false;
                return Ok(Heard::Writable);
            }
            if !self.reports
                && let Some(position) = self.kernel_count()?
                && position > self.told
            {
                self.told = position;
                return Ok(Heard::Acknowledged(position));
            }
            let outstanding = self.written > self.told;
            tokio::select! {
                biased;
                ready = self.stream.readable() => {
                    match ready.and_then(|()| self.stream.try_read(&mut self.scratch)) {
                        Ok(0) => return Err("the peer closed the connection".into()),
                        Err(error) if error.kind() != std::io::ErrorKind::WouldBlock => {
                            return Err(lost(error));
                        }
                        _ => {}
                    }
                }
                // Waiting for writability besides the reports would see
                // their error readiness as a closed socket, over and over.
                ready = self.stream.ready(Interest::ERROR), if self.reports => {
                    ready.map_err(lost)?;
                    self.freed = true;
                    if let Some(position) = self.reported()
                        && position > self.told
                    {
                        self.told = position;
                        return Ok(Heard::Acknowledged(position));
                    }
                }
                ready = self.stream.writable(), if !self.reports && !self.pending.is_empty() => {
                    ready.map_err(lost)?;
                    return Ok(Heard::Writable);
                }
                _ = self.tick.tick(), if outstanding => {
                    if let Some(position) = self.kernel_count()?
                        && position > self.told
                    {
                        // What the peer acknowledged left the send buffer:
                        // pending bytes may go, report or not.
                        self.freed = true;
                        self.told = position;
                        return Ok(Heard::Acknowledged(position));
                    }
                }
            }
        }
    }

    async fn close(&mut self, _timeout: Duration) {
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut self.stream).await;
    }

    async fn finish(&mut self, lost: bool) -> Option<u64> {
        // What the peer acknowledged before the end still counts as delivered.
        if lost {
            settle(&self.stream).await;
        }
        self.kernel_count().ok().flatten()
    }
}

impl TcpConnection {
    /// Writes what the socket takes without waiting.
    fn write(&mut self) -> std::io::Result<()> {
        while !self.pending.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let count = self.pending.len().min(MAX_SLICES);
            for (slice, block) in slices.iter_mut().zip(&self.pending) {
                *slice = IoSlice::new(block);
            }
            match self.stream.try_write_vectored(&slices[..count]) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(written) => {
                    self.consume(written);
                    self.written += written as u64;
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// Drops `written` bytes from the front of the pending blocks.
    fn consume(&mut self, mut written: usize) {
        self.pending_bytes -= written;
        while let Some(front) = self.pending.front_mut() {
            if written < front.len() {
                front.advance(written);
                break;
            }
            written -= front.len();
            self.pending.pop_front();
        }
    }

    /// The furthest position the kernel's reports say the peer
    /// acknowledged, reading them all.
    fn reported(&self) -> Option<u64> {
        let mut furthest = None;
        let socket = self.stream.as_raw_fd();
        let _ = self.stream.try_io(Interest::ERROR, || {
            ack_reports::drain(socket, self.written, &mut furthest)
        });
        furthest
    }

    /// How far the peer's TCP stack acknowledged, by the kernel's count.
    fn kernel_count(&self) -> Result<Option<u64>, String> {
        kernel_acknowledged(&self.stream, self.written)
            .map(Some)
            .map_err(|error| error.to_string())
    }
}

/// Records a block as written from stream position `start` on, right after
/// everything recorded before it: delimited lines as lines, octet-counted
/// frames event by event at their ends. An empty event has no octet-counted
/// frame: it is rejected.
pub(super) fn record(encoded: Encoded, sent: &mut Sent<'_>, start: u64) {
    match encoded {
        Encoded::Lines(lines, events) => sent.lines(lines, events),
        Encoded::Frames(framed) => {
            for (event, end) in framed.events {
                sent.event_ending_at(event, start + end as u64);
            }
            for event in framed.empty {
                sent.reject(event, EMPTY_FRAME.into());
            }
        }
    }
}

/// Why an empty event is not written with octet counting.
const EMPTY_FRAME: &str = "an empty event has no octet-counted frame (lengths start at 1)";
