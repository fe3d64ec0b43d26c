//! `wishbone.input.nats`: a durable pull consumer on a JetStream stream.
//! Each message becomes an event carrying an acknowledgement token; the
//! message is acked when the token is resolved downstream, nak'ed when it
//! fails.
//!
//! The text `wishbone show --docs wishbone.input.nats` prints is [`DOCS`].
//! A session connects, finds the stream, creates the consumer when missing,
//! and pulls; the messages available at once go downstream as one parcel,
//! each with its own token. A session that fails is started again with a
//! growing pause; messages it had not acked are redelivered by the server
//! after `ack_wait`.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::ServerAddr;
use async_nats::jetstream::{self, AckKind, consumer::pull};
use futures::future::LocalBoxFuture;
use futures::{FutureExt, StreamExt};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use wishbone_output::backoff::Backoff;
use wishbone_output::tls::TlsArguments;
use wishbone_runtime::Counted;
use wishbone_runtime::ack::{self, Outcome};
use wishbone_runtime::queue::Sender;
use wishbone_runtime::{
    ArgumentError, Arguments, Event, Module, ModuleContext, ModuleError, ModuleKind, QueueSpec,
};

use crate::{connect, parse_servers};

/// What a pull may fail with.
type PullError = pull::MessagesError;

/// What `wishbone show --docs` prints.
pub const DOCS: &str = r#"wishbone.input.nats: events from a NATS JetStream stream, through a durable pull consumer.

Queues
  outbox     the payload of every message, unchanged

Arguments (default)
  servers          NATS servers to connect to (["nats://127.0.0.1:4222"])
  stream           the stream to consume (required; it must exist)
  consumer         durable consumer name, created when missing (required);
                   if it goes missing while this input runs, it is made
                   again from the oldest message this input took and did
                   not acknowledge (else after the newest it acknowledged),
                   not from the start of the stream
  filter_subject   only messages on this subject (none: all of the stream's)
  max_ack_pending  messages delivered and not yet acked, at most (1024): the
                   server holds back the rest
  ack_wait         seconds before the server delivers again a message not
                   acked (30)
  credentials      a NATS credentials file (none)
  tls              TLS to the servers (none: plain TCP): {ca, cert,
                   key} as for wishbone.output.tcp, the system's roots when no ca;
                   each server's certificate must carry the host of its
                   URL, so `server_name` is refused

Acknowledgement
  A message is acked once its event is delivered by an output that knows
  its peer has it, or kept by a wishbone.flow.wal with `path` as its `sync`
  says; it is nak'ed (delivered again at once) when its event is dropped or
  fails. A message neither acked nor nak'ed within ack_wait (a wishbone
  killed, a pipeline stuck) is delivered again by the server: at least
  once, so an event can arrive twice. Several wishbone processes, on
  several hosts, with the same `consumer` share the stream as a work queue.

Example
  modules:
    input:
      module: wishbone.input.nats
      arguments:
        servers: ["nats://127.0.0.1:4222"]
        stream: EVENTS
        consumer: workers
"#;

/// The kind, for the list of builtin modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "wishbone.input.nats",
    aliases: &[],
    description: "events from a NATS JetStream stream, acked when delivered",
    docs: DOCS,
    queues: QueueSpec::SOURCE,
    build,
};

/// Messages taken from the consumer at once, at most, into one parcel.
const MOST_AT_ONCE: usize = 1000;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Servers to connect to, any of them.
    #[serde(default = "crate::default_servers")]
    pub servers: Vec<String>,
    /// The stream to consume.
    pub stream: String,
    /// Durable consumer name.
    pub consumer: String,
    /// Only messages on this subject.
    #[serde(default)]
    pub filter_subject: Option<String>,
    /// Messages delivered and not yet acked.
    #[serde(default = "default_max_ack_pending")]
    pub max_ack_pending: usize,
    /// Seconds before an unacked message is delivered again.
    #[serde(default = "default_ack_wait")]
    pub ack_wait: f64,
    /// A NATS credentials file.
    #[serde(default)]
    pub credentials: Option<std::path::PathBuf>,
    /// TLS to the servers.
    #[serde(default)]
    pub tls: Option<TlsArguments>,
}

fn default_max_ack_pending() -> usize {
    1024
}

fn default_ack_wait() -> f64 {
    30.0
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let config: Config = arguments.deserialize()?;
    if config.stream.is_empty() || config.consumer.is_empty() {
        return Err(ArgumentError::field(
            "stream",
            "and `consumer` must be named",
        ));
    }
    if config.max_ack_pending == 0 {
        return Err(ArgumentError::field(
            "max_ack_pending",
            "must be at least 1",
        ));
    }
    if !(config.ack_wait.is_finite() && config.ack_wait > 0.0) {
        return Err(ArgumentError::field(
            "ack_wait",
            "must be a number of seconds above 0",
        ));
    }
    let servers = parse_servers(&config.servers)?;
    let tls = config.tls.as_ref().map(crate::tls_config).transpose()?;
    Ok(Box::new(NatsInput {
        config,
        servers,
        tls,
    }))
}

