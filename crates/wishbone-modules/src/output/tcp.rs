//! `wishbone.output.tcp`: writes each event, followed by the delimiter, to
//! one long-lived TCP connection, and loses none when the peer goes away.
//!
//! The text `wishbone show --docs wishbone.output.tcp` prints is [`DOCS`].
//! Lines arriving in their wire form with this output's delimiter are written
//! as they are, many blocks per vectored write; other events are encoded
//! into one block per batch. [`Segments`] keeps every block written to the
//! connection until the kernel says the peer's TCP stack acknowledged its
//! events' last bytes ([`unacknowledged_bytes`]); when the connection dies,
//! what is left is sent again on the next connection, or handed to `failed`.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures::future::LocalBoxFuture;
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use wishbone_runtime::queue::{Receiver, Sender};
use wishbone_runtime::{
    ArgumentError, Arguments, Batch, Module, ModuleContext, ModuleError, ModuleKind, Parcel,
    QueueSpec,
};

use super::{Segments, release_buffered, settle, unacknowledged_bytes};
use crate::backoff::Backoff;
use crate::config::{
    default_delimiter, default_reconnect_initial, default_reconnect_max, default_timeout,
    delimiter_bytes, host_name, peer_port, seconds,
};

/// What `wishbone show --docs` prints.
pub const DOCS: &str = r#"wishbone.output.tcp: events to one TCP peer, each followed by the delimiter.

Queues
  inbox      events to deliver
  failed     with `failed: true`, events it could not deliver
  success    with `success: true`, events the peer acknowledged

Arguments (default)
  host               peer to connect to, an IP address or host name ("localhost")
  port               peer's port, 1 to 65535 (19283)
  timeout            seconds to wait for a connection, and for a peer that
                     stopped reading, before it counts as down (10)
  delimiter          written after each event ("\n")
  failed             send undeliverable events to `failed` instead of keeping
                     them for the next connection (false)
  success            send acknowledged events to `success` (false)
  reconnect_initial  first wait in seconds before reconnecting (0.1)
  reconnect_max      longest wait between attempts; waits double up to it (1)

Delivery
  An event counts as delivered once the peer's TCP stack has acknowledged
  its last byte (Linux SIOCOUTQ; elsewhere, once written). While the peer is
  down or has stopped reading, `inbox` is locked so a round robin routes
  around this output. When the connection dies, every unacknowledged event
  is sent again on the next connection (a peer may then see a line twice:
  counted as `resent`), or with `failed: true` goes to `failed` together
  with whatever waits in `inbox`. Events from a write-ahead buffer
  (wishbone.flow.wal) are acknowledged to it on delivery and failed back to
  it instead, so it can send them through another output. Not covered:
  bytes the peer's kernel acknowledged but its program never read.

Example
  modules:
    output:
      module: wishbone.output.tcp
      arguments:
        host: 127.0.0.1
        port: 20000
"#;

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
/// How often to ask the kernel what the peer acknowledged while anything is in flight.
const ACK_INTERVAL: Duration = Duration::from_millis(1);

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Peer to connect to.
    #[serde(default = "default_host")]
    pub host: String,
    /// Peer's port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Seconds before a connect attempt, or a peer that stopped reading, counts as failed.
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    /// Written after each event.
    #[serde(default = "default_delimiter")]
    pub delimiter: String,
    /// Undeliverable events go to `failed` instead of waiting.
    #[serde(default)]
    pub failed: bool,
    /// Acknowledged events go to `success`.
    #[serde(default)]
    pub success: bool,
    /// First wait before reconnecting, seconds.
    #[serde(default = "default_reconnect_initial")]
    pub reconnect_initial: f64,
    /// Longest wait between attempts, seconds.
    #[serde(default = "default_reconnect_max")]
    pub reconnect_max: f64,
}

fn default_host() -> String {
    "localhost".to_string()
}

fn default_port() -> u16 {
    19283
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let config: Config = arguments.deserialize()?;
    host_name("host", &config.host)?;
    peer_port("port", config.port)?;
    Ok(Box::new(TcpOutput {
        delimiter: delimiter_bytes(&config.delimiter)?,
        timeout: seconds("timeout", config.timeout)?,
        backoff: Backoff::new(
            seconds("reconnect_initial", config.reconnect_initial)?,
            seconds("reconnect_max", config.reconnect_max)?,
        ),
        config,
    }))
}

