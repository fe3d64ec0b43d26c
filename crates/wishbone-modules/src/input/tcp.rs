//! `wishbone.input.tcp`: accepts TCP connections and turns each delimited
//! line into an event on `outbox`.
//!
//! The text `wishbone show --docs wishbone.input.tcp` prints is [`DOCS`].
//! Each connection is served by its own task with its own framer: it reads
//! up to 256 KiB at a time and sends the complete lines of one read as one
//! parcel of [`Lines`](wishbone_runtime::Lines), still in the read's buffer. When
//! `outbox` is full the task waits before reading again, so a slow pipeline
//! slows the senders through TCP's own flow control instead of buffering
//! without bound.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use bytes::{Bytes, BytesMut};
use futures::future::LocalBoxFuture;
use serde::Deserialize;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use wishbone_runtime::queue::Sender;
use wishbone_runtime::{
    ArgumentError, Arguments, Module, ModuleContext, ModuleError, ModuleKind, Parcel, QueueSpec,
};

use crate::config::{default_delimiter, delimiter_bytes};
use crate::lines::{LineFramer, Overlong};

/// What `wishbone show --docs` prints.
pub const DOCS: &str = r#"wishbone.input.tcp: events from TCP clients, one per delimited line.

Queues
  outbox     every line read, without its delimiter

Arguments (default)
  address          interface to listen on ("0.0.0.0")
  port             port to listen on (19283); 0 picks a free port, logged at start
  delimiter        what ends an event ("\n")
  max_connections  clients served at once, 0 for no limit (0); further
                   clients wait in the listen backlog until one leaves
  reuse_port       share the port with other processes, SO_REUSEPORT (false)
  max_line_length  longest event in bytes (1048576); memory per client never
                   grows past it
  overlong_lines   what to do with a longer line: truncate | drop (truncate);
                   either way it is counted and logged once per connection

A client that ends without a final delimiter still delivers its last line.
When the server stops, a line a client had not finished is counted as
incomplete and not delivered.

Example
  modules:
    input:
      module: wishbone.input.tcp
      arguments:
        port: 10000
"#;

/// The kind, for the list of builtin modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "wishbone.input.tcp",
    aliases: &[],
    description: "events from TCP clients, one per delimited line",
    docs: DOCS,
    queues: QueueSpec::SOURCE,
    build,
};

/// Bytes asked of the socket per read; one read becomes one parcel.
const READ_SIZE: usize = 256 * 1024;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Interface to listen on.
    #[serde(default = "default_address")]
    pub address: String,
    /// Port to listen on; 0 lets the system pick one.
    #[serde(default = "default_port")]
    pub port: u16,
    /// What ends an event.
    #[serde(default = "default_delimiter")]
    pub delimiter: String,
    /// Clients served at once; 0 for no limit.
    #[serde(default)]
    pub max_connections: usize,
    /// Share the port with other processes.
    #[serde(default)]
    pub reuse_port: bool,
    /// Longest event in bytes; bounds memory per client.
    #[serde(default = "default_max_line_length")]
    pub max_line_length: usize,
    /// What to do with a longer line.
    #[serde(default)]
    pub overlong_lines: Overlong,
}

fn default_address() -> String {
    "0.0.0.0".to_string()
}

fn default_port() -> u16 {
    19283
}

fn default_max_line_length() -> usize {
    1024 * 1024
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let config: Config = arguments.deserialize()?;
    let delimiter = delimiter_bytes(&config.delimiter)?;
    if config.max_line_length == 0 {
        return Err(ArgumentError::new("`max_line_length` must be at least 1"));
    }
    Ok(Box::new(TcpInput { config, delimiter }))
}

/// The module: a listener and one task per client.
pub struct TcpInput {
    config: Config,
    delimiter: Bytes,
}

/// What the clients of one input did, reported when it stops.
#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    events: AtomicU64,
    truncated: AtomicU64,
    dropped: AtomicU64,
    incomplete: AtomicU64,
}

impl Module for TcpInput {
    fn run(
        self: Box<Self>,
        context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        Box::pin(self.serve(context))
    }
}

