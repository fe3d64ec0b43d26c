//! `wishbone.output.tcp`: writes each event, followed by the delimiter, to
//! one long-lived TCP connection, and loses none when the peer goes away.
//!
//! The text `wishbone show --docs wishbone.output.tcp` prints is [`DOCS`].
//! Lines arriving in their wire form with this output's delimiter are written
//! as they are, many blocks per vectored write; other events are encoded
//! into one block per batch. Every block is recorded in the output's
//! [`Delivery`](super::Delivery) at its byte offset; the kernel reports each
//! acknowledgement of the peer's TCP stack as it happens
//! (`output/ack_reports.rs`), or where it cannot, says how far
//! it got when asked ([`unacknowledged_bytes`]). Connecting,
//! backoff and what happens to events while the peer is down are the
//! shell's (`output/shell.rs`).

use std::collections::VecDeque;
use std::io::IoSlice;
use std::os::fd::AsRawFd;

use bytes::{Buf, Bytes};
use serde::Deserialize;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use wishbone_runtime::{ArgumentError, Arguments, Module, ModuleKind, Parcel, QueueSpec};

use super::shell::{Ended, Output, OutputState, Settings, Transport, shared_arguments_docs};
use super::tcp_tls::TlsPeer;
use super::{ack_reports, settle, unacknowledged_bytes};
use crate::config::{default_delimiter, delimiter_bytes, host_name, peer_port};
use crate::tls::{self, TlsArguments};

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
"#,
    crate::tls_arguments_docs!(),
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
    #[serde(default = "crate::config::default_peer_host")]
    pub host: String,
    /// Peer's port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Written after each event.
    #[serde(default = "default_delimiter")]
    pub delimiter: String,
    /// TLS on the connection.
    #[serde(default)]
    pub tls: Option<TlsArguments>,
}

fn default_port() -> u16 {
    19283
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let (settings, own) = Settings::split(arguments)?;
    let config: Config = own.deserialize()?;
    host_name("host", &config.host)?;
    peer_port("port", config.port)?;
    let delimiter = delimiter_bytes(&config.delimiter)?;
    if let Some(tls) = &config.tls {
        let tls = tls::connector(tls, &config.host)?;
        return Ok(Box::new(Output {
            settings,
            transport: TlsPeer {
                host: config.host,
                port: config.port,
                delimiter,
                tls,
            },
        }));
    }
    Ok(Box::new(Output {
        settings,
        transport: Peer {
            delimiter,
            host: config.host,
            port: config.port,
        },
    }))
}

/// Where the output connects, and how it writes.
struct Peer {
    host: String,
    port: u16,
    delimiter: Bytes,
}

impl Transport for Peer {
    type Connection = TcpStream;

    fn target(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    async fn connect(&mut self) -> Result<TcpStream, String> {
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|error| error.to_string())?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    async fn pump(
        &mut self,
        stream: TcpStream,
        state: &mut OutputState,
        abort: &CancellationToken,
    ) -> Ended {
        // Before the first write: report positions count from here.
        let reports = ack_reports::enable(&stream);
        let mut connection = Connection::new(stream);
        let (first, resent) = state.delivery.begin(std::time::Instant::now());
        state.resending(resent);
        connection.encode(Parcel::Events(first), &self.delimiter, state);
        let mut tick = tokio::time::interval(super::ACK_INTERVAL);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut scratch = [0u8; 4096];
        let ended = loop {
            if let Err(error) = connection.write() {
                break Ended::Lost(error.to_string());
            }
            if !reports && let Err(error) = connection.acknowledge(state).await {
                break Ended::Lost(error.to_string());
            }
            if !state.inbox_open && connection.pending.is_empty() && state.delivery.is_settled() {
                let _ = tokio::io::AsyncWriteExt::shutdown(&mut connection.stream).await;
                break Ended::Drained;
            }
            let room = connection.pending_bytes < HIGH_WATER;
            let divert = state.delivery.is_stalled() && state.delivery.fails_over();
            tokio::select! {
                biased;
                _ = abort.cancelled() => break Ended::Aborted,
                ready = connection.stream.readable() => {
                    let read = ready.and_then(|()| connection.stream.try_read(&mut scratch));
                    match read {
                        Ok(0) => break Ended::Lost("the peer closed the connection".into()),
                        Err(error) if error.kind() != std::io::ErrorKind::WouldBlock => break Ended::Lost(error.to_string()),
                        _ => {}
                    }
                }
                // With reports, each acknowledgement frees room in the send
                // buffer and wakes this loop to write more; waiting for
                // writability besides would see the reports' error
                // readiness as a closed socket, over and over.
                ready = connection.stream.ready(Interest::ERROR), if reports => {
                    if let Err(error) = ready {
                        break Ended::Lost(error.to_string());
                    }
                    if let Some(position) = connection.reported() {
                        state.acknowledge(position).await;
                    }
                }
                ready = connection.stream.writable(), if !reports && !connection.pending.is_empty() => {
                    if let Err(error) = ready {
                        break Ended::Lost(error.to_string());
                    }
                }
                parcel = state.inbox.recv_parcel(), if state.inbox_open && (room || divert) => match parcel {
                    None => state.inbox_open = false,
                    Some(parcel) if divert => {
                        if !state.fail(parcel.into_events(), abort).await {
                            break Ended::Aborted;
                        }
                    }
                    Some(parcel) => {
                        connection.encode(parcel, &self.delimiter, state);
                        if connection.pending_bytes < HIGH_WATER {
                            state.gather(|state, parcel| {
                                connection.encode(parcel, &self.delimiter, state);
                                connection.pending_bytes < HIGH_WATER
                            }).await;
                        }
                    }
                },
                _ = tick.tick(), if !state.delivery.is_settled() => {
                    // The kernel's count on every tick too: a safety net
                    // should reports stop coming, at one ioctl a millisecond.
                    if let Err(error) = connection.acknowledge(state).await {
                        break Ended::Lost(error.to_string());
                    }
                    state.check_stall();
                }
            }
        };
        // What the peer acknowledged before the end still counts as delivered.
        if matches!(ended, Ended::Lost(_)) {
            settle(&connection.stream).await;
        }
        let _ = connection.acknowledge(state).await;
        ended
    }
}

/// One live connection and what was encoded for it.
struct Connection {
    stream: TcpStream,
    /// Encoded blocks not yet written, the first perhaps in part.
    pending: VecDeque<Bytes>,
    /// Their bytes.
    pending_bytes: usize,
    /// Bytes written on this connection.
    written: u64,
}

impl Connection {
    fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            pending: VecDeque::new(),
            pending_bytes: 0,
            written: 0,
        }
    }

    /// Queues events for writing and records them. Lines with this
    /// output's delimiter go out as they are; other events are encoded into
    /// one block.
    fn encode(&mut self, parcel: Parcel, delimiter: &Bytes, state: &mut OutputState) {
        let (lines, events) = parcel.into_wire(delimiter);
        if lines.is_empty() {
            return;
        }
        self.pending_bytes += lines.data().len();
        self.pending.push_back(lines.data().clone());
        state
            .delivery
            .record_lines(lines, events, std::time::Instant::now());
    }

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

    /// Tells the state how far the peer's TCP stack acknowledged.
    async fn acknowledge(&self, state: &mut OutputState) -> std::io::Result<()> {
        if state.delivery.is_settled() {
            return Ok(());
        }
        let unacknowledged = unacknowledged_bytes(&self.stream)?.min(self.written);
        state.acknowledge(self.written - unacknowledged).await;
        Ok(())
    }
}