/// The module.
pub struct TcpOutput {
    config: Config,
    delimiter: Bytes,
    timeout: Duration,
    backoff: Backoff,
}

impl Module for TcpOutput {
    fn run(
        self: Box<Self>,
        mut context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        let failed = context.outgoing("failed");
        if self.config.failed && !failed.is_connected() {
            tracing::warn!(module = %context.name(), "failed: true but no route takes the failed queue: undeliverable events will be dropped and counted");
        }
        let link = Link {
            module: context.name().to_string(),
            inbox: context.take_incoming("inbox"),
            failed,
            success: context.outgoing("success"),
            held: Batch::new(),
            inbox_open: true,
            counters: Counters::new(context.name()),
            output: *self,
        };
        Box::pin(link.run(context.aborting()))
    }
}

/// What an output did: recorded as metrics `module.<name>.<counter>`, and
/// logged when it stops.
struct Counters {
    connected: metrics::Gauge,
    connects: metrics::Counter,
    delivered: metrics::Counter,
    bytes: metrics::Counter,
    failed_over: metrics::Counter,
    resent: metrics::Counter,
    totals: Totals,
}

#[derive(Debug, Default)]
struct Totals {
    connects: u64,
    delivered: u64,
    bytes: u64,
    failed_over: u64,
    resent: u64,
}

impl Counters {
    fn new(module: &str) -> Self {
        let name = |counter: &str| crate::metric::module_counter(module, counter);
        Self {
            connected: metrics::gauge!(name("connected")),
            connects: metrics::counter!(name("connects")),
            delivered: metrics::counter!(name("delivered")),
            bytes: metrics::counter!(name("bytes")),
            failed_over: metrics::counter!(name("failed_over")),
            resent: metrics::counter!(name("resent")),
            totals: Totals::default(),
        }
    }

    fn connected(&mut self, up: bool) {
        self.connected.set(if up { 1.0 } else { 0.0 });
        if up {
            self.connects.increment(1);
            self.totals.connects += 1;
        }
    }

    fn delivered(&mut self, events: usize, bytes: u64) {
        self.delivered.increment(events as u64);
        self.bytes.increment(bytes);
        self.totals.delivered += events as u64;
        self.totals.bytes += bytes;
    }

    fn failed_over(&mut self, events: usize) {
        self.failed_over.increment(events as u64);
        self.totals.failed_over += events as u64;
    }

    fn resent(&mut self, events: usize) {
        self.resent.increment(events as u64);
        self.totals.resent += events as u64;
    }
}

/// The state of one output across its connections.
struct Link {
    module: String,
    output: TcpOutput,
    inbox: Receiver,
    failed: Sender,
    success: Sender,
    /// Events taken from the inbox or a dead connection, waiting for the
    /// next connection (or for `failed`).
    held: Batch,
    inbox_open: bool,
    counters: Counters,
}

enum Down {
    Up(TcpStream),
    Done,
    Aborted,
}

enum Ended {
    Drained,
    Lost(String),
    Aborted,
}

impl Link {
    async fn run(mut self, abort: CancellationToken) -> Result<(), ModuleError> {
        let outcome = loop {
            self.inbox.lock();
            let stream = match self.connect(&abort).await {
                Down::Up(stream) => stream,
                Down::Done => break Ok(()),
                Down::Aborted => break Err(self.undelivered()),
            };
            self.inbox.unlock();
            let began = tokio::time::Instant::now();
            match self.pump(stream, &abort).await {
                Ended::Drained => break Ok(()),
                Ended::Aborted => break Err(self.undelivered()),
                Ended::Lost(reason) => {
                    self.inbox.lock();
                    self.counters.connected(false);
                    self.output.backoff.connection_ended(began.elapsed());
                    let wait = self.output.backoff.next_wait();
                    if self.output.backoff.announce() {
                        tracing::warn!(module = %self.module, %reason, unacknowledged = self.held.len(), "disconnected; reconnecting with backoff");
                    } else {
                        tracing::debug!(module = %self.module, %reason, unacknowledged = self.held.len(), ?wait, "disconnected again");
                    }
                    // A peer that accepts and drops connections at once is
                    // not hammered: every failure waits its turn.
                    if self
                        .while_down(tokio::time::sleep(wait), &abort)
                        .await
                        .is_none()
                    {
                        break Err(self.undelivered());
                    }
                }
            }
        };
        self.counters.connected(false);
        let Totals {
            connects,
            delivered,
            bytes,
            failed_over,
            resent,
        } = self.counters.totals;
        tracing::info!(module = %self.module, connects, delivered, bytes, failed_over, resent, "output totals");
        outcome
    }

