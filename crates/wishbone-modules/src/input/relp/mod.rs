//! `wishbone.input.relp`: a RELP server. Each `syslog` frame becomes one
//! event, and the client hears `200 OK` for it only once the event is
//! safe downstream.
//!
//! The text `wishbone show --docs wishbone.input.relp` prints is [`DOCS`].
//! The frames are [`wishbone_codecs::relp`]'s; the order of answers is
//! `input/relp/answers.rs`. Each session reads what the client sent, sends the
//! `syslog` frames of one read downstream as one parcel carrying one
//! acknowledgement token, and answers them once that token is resolved.
//! Accepting clients is the shared listener's (`wishbone-listen`).

mod answers;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use std::sync::Arc;
use tokio::time::Instant;

use bytes::{Bytes, BytesMut};
use futures::future::LocalBoxFuture;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use wishbone_runtime::ack::{self, AckIssuer, Outcome};
use wishbone_runtime::queue::Sender;
use wishbone_runtime::{
    ArgumentError, Arguments, Event, LinesBuilder, ListenAddress, Module, ModuleContext,
    ModuleError, ModuleKind, Parcel, QueueSpec,
};

use self::answers::Answers;
use super::read_buffer::ReadBuffer;
use wishbone_codecs::relp::{self, Frame};
use wishbone_listen::Listening;
use wishbone_listen::Presence;
use wishbone_runtime::Counted;

/// What `wishbone show --docs` prints.
pub const DOCS: &str = concat!(
    r#"wishbone.input.relp: events from RELP clients (such as rsyslog's omrelp), one per syslog frame.

Queues
  outbox     the data of every syslog frame, unchanged

Arguments (default)
  address          interface to listen on, an IP address or host name ("0.0.0.0")
  port             port to listen on (2514); 0 picks a free port, logged at start
  max_connections  sessions served at once (0: half the process's open-file limit)
  reuse_port       share the port with other processes, SO_REUSEPORT (false)
  window           syslog frames of one session taken and not yet answered
                   (128): once this many wait for their answer the session
                   is not read, which holds the client back
  max_frame        largest frame data in bytes (131072); a larger frame closes
                   the session
  tls              TLS on every session (none: plain TCP): {cert, key},
                   and {ca, verify_peer} for mutual TLS, as for
                   wishbone.input.tcp
"#,
    wishbone_listen::slots_docs!(),
    wishbone_listen::threads_docs!(),
    r#"

What an answer means
  `200 OK` to a syslog frame: its event was delivered by an output that
  knows its peer has it (wishbone.output.tcp: the peer's TCP stack
  acknowledged it; wishbone.output.relp: the next RELP server answered),
  or kept by a wishbone.flow.wal with `path` as its `sync` says. `500` to
  a frame whose event was dropped or could not be delivered, sent a second
  after the refusal (so a client that sends it again at once is held
  back, not spinning while every output is down): the client sends it
  again. Answers go out in the order of the frames.
  Not guaranteed: a client that loses its session before an answer sends
  the frame again, so an event can arrive twice (at least once). An
  output that cannot tell (stdout, null) answers once it wrote the event.

Sessions
  A session opens with `open` (answered with this server's offers:
  relp_version=0, commands=syslog) and ends with `close` (answered once
  every earlier frame is). A malformed frame, a frame over max_frame, or
  anything before `open` closes the session, logged with the reason and
  counted; other sessions go on. At a stop the server stops reading, answers
  what it took as its events settle, sends `serverclose` and closes.

A reload (SIGHUP) that changes only max_connections, tls or frame_timeout
keeps the input and its sessions; new sessions get the new values.

Metrics (module.<name>.<counter>)
  connections      sessions accepted
  events           syslog frames put on outbox
  accepted         frames answered 200
  refused          frames answered 500
  malformed        sessions closed for a protocol error
  accept_failures  accepts that failed for want of descriptors or memory
  evicted          sessions closed to make room for a new one
  timed_out        sessions closed for a frame not finished in frame_timeout

Example
  modules:
    input:
      module: wishbone.input.relp
      arguments:
        port: 2514
"#
);

/// The kind, for the list of builtin modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "wishbone.input.relp",
    aliases: &[],
    description: "events from RELP clients, answered once safe downstream",
    docs: DOCS,
    queues: QueueSpec::SOURCE,
    build,
};

