//! `wishbone.output.nats`: publishes each event to a NATS JetStream stream,
//! and counts it delivered when the stream's PubAck arrives.
//!
//! The text `wishbone show --docs wishbone.output.nats` prints is [`DOCS`].
//! Connecting with backoff, the locked inbox while no server is reachable,
//! and what happens to events then are the shared shell's
//! ([`wishbone_modules::output::shell`]); what was published and not
//! acknowledged is the delivery core's ([`wishbone_modules::output::Delivery`]).
//! Positions count each event's bytes and a delimiter, as for lines, and
//! each PubAck acknowledges up to the end of its event: PubAcks are awaited
//! in the order of publishing.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage};
use async_nats::{ServerAddr, Subject};
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use wishbone_modules::output::shell::{Ended, Output, OutputState, Settings, Transport};
use wishbone_modules::tls::TlsArguments;
use wishbone_runtime::{ArgumentError, Arguments, Batch, Module, ModuleKind, QueueSpec};

use crate::{connect, message_id, parse_servers};

/// What `wishbone show --docs` prints.
pub const DOCS: &str = concat!(
    r#"wishbone.output.nats: events to a NATS JetStream stream, one message each.

Queues
  inbox      events to deliver
  failed     with `failed: true`, events it could not deliver
  success    with `success: true`, events the stream acknowledged

Arguments (default)
  servers            NATS servers to connect to (["nats://127.0.0.1:4222"]);
                     any of them will do
  subject            subject to publish to; a stream must take it (required)
  max_pending        publishes awaiting their PubAck, at most (1024)
  credentials        a NATS credentials file (none)
  tls                TLS to the servers: {ca, cert, key} as for
                     wishbone.output.tcp (the system's roots when no ca);
                     each server's certificate must carry the host of its
                     URL, so `server_name` is refused
"#,
    wishbone_modules::shared_arguments_docs!(),
    r#"
Delivery
  An event counts as delivered once the stream's PubAck for it arrives: the
  stream has stored it (with replicas, a quorum of them). Each publish
  carries `Nats-Msg-Id`, a 128-bit hash (xxh3) of the event's payload: a
  resend after a lost PubAck is stored once, by the server's de-duplication
  within the stream's duplicate window (2 minutes by default). Two events
  with the same payload within that window are stored once too: add a
  field that tells them apart where that matters. An event larger than the
  server's `max_payload` (headers included, about 60 bytes) is never
  published: it goes to `failed` when a route takes that queue, or is
  dropped and counted in its dropped_total, and is logged with the reason
  and counted in module.<name>.rejected; the events behind it flow on. A refused or timed-out
  publish (`timeout`) ends the connection: what was not acknowledged is
  published again on the next one, or with `failed: true` goes to
  `failed`. While no server is reachable, `inbox` is locked so a round
  robin routes around this output. What "stored" means on disk is the
  server's `sync_interval`: by default JetStream acknowledges before it
  fsyncs (every 2 minutes); set `sync_interval: always` where an
  acknowledged publish must survive a power cut (docs/scaling.md).

Example
  modules:
    output:
      module: wishbone.output.nats
      arguments:
        servers: ["nats://127.0.0.1:4222"]
        subject: events.in
"#
);

/// The kind, for the list of builtin modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "wishbone.output.nats",
    aliases: &[],
    description: "events to a NATS JetStream stream; delivered when stored",
    docs: DOCS,
    queues: QueueSpec::SINK,
    build,
};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Servers to connect to, any of them.
    #[serde(default = "crate::default_servers")]
    pub servers: Vec<String>,
    /// Subject to publish to.
    pub subject: String,
    /// Publishes awaiting their PubAck.
    #[serde(default = "default_max_pending")]
    pub max_pending: usize,
    /// A NATS credentials file.
    #[serde(default)]
    pub credentials: Option<std::path::PathBuf>,
    /// TLS to the servers.
    #[serde(default)]
    pub tls: Option<TlsArguments>,
}

fn default_max_pending() -> usize {
    1024
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let (settings, own) = Settings::split(arguments)?;
    let config: Config = own.deserialize()?;
    if config.subject.is_empty() || config.subject.contains(char::is_whitespace) {
        return Err(ArgumentError::new("`subject` must be a NATS subject"));
    }
    if config.max_pending == 0 {
        return Err(ArgumentError::new("`max_pending` must be at least 1"));
    }
    let servers = parse_servers(&config.servers)?;
    let tls = config.tls.as_ref().map(crate::tls_config).transpose()?;
    Ok(Box::new(Output {
        settings,
        transport: Publisher {
            servers,
            subject: Subject::from(config.subject),
            max_pending: config.max_pending,
            credentials: config.credentials,
            tls,
        },
    }))
}