    /// Waits until connected. Meanwhile events taken from the inbox go to
    /// `failed` (with `failed: true`) or are held for the connection.
    async fn connect(&mut self, abort: &CancellationToken) -> Down {
        loop {
            if self.output.config.failed && !self.held.is_empty() {
                let held = std::mem::take(&mut self.held);
                if !self.fail(held, abort).await {
                    return Down::Aborted;
                }
            }
            if !self.inbox_open && self.held.is_empty() {
                return Down::Done;
            }
            let (host, port) = (self.output.config.host.clone(), self.output.config.port);
            let attempt =
                tokio::time::timeout(self.output.timeout, TcpStream::connect((host, port)));
            let error = match self.while_down(attempt, abort).await {
                None => return Down::Aborted,
                Some(Ok(Ok(stream))) => {
                    let _ = stream.set_nodelay(true);
                    self.counters.connected(true);
                    let peer = stream
                        .peer_addr()
                        .map(|peer| peer.to_string())
                        .unwrap_or_default();
                    tracing::info!(module = %self.module, %peer, "connected");
                    return Down::Up(stream);
                }
                Some(Ok(Err(error))) => error.to_string(),
                Some(Err(_)) => format!("no answer within {:?}", self.output.timeout),
            };
            let wait = self.output.backoff.next_wait();
            let target = format!("{}:{}", self.output.config.host, self.output.config.port);
            if self.output.backoff.announce() {
                tracing::warn!(module = %self.module, %target, %error, "cannot connect; retrying with backoff");
            } else {
                tracing::debug!(module = %self.module, %target, %error, ?wait, "cannot connect");
            }
            if self
                .while_down(tokio::time::sleep(wait), abort)
                .await
                .is_none()
            {
                return Down::Aborted;
            }
        }
    }

    /// Runs `work` while taking what the inbox holds: to `failed`, or held
    /// (up to a queue's worth) for the next connection. `None` on abort.
    async fn while_down<T>(
        &mut self,
        work: impl Future<Output = T>,
        abort: &CancellationToken,
    ) -> Option<T> {
        let mut work = std::pin::pin!(work);
        loop {
            let room = self.output.config.failed || self.held.len() < self.inbox.capacity();
            tokio::select! {
                biased;
                _ = abort.cancelled() => return None,
                done = &mut work => return Some(done),
                batch = self.inbox.recv(), if self.inbox_open && room => match batch.map(release_buffered) {
                    None => self.inbox_open = false,
                    Some(batch) if self.output.config.failed => {
                        if !self.fail(batch, abort).await {
                            return None;
                        }
                    }
                    Some(batch) => self.held.extend(batch),
                },
            }
        }
    }

    /// Hands events to `failed`; false on abort (they are then held and
    /// counted as undelivered).
    async fn fail(&mut self, batch: Batch, abort: &CancellationToken) -> bool {
        let count = batch.len();
        tokio::select! {
            biased;
            sent = self.failed.send(batch) => match sent {
                Ok(()) => {
                    self.counters.failed_over(count);
                    true
                }
                Err(closed) => {
                    tracing::error!(module = %self.module, events = count, "failed queue closed; holding its events");
                    self.held.extend(closed.0);
                    true
                }
            },
            _ = abort.cancelled() => false,
        }
    }

