//! `wishbone.output.nats`: publishes each event to a NATS JetStream stream,
//! and counts it delivered when the stream's PubAck arrives.
//!
//! The text `wishbone show --docs wishbone.output.nats` prints is [`DOCS`].
//! Connecting with backoff, the locked inbox while no server is reachable,
//! the pump and what happens to events while down are `wishbone-output`'s.
//! Each event is one message; PubAcks are awaited in the order of
//! publishing, so the `n`th PubAck acknowledges the first `n` messages.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage};
use async_nats::{ServerAddr, Subject};
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use serde::Deserialize;
use wishbone_output::tls::TlsArguments;
use wishbone_output::{Connection, Heard, OnStall, Output, Sent, Settings, Transport};
use wishbone_runtime::{ArgumentError, Arguments, Module, ModuleKind, Parcel, QueueSpec};

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
  tls                TLS to the servers (none: plain TCP): {ca, cert,
                     key} as for wishbone.output.tcp, the system's roots when no ca;
                     each server's certificate must carry the host of its
                     URL, so `server_name` is refused
"#,
    wishbone_output::shared_arguments_docs!(),
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
        return Err(ArgumentError::field("subject", "must be a NATS subject"));
    }
    if config.max_pending == 0 {
        return Err(ArgumentError::field("max_pending", "must be at least 1"));
    }
    let servers = parse_servers(&config.servers)?;
    let tls = config.tls.as_ref().map(crate::tls_config).transpose()?;
    Ok(Box::new(Output {
        transport: NatsTransport {
            timeout: settings.timeout,
            servers,
            subject: Subject::from(config.subject),
            max_pending: config.max_pending,
            credentials: config.credentials,
            tls,
        },
        settings,
    }))
}

/// Where the output publishes.
struct NatsTransport {
    servers: Vec<ServerAddr>,
    /// Cloned per publish without copying (it is reference counted).
    subject: Subject,
    max_pending: usize,
    credentials: Option<std::path::PathBuf>,
    tls: Option<rustls::ClientConfig>,
    /// How long a PubAck may take.
    timeout: Duration,
}

type Acknowledgement = Pin<Box<dyn Future<Output = (Result<(), String>, u64)>>>;

impl Transport for NatsTransport {
    type Connection = NatsConnection;

    fn target(&self) -> String {
        let servers: Vec<String> = self
            .servers
            .iter()
            .map(|server| format!("{}:{}", server.host(), server.port()))
            .collect();
        format!("{} on {}", self.subject, servers.join(", "))
    }

    async fn connect(&mut self) -> Result<NatsConnection, String> {
        let client = connect(
            &self.servers,
            self.credentials.as_deref(),
            self.tls.as_ref(),
        )
        .await?;
        // The server refuses (and disconnects) a message larger than this,
        // headers included: such an event is rejected, never published.
        let max_payload = client.server_info().max_payload;
        let context = jetstream::ContextBuilder::new()
            .timeout(self.timeout)
            .max_ack_inflight(self.max_pending * 2)
            .build(client);
        Ok(NatsConnection {
            context,
            subject: self.subject.clone(),
            max_pending: self.max_pending,
            max_payload,
            acknowledgements: FuturesOrdered::new(),
            acknowledged: 0,
        })
    }
}

/// A connection to a server, publishing.
struct NatsConnection {
    context: jetstream::Context,
    subject: Subject,
    max_pending: usize,
    max_payload: usize,
    /// PubAcks awaited, in the order of publishing, with their message's
    /// number.
    acknowledgements: FuturesOrdered<Acknowledgement>,
    /// Messages whose PubAck arrived.
    acknowledged: u64,
}

impl Connection for NatsConnection {
    fn room(&self, in_flight: usize) -> usize {
        self.max_pending.saturating_sub(in_flight)
    }

    async fn send(&mut self, parcels: Vec<Parcel>, sent: &mut Sent<'_>) -> Result<(), String> {
        let mut events = parcels.into_iter().flat_map(Parcel::into_events);
        while let Some(event) = events.next() {
            let size = event.len() + MESSAGE_ID_HEADER_BYTES;
            if self.max_payload > 0 && size > self.max_payload {
                let reason = format!(
                    "{size} bytes with headers, over the server's max_payload of {}",
                    self.max_payload
                );
                sent.reject(event, reason);
                continue;
            }
            let publish = PublishMessage::build()
                .payload(event.data().clone())
                .message_id(message_id(event.data()));
            match self
                .context
                .send_publish(self.subject.clone(), publish)
                .await
            {
                Ok(future) => {
                    let number = sent.messages(Parcel::Events(vec![event]));
                    self.acknowledgements
                        .push_back(acknowledged(future, number));
                }
                Err(error) => {
                    let mut rest = vec![event];
                    rest.extend(events);
                    sent.unsent(Parcel::Events(rest));
                    return Err(error.to_string());
                }
            }
        }
        Ok(())
    }

    /// The next PubAck, and every one already in with it.
    async fn heard(&mut self) -> Result<Heard, String> {
        let Some(mut next) = self.acknowledgements.next().await else {
            return std::future::pending().await;
        };
        loop {
            let (result, number) = next;
            result?;
            self.acknowledged = number;
            match futures::FutureExt::now_or_never(self.acknowledgements.next()) {
                Some(Some(more)) => next = more,
                _ => return Ok(Heard::Acknowledged(self.acknowledged)),
            }
        }
    }

    fn on_stall(&self) -> OnStall {
        OnStall::Reconnect
    }

    async fn close(&mut self, _timeout: Duration) {}

    /// The PubAcks taken in before the connection broke still count.
    async fn finish(&mut self, _lost: bool) -> Option<u64> {
        Some(self.acknowledged)
    }
}

/// What the `Nats-Msg-Id` header adds to a message: `NATS/1.0\r\n`, the
/// header's line with its 32 hex digits, and the empty line.
const MESSAGE_ID_HEADER_BYTES: usize = 10 + "Nats-Msg-Id: ".len() + 32 + 2 + 2;

/// A PubAck, and the number of its message.
fn acknowledged(future: PublishAckFuture, number: u64) -> Acknowledgement {
    Box::pin(async move {
        let result = future
            .await
            .map(drop)
            .map_err(|error| format!("publish not acknowledged: {error}"));
        (result, number)
    })
}
