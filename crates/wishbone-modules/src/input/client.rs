//! One stream client of an input that cuts what it reads into lines (the
//! tcp input's clients and the unix input's in `type: stream`): it reads
//! up to 256 KiB at a time, frames lines or octet-counted frames, and puts
//! each read's complete lines on the outbox as one parcel, waiting while
//! the outbox is full, so that a slow pipeline slows the sender through
//! the stream's own flow control.

use std::sync::Arc;

use arc_swap::ArcSwap;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::sync::CancellationToken;
use wishbone_codecs::multiline::Grouper;
use wishbone_listen::Presence;
use wishbone_runtime::queue::Sender;
use wishbone_runtime::{ArgumentError, Counted, Event, Parcel};

use super::read_buffer::ReadBuffer;
use crate::config::delimiter_bytes;
use wishbone_codecs::framing::{Framing, StreamFramer};
use wishbone_codecs::lines::Overlong;
use wishbone_codecs::octet_counted::Malformed;

/// Waits until `deadline` (forever without one).
async fn until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

/// Bytes asked of the stream per read; one read becomes one parcel.
const READ_SIZE: usize = 256 * 1024;

/// What the clients of one input did: metrics as they happen, and the
/// totals logged when it stops.
#[derive(Debug)]
pub(crate) struct Counters {
    pub(crate) events: Counted,
    pub(crate) truncated: Counted,
    pub(crate) dropped: Counted,
    pub(crate) incomplete: Counted,
    pub(crate) malformed: Counted,
    pub(crate) multiline_cut: Counted,
}

impl Counters {
    pub(crate) fn new(module: &str) -> Self {
        Self {
            events: Counted::new(module, "events"),
            truncated: Counted::new(module, "truncated"),
            dropped: Counted::new(module, "dropped"),
            incomplete: Counted::new(module, "incomplete"),
            malformed: Counted::new(module, "malformed"),
            multiline_cut: Counted::new(module, "multiline_cut"),
        }
    }
}

/// How lines are cut.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Cutting {
    pub(crate) framing: Framing,
    pub(crate) delimiter: Bytes,
    pub(crate) max_line_length: usize,
    pub(crate) overlong: Overlong,
}

impl Cutting {
    /// From the arguments that say how lines are cut.
    pub(crate) fn of(
        framing: Framing,
        delimiter: &str,
        max_line_length: usize,
        overlong: Overlong,
    ) -> Result<Self, ArgumentError> {
        Ok(Self {
            framing,
            delimiter: delimiter_bytes(delimiter)?,
            max_line_length,
            overlong,
        })
    }

    pub(crate) fn framer(&self) -> StreamFramer {
        StreamFramer::new(
            self.framing,
            &self.delimiter,
            self.max_line_length,
            self.overlong,
        )
    }
}

/// The cutting every client follows: a reload replaces it.
pub(crate) type SharedCutting = Arc<ArcSwap<Cutting>>;

/// Follows reloads that change how lines are cut (`cutting_of` reads the
/// new arguments): every client takes the new cutting after its next read.
pub(crate) async fn follow_updates(
    module: String,
    mut updates: tokio::sync::watch::Receiver<wishbone_runtime::Arguments>,
    cutting: SharedCutting,
    cutting_of: impl Fn(&wishbone_runtime::Arguments) -> Result<Cutting, ArgumentError>,
) {
    while updates.changed().await.is_ok() {
        let arguments = updates.borrow_and_update().clone();
        match cutting_of(&arguments) {
            Ok(new) => {
                tracing::info!(module = %module, max_line_length = new.max_line_length, framing = ?new.framing, "new line cutting for every client");
                cutting.store(Arc::new(new));
            }
            Err(error) => tracing::error!(module = %module, %error, "reloaded arguments not taken"),
        }
    }
}

/// One connected client.
pub(crate) struct Client {
    pub(crate) module: String,
    /// Who it is, for logs.
    pub(crate) peer: String,
    pub(crate) framer: StreamFramer,
    /// How the input cuts lines now (a reload may change it).
    pub(crate) cutting: SharedCutting,
    pub(crate) outbox: Sender,
    pub(crate) stop: CancellationToken,
    pub(crate) abort: CancellationToken,
    pub(crate) counters: Arc<Counters>,
    /// With `multiline`: the lines of this client joined into events.
    pub(crate) grouper: Option<Grouper>,
}