    /// Moves events from the inbox to the peer until the inbox closes and
    /// everything is acknowledged, or the connection dies.
    async fn pump(&mut self, stream: TcpStream, abort: &CancellationToken) -> Ended {
        let mut connection = Connection::new(stream);
        if !self.held.is_empty() {
            let held = std::mem::take(&mut self.held);
            self.counters.resent(held.len());
            connection.encode(Parcel::Events(held), &self.output.delimiter);
        }
        let mut tick = tokio::time::interval(ACK_INTERVAL);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut stalled = false;
        let mut scratch = [0u8; 4096];
        let ended = loop {
            if let Err(error) = connection.write() {
                break Ended::Lost(error.to_string());
            }
            if stalled && connection.last_progress.elapsed() < self.output.timeout {
                stalled = false;
                self.inbox.unlock();
                tracing::info!(module = %self.module, "peer reads again");
            }
            if let Err(error) = self.acknowledge(&mut connection).await {
                break Ended::Lost(error.to_string());
            }
            if !self.inbox_open && connection.is_idle() {
                let _ = tokio::io::AsyncWriteExt::shutdown(&mut connection.stream).await;
                break Ended::Drained;
            }
            let room = connection.pending_bytes < HIGH_WATER;
            let divert = stalled && self.output.config.failed;
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
                ready = connection.stream.writable(), if !connection.pending.is_empty() => {
                    if let Err(error) = ready {
                        break Ended::Lost(error.to_string());
                    }
                }
                parcel = self.inbox.recv_parcel(), if self.inbox_open && (room || divert) => match parcel {
                    None => self.inbox_open = false,
                    Some(parcel) if divert => {
                        if !self.fail(parcel.into_events(), abort).await {
                            break Ended::Aborted;
                        }
                    }
                    Some(parcel) => {
                        connection.encode(parcel, &self.output.delimiter);
                        self.gather(&mut connection).await;
                    }
                },
                _ = tick.tick(), if !connection.inflight.is_empty() => {
                    if !stalled && !connection.pending.is_empty() && connection.last_progress.elapsed() >= self.output.timeout {
                        stalled = true;
                        self.inbox.lock();
                        tracing::warn!(module = %self.module, timeout = ?self.output.timeout, "peer stopped reading; routing around it");
                    }
                }
            }
        };
        // What the peer acknowledged before the end still counts as delivered.
        if matches!(ended, Ended::Lost(_)) {
            settle(&connection.stream).await;
        }
        let _ = self.acknowledge(&mut connection).await;
        self.held = release_buffered(connection.inflight.take_all());
        ended
    }

    /// Takes what else waits in the inbox, up to the high-water mark. Once,
    /// lets the modules upstream run first: what they send meanwhile goes
    /// out in the same write, and every write wakes the peer, which costs
    /// more than the bytes. With nothing upstream to run, no time is lost.
    async fn gather(&mut self, connection: &mut Connection) {
        let mut yielded = false;
        while connection.pending_bytes < HIGH_WATER {
            match self.inbox.try_recv_parcel() {
                Some(parcel) => connection.encode(parcel, &self.output.delimiter),
                None if yielded => break,
                None => {
                    yielded = true;
                    tokio::task::yield_now().await;
                }
            }
        }
    }

    /// Releases what the peer acknowledged, to `success` if asked.
    async fn acknowledge(&mut self, connection: &mut Connection) -> std::io::Result<()> {
        if connection.inflight.is_empty() {
            return Ok(());
        }
        let acknowledged =
            connection.written - unacknowledged_bytes(&connection.stream)?.min(connection.written);
        let mut delivered = Batch::new();
        let keep = self.output.config.success;
        let count = connection
            .inflight
            .acknowledge(acknowledged, keep, |event| {
                event.acknowledge();
                if keep {
                    delivered.push(event)
                }
            });
        self.counters
            .delivered(count, acknowledged - connection.acknowledged);
        connection.acknowledged = acknowledged;
        if !delivered.is_empty() && self.success.send(delivered).await.is_err() {
            tracing::debug!(module = %self.module, "success queue closed");
        }
        Ok(())
    }

    /// An abort: what this output still holds, for the error report.
    fn undelivered(&mut self) -> ModuleError {
        let mut count = self.held.len();
        while let Some(batch) = self.inbox.try_recv() {
            count += batch.len();
        }
        ModuleError::Aborted { undelivered: count }
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
    /// Bytes the peer acknowledged.
    acknowledged: u64,
    inflight: Segments,
    /// When the socket last took bytes, to notice a peer that stopped reading.
    last_progress: Instant,
}

impl Connection {
    fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            pending: VecDeque::new(),
            pending_bytes: 0,
            written: 0,
            acknowledged: 0,
            inflight: Segments::default(),
            last_progress: Instant::now(),
        }
    }

    /// Queues events for writing. Lines with this output's delimiter go out
    /// as they are; other events are encoded into one block.
    fn encode(&mut self, parcel: Parcel, delimiter: &Bytes) {
        let (lines, events) = parcel.into_wire(delimiter);
        if lines.is_empty() {
            return;
        }
        self.pending_bytes += lines.data().len();
        self.pending.push_back(lines.data().clone());
        self.inflight.push(lines, events);
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
                    self.last_progress = Instant::now();
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

    fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.inflight.is_empty()
    }
}