/// Where the output publishes.
struct Publisher {
    servers: Vec<ServerAddr>,
    /// Cloned per publish without copying (it is reference counted).
    subject: Subject,
    max_pending: usize,
    credentials: Option<std::path::PathBuf>,
    tls: Option<rustls::ClientConfig>,
}

type Acknowledgement = Pin<Box<dyn Future<Output = (Result<(), String>, u64)>>>;

impl Transport for Publisher {
    type Connection = async_nats::Client;

    fn target(&self) -> String {
        let servers: Vec<String> = self
            .servers
            .iter()
            .map(|server| format!("{}:{}", server.host(), server.port()))
            .collect();
        format!("{} on {}", self.subject, servers.join(", "))
    }

    async fn connect(&mut self) -> Result<async_nats::Client, String> {
        connect(
            &self.servers,
            self.credentials.as_deref(),
            self.tls.as_ref(),
        )
        .await
    }

    async fn pump(
        &mut self,
        client: async_nats::Client,
        state: &mut OutputState,
        abort: &CancellationToken,
    ) -> Ended {
        // The server refuses (and disconnects) a message larger than this,
        // headers included: such an event is rejected, never published.
        let max_payload = client.server_info().max_payload;
        let context = jetstream::ContextBuilder::new()
            .timeout(state.timeout)
            .max_ack_inflight(self.max_pending * 2)
            .build(client);
        let (held, resent) = state.delivery.begin(Instant::now());
        state.resending(resent);
        let mut waiting: Batch = held;
        waiting.reverse(); // popped from the back, oldest first
        let mut acknowledgements: FuturesOrdered<Acknowledgement> = FuturesOrdered::new();
        let mut position = 0u64;
        let ended = 'session: loop {
            while acknowledgements.len() < self.max_pending
                && let Some(event) = waiting.pop()
            {
                let size = event.len() + MESSAGE_ID_HEADER_BYTES;
                if max_payload > 0 && size > max_payload {
                    let reason = format!(
                        "{size} bytes with headers, over the server's max_payload of {max_payload}"
                    );
                    if !state.reject(event, &reason, abort).await {
                        break 'session Ended::Aborted;
                    }
                    continue;
                }
                let publish = PublishMessage::build()
                    .payload(event.data().clone())
                    .message_id(message_id(event.data()));
                match context.send_publish(self.subject.clone(), publish).await {
                    Ok(future) => {
                        position += event.len() as u64 + 1;
                        state.delivery.record_event(event, position, Instant::now());
                        acknowledgements.push_back(acknowledged(future, position));
                    }
                    Err(error) => {
                        waiting.push(event);
                        break 'session Ended::Lost(error.to_string());
                    }
                }
            }
            if waiting.is_empty() && !state.inbox_open && state.delivery.is_settled() {
                break Ended::Drained;
            }
            let room = waiting.is_empty() && acknowledgements.len() < self.max_pending;
            tokio::select! {
                biased;
                _ = abort.cancelled() => break Ended::Aborted,
                Some((result, end)) = acknowledgements.next(), if !acknowledgements.is_empty() => {
                    let mut last = None;
                    let mut outcome = result.map(|()| end);
                    // Take every PubAck already in, then acknowledge once.
                    loop {
                        match outcome {
                            Ok(end) => last = Some(end),
                            Err(error) => {
                                if let Some(end) = last {
                                    state.acknowledge(end).await;
                                }
                                break 'session Ended::Lost(error);
                            }
                        }
                        match futures::FutureExt::now_or_never(acknowledgements.next()) {
                            Some(Some((result, end))) => outcome = result.map(|()| end),
                            _ => break,
                        }
                    }
                    if let Some(end) = last {
                        state.acknowledge(end).await;
                    }
                }
                batch = state.inbox.recv(), if state.inbox_open && room => match batch {
                    None => state.inbox_open = false,
                    Some(mut batch) => {
                        batch.reverse();
                        waiting = batch;
                    }
                },
            }
        };
        // Taken from the inbox and not yet published: never acknowledged,
        // so the connection's end holds them for the next one.
        waiting.reverse();
        state
            .delivery
            .record_unsent(wishbone_runtime::Parcel::Events(waiting));
        ended
    }
}

/// What the `Nats-Msg-Id` header adds to a message: `NATS/1.0\r\n`, the
/// header's line with its 32 hex digits, and the empty line.
const MESSAGE_ID_HEADER_BYTES: usize = 10 + "Nats-Msg-Id: ".len() + 32 + 2 + 2;

/// A PubAck, and where its event ends.
fn acknowledged(future: PublishAckFuture, end: u64) -> Acknowledgement {
    Box::pin(async move {
        let result = future
            .await
            .map(drop)
            .map_err(|error| format!("publish not acknowledged: {error}"));
        (result, end)
    })
}