/// How long a `500` waits before it is sent: while every output is down
/// each frame is refused at once, and a client that sends it again at once
/// would spin.
const REFUSAL_HOLD: Duration = Duration::from_secs(1);

/// Batches refused downstream, answered `500` once [`REFUSAL_HOLD`] has
/// passed, oldest first.
#[derive(Default)]
struct Refusals(VecDeque<(Instant, u64, Outcome)>);

impl Refusals {
    /// Batch `id` was refused: its answer waits.
    fn hold(&mut self, id: u64, refused: Outcome) {
        self.0
            .push_back((Instant::now() + REFUSAL_HOLD, id, refused));
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// When the oldest refusal is due.
    async fn due(&self) {
        match self.0.front() {
            Some((due, _, _)) => tokio::time::sleep_until(*due).await,
            None => std::future::pending().await,
        }
    }

    /// Hands the refusals that are due to `answers`.
    fn release_due(&mut self, answers: &mut Answers) {
        let now = Instant::now();
        while self.0.front().is_some_and(|(due, _, _)| *due <= now) {
            if let Some((_, id, refused)) = self.0.pop_front() {
                answers.resolve(id, refused);
            }
        }
    }
}

/// Bytes asked of the socket per read.
const READ_SIZE: usize = 64 * 1024;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Frames of one session taken and not yet answered.
    #[serde(default = "default_window")]
    pub window: usize,
    /// Largest frame data in bytes.
    #[serde(default = "default_max_frame")]
    pub max_frame: usize,
}

/// The port it listens on when `port` is not given.
pub const DEFAULT_PORT: u16 = 2514;

fn default_window() -> usize {
    128
}

fn default_max_frame() -> usize {
    128 * 1024
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let (listening, own) = Listening::split(arguments, DEFAULT_PORT)?;
    let config: Config = own.deserialize()?;
    if config.window == 0 || config.max_frame == 0 {
        return Err(ArgumentError::new(
            "`window` and `max_frame` must be at least 1",
        ));
    }
    Ok(Box::new(RelpInput { config, listening }))
}

/// The module: a listener and one task per session.
pub struct RelpInput {
    config: Config,
    listening: Listening,
}

/// What the sessions of one input did.
#[derive(Debug)]
struct Counters {
    events: Counted,
    accepted: Counted,
    refused: Counted,
    malformed: Counted,
}

impl Module for RelpInput {
    fn run(
        self: Box<Self>,
        context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        Box::pin(self.serve(context))
    }

    fn listens(&self) -> Option<ListenAddress> {
        Some(self.listening.address())
    }

    /// A reload that changes only these keeps the input and its sessions.
    fn live_arguments(&self) -> &'static [&'static str] {
        &wishbone_listen::LIVE
    }
}

impl RelpInput {
    async fn serve(self, mut context: ModuleContext) -> Result<(), ModuleError> {
        let outbox = context.outgoing("outbox");
        let stop = context.stopping();
        let name = context.name().to_string();
        let counted = |counter: &str| Counted::new(&name, counter);
        let counters = Arc::new(Counters {
            events: counted("events"),
            accepted: counted("accepted"),
            refused: counted("refused"),
            malformed: counted("malformed"),
        });
        let config = &self.config;
        let totals = self
            .listening
            .serve_spread(&mut context, |peer, context| {
                let session = Session {
                    module: context.name().to_string(),
                    peer,
                    window: config.window,
                    max_frame: config.max_frame,
                    outbox: outbox.clone(),
                    stop: stop.clone(),
                    abort: context.aborting(),
                    counters: counters.clone(),
                };
                move |socket, presence| session.serve(socket, presence)
            })
            .await?;
        tracing::info!(
            module = %name,
            connections = totals.connections,
            events = counters.events.total(),
            accepted = counters.accepted.total(),
            refused = counters.refused.total(),
            malformed = counters.malformed.total(),
            accept_failures = totals.accept_failures,
            handshake_failures = totals.handshake_failures,
            evicted = totals.evicted,
            timed_out = totals.timed_out,
            "input totals"
        );
        Ok(())
    }
}