impl Client {
    /// Reads `stream` until it ends, the server stops or `presence` says
    /// to close.
    pub(crate) async fn serve(mut self, mut stream: impl AsyncRead + Unpin, presence: Presence) {
        tracing::debug!(module = %self.module, peer = %self.peer, "client connected");
        let mut reading = ReadBuffer::new(READ_SIZE);
        // Overlong lines already counted: (truncated, dropped).
        let mut reported = (0, 0);
        let mut cut = self.cutting.load_full();
        loop {
            reading.make_room();
            let deadline = self.grouper.as_ref().and_then(Grouper::deadline);
            let read = tokio::select! {
                biased;
                _ = self.stop.cancelled() => {
                    if !reading.bytes.is_empty() {
                        self.counters.incomplete.add(1);
                    }
                    break;
                }
                closing = presence.closing() => {
                    if !reading.bytes.is_empty() {
                        self.counters.incomplete.add(1);
                    }
                    tracing::debug!(module = %self.module, peer = %self.peer, ?closing, "closing a client");
                    break;
                }
                () = until(deadline), if deadline.is_some() => {
                    let expired = self.grouped(Parcel::default(), false);
                    if !self.forward(expired).await {
                        return;
                    }
                    continue;
                }
                read = stream.read_buf(&mut reading.bytes) => read,
            };
            let ended = match read {
                Ok(0) => true,
                Ok(count) => {
                    reading.read(count);
                    false
                }
                Err(error) => {
                    tracing::debug!(module = %self.module, peer = %self.peer, %error, "client read failed");
                    true
                }
            };
            self.follow_cutting(&mut cut, &mut reported);
            let before = reading.bytes.len();
            let framed = if ended {
                self.framer.finish(&mut reading.bytes)
            } else {
                self.framer.split(&mut reading.bytes)
            };
            let (parcel, framing) = framed;
            let malformed = framing.is_err();
            if let Err(Malformed(reason)) = framing {
                tracing::warn!(module = %self.module, peer = %self.peer, %reason, "closing a client: malformed frame");
                self.counters.malformed.add(1);
            }
            if ended && !reading.bytes.is_empty() && !malformed {
                self.counters.incomplete.add(1);
            }
            presence.progress(reading.bytes.len() < before, !reading.bytes.is_empty());
            self.count_overlong(&mut reported);
            let parcel = self.grouped(parcel, ended || malformed);
            if !self.forward(parcel).await || ended || malformed {
                break;
            }
        }
        let last = self.grouped(Parcel::default(), true);
        self.forward(last).await;
        tracing::debug!(module = %self.module, peer = %self.peer, "client disconnected");
    }

    /// With `multiline`: the events the lines of `parcel` finish, with the
    /// group whose time is up (or, at the `end` of the client, the one
    /// open). Without, the parcel as it is.
    fn grouped(&mut self, parcel: Parcel, end: bool) -> Parcel {
        let Some(grouper) = &mut self.grouper else {
            return parcel;
        };
        let now = std::time::Instant::now();
        let before = grouper.cut();
        let mut groups = Vec::new();
        grouper.flush_expired(now, &mut groups);
        for event in parcel.into_events() {
            grouper.push(event.data(), 0, now, &mut groups);
        }
        if end {
            grouper.flush(&mut groups);
        }
        let cut = grouper.cut() - before;
        if cut > 0 {
            if self.counters.multiline_cut.total() == 0 {
                tracing::warn!(module = %self.module, peer = %self.peer, "a multi-line group was longer than max_bytes: cut, and counted in multiline_cut");
            }
            self.counters.multiline_cut.add(cut);
        }
        Parcel::Events(
            groups
                .into_iter()
                .map(|group| Event::new(group.data))
                .collect(),
        )
    }

    /// Takes a reload's new cutting, `cut` being the one in use: when only
    /// the limit changed the framer keeps its state; else a new one cuts
    /// what waits (a line under way included), and its counts start again.
    fn follow_cutting(&mut self, cut: &mut Arc<Cutting>, reported: &mut (u64, u64)) {
        if Arc::ptr_eq(&self.cutting.load(), cut) {
            return;
        }
        let now = self.cutting.load_full();
        let same = Cutting {
            max_line_length: now.max_line_length,
            ..Cutting::clone(cut)
        };
        if same == *now {
            self.framer.set_max_line_length(now.max_line_length);
        } else {
            self.framer = now.framer();
            *reported = (0, 0);
        }
        *cut = now;
    }

    /// Counts the lines cut or dropped for their length since `reported`
    /// (logged at the first).
    fn count_overlong(&self, reported: &mut (u64, u64)) {
        let (truncated, dropped) = self.framer.overlong();
        if (truncated, dropped) == *reported {
            return;
        }
        self.counters.truncated.add(truncated - reported.0);
        self.counters.dropped.add(dropped - reported.1);
        if *reported == (0, 0) {
            tracing::warn!(module = %self.module, peer = %self.peer, "a line was longer than max_line_length");
        }
        *reported = (truncated, dropped);
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
            self.counters.events.add(count as u64);
        }
        true
    }
}