/// The module.
pub struct NatsInput {
    config: Config,
    servers: Vec<ServerAddr>,
    tls: Option<rustls::ClientConfig>,
}

/// The stream sequences this worker took and acknowledged, to say where a
/// consumer made anew starts: at the oldest message taken and not yet
/// acknowledged, else after the newest acknowledged. (Messages that other
/// workers sharing the consumer held unacknowledged when it vanished are
/// not known here.)
#[derive(Debug, Default)]
pub struct Resume {
    acknowledged: Option<u64>,
    pending: std::collections::BTreeSet<u64>,
}

impl Resume {
    /// A message was taken from the consumer.
    pub fn taken(&mut self, sequence: u64) {
        self.pending.insert(sequence);
    }

    /// A message was acknowledged (a nak'ed one is still owed).
    pub fn acknowledged(&mut self, sequence: u64) {
        self.pending.remove(&sequence);
        self.acknowledged = self.acknowledged.max(Some(sequence));
    }

    /// Where a consumer made anew starts; none when nothing was taken.
    pub fn start(&self) -> Option<u64> {
        self.pending
            .first()
            .copied()
            .or(self.acknowledged.map(|sequence| sequence + 1))
    }
}

/// How a session ended.
enum Ended {
    /// The server stops and everything taken was settled.
    Stopped,
    /// The server aborts.
    Aborted,
    /// The connection, the stream or the consumer failed.
    Lost(String),
}

/// What the module did, for metrics and the log at a stop.
struct Counters {
    events: Counted,
    acked: Counted,
    naked: Counted,
}

impl Module for NatsInput {
    fn run(
        self: Box<Self>,
        context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        Box::pin(self.serve(context))
    }
}

impl NatsInput {
    async fn serve(self, mut context: ModuleContext) -> Result<(), ModuleError> {
        let name = context.name().to_string();
        let outbox = context.outgoing("outbox");
        let stop = context.stopping();
        let abort = context.aborting();
        let counters = Counters {
            events: Counted::new(&name, "events"),
            acked: Counted::new(&name, "acked"),
            naked: Counted::new(&name, "naked"),
        };
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut resume = Resume::default();
        let outcome = loop {
            if stop.is_cancelled() {
                break Ok(());
            }
            let began = std::time::Instant::now();
            match self
                .session(&name, &outbox, &stop, &abort, &counters, &mut resume)
                .await
            {
                Ended::Stopped => break Ok(()),
                Ended::Aborted => break Ok(()),
                Ended::Lost(reason) => {
                    backoff.connection_ended(began.elapsed());
                    if backoff.announce(&reason, std::time::Instant::now()) {
                        tracing::warn!(module = %name, %reason, "stream unavailable; retrying with backoff");
                    }
                    tokio::select! {
                        _ = stop.cancelled() => break Ok(()),
                        () = tokio::time::sleep(backoff.next_wait()) => {}
                    }
                }
            }
        };
        tracing::info!(
            module = %name,
            events = counters.events.total(),
            acked = counters.acked.total(),
            naked = counters.naked.total(),
            "input totals"
        );
        outcome
    }

    /// One connection's life: pull, send on, ack as tokens resolve.
    async fn session(
        &self,
        name: &str,
        outbox: &Sender,
        stop: &CancellationToken,
        abort: &CancellationToken,
        counters: &Counters,
        resume: &mut Resume,
    ) -> Ended {
        let consumer = match self.consumer(name, resume).await {
            Ok(consumer) => consumer,
            Err(reason) => return Ended::Lost(reason),
        };
        let batch = self.config.max_ack_pending.clamp(1, MOST_AT_ONCE);
        let mut messages = match consumer
            .stream()
            .max_messages_per_batch(batch)
            .messages()
            .await
        {
            Ok(messages) => messages,
            Err(error) => return Ended::Lost(format!("cannot pull: {error}")),
        };
        let config = &self.config;
        tracing::info!(module = %name, stream = %config.stream, consumer = %config.consumer, "consuming");
        let mut taken = Pulled::default();
        let mut stopping = false;
        loop {
            if stopping && taken.messages.is_empty() {
                return Ended::Stopped;
            }
            tokio::select! {
                biased;
                _ = abort.cancelled() => return Ended::Aborted,
                Some((id, outcome)) = taken.replies.recv() => {
                    if let Err(reason) = taken.settle(id, outcome, resume, counters).await {
                        return Ended::Lost(reason);
                    }
                }
                _ = stop.cancelled(), if !stopping => stopping = true,
                message = messages.next(), if !stopping => {
                    let mut received = vec![message];
                    while received.len() < outbox.capacity().min(MOST_AT_ONCE) {
                        match messages.next().now_or_never() {
                            Some(message) => received.push(message),
                            None => break,
                        }
                    }
                    let events = match taken.events(received, resume) {
                        Ok(events) => events,
                        Err(reason) => return Ended::Lost(reason),
                    };
                    let count = events.len() as u64;
                    tokio::select! {
                        biased;
                        _ = abort.cancelled() => return Ended::Aborted,
                        sent = outbox.send(events) => {
                            if sent.is_err() {
                                return Ended::Lost("the outbox closed".into());
                            }
                        }
                    }
                    counters.events.add(count);
                }
            }
        }
    }