/// One client's session.
struct Session {
    module: String,
    peer: SocketAddr,
    window: usize,
    max_frame: usize,
    outbox: Sender,
    stop: CancellationToken,
    abort: CancellationToken,
    counters: Arc<Counters>,
}

/// Why a session ends.
enum Ending {
    /// The client closed, or asked to.
    Client,
    /// The server stops: answer what was taken, then `serverclose`.
    Stop,
    /// A protocol error, a read or write that failed, an abort.
    Broken(String),
}

/// What one session keeps while it runs.
struct Exchange {
    issuer: AckIssuer,
    replies: ack::Replies,
    answers: Answers,
    reading: ReadBuffer,
    /// Answers encoded, to write.
    out: BytesMut,
    /// The client sent `open`.
    opened: bool,
    batches: u64,
    /// Why the session ends, once it knows (it ends once everything
    /// taken is answered).
    ending: Option<Ending>,
    /// The buffer may hold whole frames not yet taken.
    unread_frames: bool,
    refusals: Refusals,
}

impl Default for Exchange {
    fn default() -> Self {
        let (issuer, replies) = ack::issuer();
        Self {
            issuer,
            replies,
            answers: Answers::default(),
            reading: ReadBuffer::new(READ_SIZE),
            out: BytesMut::new(),
            opened: false,
            batches: 0,
            ending: None,
            unread_frames: false,
            refusals: Refusals::default(),
        }
    }
}

/// How far [`Session::take`] got through the buffer.
enum Taken {
    /// Every whole frame: the rest waits for more bytes.
    All,
    /// As many `syslog` frames as the window had room for.
    UpToWindow,
    /// Up to the client's `close`.
    Close,
}

/// What the frames of one read ask for, in their order.
enum Item {
    /// `syslog` frames in a row: their transaction numbers and data.
    Events { txnrs: Vec<u32>, data: Vec<Bytes> },
    /// A frame answered at once.
    Answer { txnr: u32, data: Bytes },
    /// The client sent `close` (answered after everything before it).
    Close { txnr: u32 },
}

impl Session {
    async fn serve(self, stream: impl AsyncRead + AsyncWrite + Unpin, presence: Presence) {
        tracing::debug!(module = %self.module, peer = %self.peer, "session connected");
        let (mut reader, mut writer) = tokio::io::split(stream);
        let mut exchange = Exchange::default();
        let ending = loop {
            if let Err(broken) = self
                .answer(&mut exchange.answers, &mut exchange.out, &mut writer)
                .await
            {
                break broken;
            }
            if exchange.ending.is_some() && exchange.answers.is_empty() {
                break exchange.ending.take().unwrap_or(Ending::Client);
            }
            let room = self.window.saturating_sub(exchange.answers.unanswered());
            // Whole frames already read are taken before reading more, as
            // the window allows: a client that sends without reading
            // answers has at most `window` frames unanswered.
            if exchange.ending.is_none() && room > 0 && exchange.unread_frames {
                if let Err(broken) = self.take_read(&mut exchange, room, &presence).await {
                    break broken;
                }
                continue;
            }
            if let Some(broken) = self.wait(&mut exchange, &mut reader, room, &presence).await {
                break broken;
            }
        };
        self.end(ending, &mut writer).await;
    }

    /// Takes the whole frames read, as many as `room` allows.
    async fn take_read(
        &self,
        exchange: &mut Exchange,
        room: usize,
        presence: &Presence,
    ) -> Result<(), Ending> {
        let before = exchange.reading.bytes.len();
        let taken = self
            .take(
                &mut exchange.reading.bytes,
                &mut exchange.opened,
                room,
                &exchange.issuer,
                &mut exchange.answers,
                &mut exchange.batches,
            )
            .await;
        let left = exchange.reading.bytes.len();
        match &taken {
            Ok(Taken::UpToWindow) => presence.held_back(),
            _ => presence.progress(left < before, left > 0),
        }
        match taken? {
            Taken::All => exchange.unread_frames = false,
            Taken::UpToWindow => {}
            Taken::Close => exchange.ending = Some(Ending::Client),
        }
        Ok(())
    }