impl TcpInput {
    async fn serve(self, mut context: ModuleContext) -> Result<(), ModuleError> {
        let reuse_port = self.config.reuse_port || context.options().reuse_port;
        let listener =
            listen(&self.config.address, self.config.port, reuse_port).map_err(|error| {
                ModuleError(format!(
                    "cannot listen on {}:{}: {error}",
                    self.config.address, self.config.port
                ))
            })?;
        let address = listener.local_addr()?;
        tracing::info!(module = %context.name(), %address, "listening");
        let outbox = context.outgoing("outbox");
        let stop = context.stopping();
        let counters = Arc::new(Counters::default());
        let limit = match self.config.max_connections {
            0 => Semaphore::MAX_PERMITS,
            max => max,
        };
        let slots = Arc::new(Semaphore::new(limit));
        let mut clients = JoinSet::new();
        loop {
            let slot = tokio::select! {
                _ = stop.cancelled() => break,
                slot = slots.clone().acquire_owned() => slot.map_err(|_| ModuleError("connection limit closed".into()))?,
            };
            let accepted = tokio::select! {
                _ = stop.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            while clients.try_join_next().is_some() {}
            match accepted {
                Ok((stream, peer)) => {
                    counters.connections.fetch_add(1, Relaxed);
                    let client = Client {
                        module: context.name().to_string(),
                        peer,
                        framer: LineFramer::new(
                            &self.delimiter,
                            self.config.max_line_length,
                            self.config.overlong_lines,
                        ),
                        outbox: outbox.clone(),
                        stop: stop.clone(),
                        abort: context.aborting(),
                        counters: counters.clone(),
                    };
                    clients.spawn_local(async move {
                        client.serve(stream).await;
                        drop(slot);
                    });
                }
                Err(error) => tracing::warn!(module = %context.name(), %error, "accept failed"),
            }
        }
        drop(listener);
        while clients.join_next().await.is_some() {}
        tracing::info!(
            module = %context.name(),
            connections = counters.connections.load(Relaxed),
            events = counters.events.load(Relaxed),
            truncated = counters.truncated.load(Relaxed),
            dropped = counters.dropped.load(Relaxed),
            incomplete = counters.incomplete.load(Relaxed),
            "input totals"
        );
        Ok(())
    }
}

/// Binds with `SO_REUSEADDR` (a restarted server gets its port back at once)
/// and optionally `SO_REUSEPORT`.
fn listen(address: &str, port: u16, reuse_port: bool) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    use std::net::ToSocketAddrs;
    let address: SocketAddr = (address, port).to_socket_addrs()?.next().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            "address resolves to nothing",
        )
    })?;
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// One connected client.
struct Client {
    module: String,
    peer: SocketAddr,
    framer: LineFramer,
    outbox: Sender,
    stop: CancellationToken,
    abort: CancellationToken,
    counters: Arc<Counters>,
}

impl Client {
    async fn serve(mut self, mut stream: TcpStream) {
        tracing::debug!(module = %self.module, peer = %self.peer, "client connected");
        let mut buffer = BytesMut::with_capacity(READ_SIZE);
        let mut warned = false;
        loop {
            if buffer.capacity() - buffer.len() < READ_SIZE / 4 {
                buffer.reserve(READ_SIZE);
            }
            let read = tokio::select! {
                biased;
                _ = self.stop.cancelled() => {
                    if !buffer.is_empty() {
                        self.counters.incomplete.fetch_add(1, Relaxed);
                    }
                    break;
                }
                read = stream.read_buf(&mut buffer) => read,
            };
            let ended = match read {
                Ok(0) => true,
                Ok(_) => false,
                Err(error) => {
                    tracing::debug!(module = %self.module, peer = %self.peer, %error, "client read failed");
                    true
                }
            };
            let parcel = if ended {
                self.framer.finish(&mut buffer)
            } else {
                self.framer.split(&mut buffer)
            };
            if !warned && self.framer.truncated + self.framer.dropped > 0 {
                warned = true;
                tracing::warn!(module = %self.module, peer = %self.peer, "a line was longer than max_line_length");
            }
            if !self.forward(parcel).await || ended {
                break;
            }
        }
        self.counters
            .truncated
            .fetch_add(self.framer.truncated, Relaxed);
        self.counters
            .dropped
            .fetch_add(self.framer.dropped, Relaxed);
        tracing::debug!(module = %self.module, peer = %self.peer, "client disconnected");
    }

    /// Sends the events in parcels no larger than the queue; false when the
    /// server is aborting or the pipeline is gone, which loses them (logged).
    async fn forward(&self, mut events: Parcel) -> bool {
        let capacity = self.outbox.capacity();
        while !events.is_empty() {
            let rest = events.split_off(capacity);
            let parcel = std::mem::replace(&mut events, rest);
            let count = parcel.len();
            let outcome = tokio::select! {
                biased;
                outcome = self.outbox.send(parcel) => outcome,
                _ = self.abort.cancelled() => {
                    tracing::error!(module = %self.module, events = count + events.len(), "aborted with events not yet queued");
                    return false;
                }
            };
            if let Err(closed) = outcome {
                tracing::error!(module = %self.module, events = closed.0.len() + events.len(), "outbox closed; events not queued");
                return false;
            }
            self.counters.events.fetch_add(count as u64, Relaxed);
        }
        true
    }
}