    /// Connects and finds the durable consumer, or makes it (anew from the
    /// oldest message not acknowledged here, when it went away while this
    /// worker ran).
    async fn consumer(
        &self,
        name: &str,
        resume: &Resume,
    ) -> Result<jetstream::consumer::PullConsumer, String> {
        let config = &self.config;
        let client = connect(
            &self.servers,
            config.credentials.as_deref(),
            self.tls.as_ref(),
        )
        .await
        .map_err(|reason| format!("cannot connect: {reason}"))?;
        let stream = jetstream::new(client)
            .get_stream(&config.stream)
            .await
            .map_err(|error| format!("stream {}: {error}", config.stream))?;
        if let Ok(consumer) = stream.get_consumer(&config.consumer).await {
            return Ok(consumer);
        }
        let mut consumer_config = pull::Config {
            durable_name: Some(config.consumer.clone()),
            filter_subject: config.filter_subject.clone().unwrap_or_default(),
            max_ack_pending: config.max_ack_pending as i64,
            ack_wait: Duration::from_secs_f64(config.ack_wait),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        };
        if let Some(start_sequence) = resume.start() {
            tracing::warn!(module = %name, consumer = %config.consumer, start_sequence, "the consumer is gone; making it again from the oldest message not acknowledged here");
            consumer_config.deliver_policy =
                jetstream::consumer::DeliverPolicy::ByStartSequence { start_sequence };
        }
        stream
            .create_consumer(consumer_config)
            .await
            .map_err(|error| format!("consumer {}: {error}", config.consumer))
    }
}

/// The messages of a session sent on and not yet settled, by the number
/// of their token.
struct Pulled {
    issuer: ack::AckIssuer,
    replies: ack::Replies,
    messages: HashMap<u64, jetstream::Message>,
    next_id: u64,
}

impl Default for Pulled {
    fn default() -> Self {
        let (issuer, replies) = ack::issuer();
        Self {
            issuer,
            replies,
            messages: HashMap::new(),
            next_id: 0,
        }
    }
}

impl Pulled {
    /// The messages pulled, as events with tokens; an error ends the
    /// session.
    fn events(
        &mut self,
        received: Vec<Option<Result<jetstream::Message, PullError>>>,
        resume: &mut Resume,
    ) -> Result<Vec<Event>, String> {
        let mut events = Vec::with_capacity(received.len());
        for message in received {
            let message = match message {
                Some(Ok(message)) => message,
                Some(Err(error)) => return Err(format!("pull failed: {error}")),
                None => return Err("the consumer ended".into()),
            };
            if let Ok(info) = message.info() {
                resume.taken(info.stream_sequence);
            }
            let token = self.issuer.issue(self.next_id);
            events.push(Event::new(message.payload.clone()).with_ack(token));
            self.messages.insert(self.next_id, message);
            self.next_id += 1;
        }
        Ok(events)
    }

    /// A message's token resolved: acked (or naked, to be delivered
    /// again) at the server.
    async fn settle(
        &mut self,
        id: u64,
        outcome: Outcome,
        resume: &mut Resume,
        counters: &Counters,
    ) -> Result<(), String> {
        let Some(message) = self.messages.remove(&id) else {
            return Ok(());
        };
        if let (Outcome::Acknowledged, Ok(info)) = (&outcome, message.info()) {
            resume.acknowledged(info.stream_sequence);
        }
        let settled = match outcome {
            Outcome::Acknowledged => message.ack().await,
            _ => message.ack_with(AckKind::Nak(None)).await,
        };
        settled.map_err(|error| format!("cannot settle a message: {error}"))?;
        match outcome {
            Outcome::Acknowledged => counters.acked.add(1),
            _ => counters.naked.add(1),
        }
        Ok(())
    }
}

#[cfg(test)]
mod resume_tests {
    use super::Resume;

    #[test]
    fn a_consumer_made_anew_starts_at_the_oldest_message_not_acknowledged() {
        let mut resume = Resume::default();
        assert_eq!(
            resume.start(),
            None,
            "nothing taken: the consumer's own start"
        );
        for sequence in 1..=10 {
            resume.taken(sequence);
        }
        for sequence in [1, 2, 3, 5, 6] {
            resume.acknowledged(sequence);
        }
        assert_eq!(resume.start(), Some(4));
        for sequence in [4, 7, 8, 9, 10] {
            resume.acknowledged(sequence);
        }
        assert_eq!(resume.start(), Some(11), "after the newest acknowledged");
    }
}