    /// Waits for what comes next: an outcome downstream, a refusal's
    /// time, a stop, more bytes (while the window has `room`). The end
    /// when the session cannot go on.
    async fn wait(
        &self,
        exchange: &mut Exchange,
        reader: &mut (impl AsyncRead + Unpin),
        room: usize,
        presence: &Presence,
    ) -> Option<Ending> {
        let readable = exchange.ending.is_none() && room > 0;
        if readable {
            exchange.reading.make_room();
        }
        let open = exchange.ending.is_none();
        tokio::select! {
            biased;
            _ = self.abort.cancelled() => Some(Ending::Broken("aborted".into())),
            Some((id, outcome)) = exchange.replies.recv() => {
                match outcome {
                    // A refusal waits a moment: a client that sends again
                    // at once is held back instead of spinning on 500s.
                    Outcome::Acknowledged => exchange.answers.resolve(id, Outcome::Acknowledged),
                    refused => exchange.refusals.hold(id, refused),
                }
                None
            }
            () = exchange.refusals.due(), if !exchange.refusals.is_empty() => {
                exchange.refusals.release_due(&mut exchange.answers);
                None
            }
            _ = self.stop.cancelled(), if open => {
                exchange.ending = Some(Ending::Stop);
                None
            }
            closing = presence.closing(), if open => Some(Ending::Broken(format!("{closing:?}"))),
            read = reader.read_buf(&mut exchange.reading.bytes), if readable => match read {
                // The client is gone: nobody is left to answer.
                Ok(0) => Some(Ending::Client),
                Err(error) => Some(Ending::Broken(format!("read failed: {error}"))),
                Ok(count) => {
                    exchange.reading.read(count);
                    exchange.unread_frames = true;
                    None
                }
            },
        }
    }

    /// Writes the answers that are ready, in order; the session's end
    /// when they cannot be written.
    async fn answer(
        &self,
        answers: &mut Answers,
        out: &mut BytesMut,
        writer: &mut (impl AsyncWrite + Unpin),
    ) -> Result<(), Ending> {
        let answered = answers.take_ready(out);
        self.counters.accepted.add(answered.accepted as u64);
        self.counters.refused.add(answered.refused as u64);
        if out.is_empty() {
            return Ok(());
        }
        let written = tokio::select! {
            biased;
            _ = self.abort.cancelled() => Err(std::io::Error::other("aborted")),
            written = writer.write_all(out) => written,
        };
        out.clear();
        written.map_err(|error| Ending::Broken(format!("cannot answer: {error}")))
    }

    /// Ends the session: `serverclose` when the server stops, then the
    /// stream is shut.
    async fn end(&self, ending: Ending, writer: &mut (impl AsyncWrite + Unpin)) {
        if matches!(ending, Ending::Stop) {
            let mut close = BytesMut::new();
            relp::encode(&mut close, 0, "serverclose", b"");
            let _ = writer.write_all(&close).await;
        }
        let _ = writer.shutdown().await;
        if let Ending::Broken(reason) = ending {
            tracing::debug!(module = %self.module, peer = %self.peer, %reason, "session ended");
        }
    }

    /// Takes the whole frames in `buffer`, at most `room` of them `syslog`
    /// frames: sends their events downstream and notes their answers.
    async fn take(
        &self,
        buffer: &mut BytesMut,
        opened: &mut bool,
        room: usize,
        issuer: &AckIssuer,
        answers: &mut Answers,
        batches: &mut u64,
    ) -> Result<Taken, Ending> {
        let (items, taken) = match self.take_frames(buffer, opened, room) {
            Ok(found) => found,
            Err(reason) => {
                self.counters.malformed.add(1);
                tracing::warn!(module = %self.module, peer = %self.peer, %reason, "closing a RELP session");
                return Err(Ending::Broken(reason));
            }
        };
        let mut closed = false;
        for item in items {
            match item {
                Item::Events { txnrs, data } => {
                    for (txnrs, data) in self.chunks(txnrs, data) {
                        *batches += 1;
                        if !self.forward(*batches, data, issuer).await {
                            return Err(Ending::Broken("aborted".into()));
                        }
                        answers.batch(*batches, txnrs);
                    }
                }
                Item::Answer { txnr, data } => answers.ready(txnr, data),
                Item::Close { txnr } => {
                    answers.ready(txnr, Bytes::new());
                    closed = true;
                }
            }
        }
        Ok(if closed { Taken::Close } else { taken })
    }

    /// Reads the whole frames in `buffer`, in order, until `room` `syslog`
    /// frames are taken. An error is the reason to close the session.
    fn take_frames(
        &self,
        buffer: &mut BytesMut,
        opened: &mut bool,
        room: usize,
    ) -> Result<(Vec<Item>, Taken), String> {
        let mut items = Vec::new();
        let mut events = 0;
        loop {
            if events == room {
                return Ok((items, Taken::UpToWindow));
            }
            let Frame {
                txnr,
                command,
                data,
            } = match relp::decode(buffer, self.max_frame) {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok((items, Taken::All)),
                Err(error) => return Err(error.to_string()),
            };
            match (&command[..], *opened) {
                (b"open", false) => {
                    *opened = true;
                    let offers = format!("200 OK\n{}", relp::OFFERS);
                    items.push(Item::Answer {
                        txnr,
                        data: offers.into(),
                    });
                }
                (b"open", true) => return Err("a second open".into()),
                (_, false) => return Err("a frame before open".into()),
                (b"syslog", true) => {
                    events += 1;
                    match items.last_mut() {
                        Some(Item::Events { txnrs, data: all }) => {
                            txnrs.push(txnr);
                            all.push(data);
                        }
                        _ => items.push(Item::Events {
                            txnrs: vec![txnr],
                            data: vec![data],
                        }),
                    }
                }
                (b"close", true) => {
                    // Nothing after a close counts.
                    buffer.clear();
                    items.push(Item::Close { txnr });
                    return Ok((items, Taken::Close));
                }
                (_, true) => items.push(Item::Answer {
                    txnr,
                    data: Bytes::from_static(b"500 command not supported"),
                }),
            }
        }
    }

    /// The frames in parcels no larger than the outbox holds.
    fn chunks(&self, mut txnrs: Vec<u32>, mut data: Vec<Bytes>) -> Vec<(Vec<u32>, Vec<Bytes>)> {
        let size = self.outbox.capacity().max(1);
        let mut chunks = Vec::new();
        while txnrs.len() > size {
            let (rest_txnrs, rest_data) = (txnrs.split_off(size), data.split_off(size));
            chunks.push((txnrs, data));
            (txnrs, data) = (rest_txnrs, rest_data);
        }
        chunks.push((txnrs, data));
        chunks
    }

    /// Sends the events of one read downstream as one parcel with one
    /// token (lines when no event holds a newline); false on an abort.
    async fn forward(&self, id: u64, data: Vec<Bytes>, issuer: &AckIssuer) -> bool {
        let token = issuer.issue(id);
        let parcel = if data.iter().all(|data| !data.contains(&b'\n')) {
            let bytes = data.iter().map(|data| data.len() + 1).sum();
            let mut builder = LinesBuilder::new(Bytes::from_static(b"\n"), bytes, data.len());
            for data in &data {
                builder.push(data);
            }
            Parcel::Lines(builder.finish().with_ack(token))
        } else {
            let shares = token.each(data.len());
            Parcel::Events(
                data.into_iter()
                    .zip(shares)
                    .map(|(data, share)| Event::new(data).with_ack(share))
                    .collect(),
            )
        };
        let count = parcel.len() as u64;
        let sent = tokio::select! {
            biased;
            sent = self.outbox.send(parcel) => sent,
            _ = self.abort.cancelled() => return false,
        };
        if sent.is_ok() {
            self.counters.events.add(count);
        }
        // A closed outbox drops the parcel, and its token fails: answered 500.
        true
    }
}
