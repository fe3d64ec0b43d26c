//! What one kind of output says about its peer, and nothing else: how to
//! connect ([`Transport`]), and on a live connection how to write
//! ([`Connection::send`]), what the peer said ([`Connection::heard`], which
//! only reads) and how to end. Everything else (the inbox, backoff,
//! `failed` and `success`, stalls, resends, draining) is the pump's and the
//! shell's, the same for every output.

use std::future::Future;
use std::time::{Duration, Instant};

use wishbone_runtime::{Event, Lines, Parcel};

use crate::delivery::Delivery;

/// How one kind of output reaches its peer.
pub trait Transport {
    /// A live connection.
    type Connection: Connection;

    /// Where it connects, for logs.
    fn target(&self) -> String;

    /// One attempt to connect (handshakes included); the shell bounds it
    /// with `timeout` and retries with backoff.
    fn connect(&mut self) -> impl Future<Output = Result<Self::Connection, String>>;

    /// Called once, before the first connection, with the module's name:
    /// a transport with metrics of its own names them after it
    /// (`wishbone_runtime::module_metric`).
    fn named(&mut self, _module: &str) {}

    /// A connection is over (after [`Connection::finish`]): what it
    /// learned that outlives it (a batch size, connections left open)
    /// comes back here for the next one.
    fn ended(&mut self, _connection: Self::Connection) {}
}

/// What a connection heard from its peer.
#[derive(Debug, PartialEq, Eq)]
pub enum Heard {
    /// The peer has everything up to this position.
    Acknowledged(u64),
    /// The peer has every message before `message`, and refuses that one
    /// for good (it alone, sent alone, was refused): it goes to `failed`
    /// or is dropped, counted as rejected and logged with `reason`.
    Refused {
        /// The refused message's number.
        message: u64,
        /// Why, for the log.
        reason: String,
    },
    /// The connection has writing of its own to do now (bytes the socket
    /// did not take has room for them, a batch's time is up): the pump
    /// calls [`Connection::send`] with no new parcels.
    Writable,
    /// The connection ends to send what it did not acknowledge again at
    /// once: the peer answered, only the data was wrong (an HTTP store
    /// that refused a batch: its events go again in halves). No backoff
    /// wait, and no outage in the log.
    Again(String),
}

/// One live connection to the peer, driven by the pump, which does every
/// write through [`Connection::send`].
///
/// Positions are in one unit per connection, counted from its start: bytes
/// of the stream (recorded with [`Sent::lines`] or [`Sent::event_ending_at`])
/// or messages (recorded with [`Sent::messages`]). Every acknowledgement
/// says "everything up to this position".
pub trait Connection {
    /// How many more events the connection takes now, with `in_flight`
    /// written and not yet acknowledged (a window, a limit of pending
    /// publishes); 0 pauses the inbox.
    fn room(&self, in_flight: usize) -> usize;

    /// Writes `parcels` (at most [`Connection::room`] events; none after
    /// [`Heard::Writable`]) and records every one of their events in
    /// `sent`, whatever happens: with its position, as never acknowledged
    /// (a write that failed), as unsent (never written), or as rejected.
    /// An error ends the connection; what it did not acknowledge is sent
    /// again on the next one, or fails over.
    fn send(
        &mut self,
        parcels: Vec<Parcel>,
        sent: &mut Sent<'_>,
    ) -> impl Future<Output = Result<(), String>>;

    /// Waits until there is news of the peer ([`Heard`]), or the
    /// connection is over (an error). It only reads: reading a close
    /// handshake is news, answering it is [`Connection::finish`]'s. It
    /// runs beside the inbox and may be dropped at any await: it must
    /// lose nothing when it is.
    fn heard(&mut self) -> impl Future<Output = Result<Heard, String>>;

    /// What a peer that acknowledged nothing for `timeout` while something
    /// was outstanding means.
    fn on_stall(&self) -> OnStall {
        OnStall::RouteAround
    }

    /// Everything was delivered and the inbox is closed: ends the
    /// connection as the protocol asks, within `timeout`.
    fn close(&mut self, timeout: Duration) -> impl Future<Output = ()>;

    /// The connection is over (`lost`: it died or was given up on): ends
    /// what the protocol still asks for (a close handshake to answer),
    /// and returns the last acknowledgement it can still learn of, if any
    /// (over TCP, the kernel's count once it settled).
    fn finish(&mut self, _lost: bool) -> impl Future<Output = Option<u64>> {
        std::future::ready(None)
    }
}

/// [`Connection::room`] of a connection whose bound is soft (on what is in
/// flight, or written and waiting for the socket), not a protocol's window:
/// everything waiting while `used` is below `bound`, nothing once it is not.
pub fn room_below(used: usize, bound: usize) -> usize {
    if used < bound { usize::MAX } else { 0 }
}

/// What a stalled peer means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnStall {
    /// Lock the inbox (a round robin routes around this output) and, with
    /// `failed: true`, hand new events to `failed`, until acknowledgements
    /// move again: for a byte stream whose peer may just be slow.
    RouteAround,
    /// End the connection: for protocols that answer each message, where
    /// silence means the session is broken.
    Reconnect,
}

/// What [`Connection::send`] records its events in: their positions on the
/// connection, or why they have none.
pub struct Sent<'a> {
    delivery: &'a mut Delivery,
    now: Instant,
    timeout: Duration,
    rejected: Vec<(Event, String)>,
    delivered: Option<u64>,
}

impl<'a> Sent<'a> {
    #[inline]
    pub(crate) fn new(delivery: &'a mut Delivery, timeout: Duration) -> Self {
        Self {
            delivery,
            now: Instant::now(),
            timeout,
            rejected: Vec::new(),
            delivered: None,
        }
    }

    /// How long a write may wait for a peer that stopped reading: the
    /// output's `timeout`.
    #[inline]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Lines written as bytes after everything recorded so far on this
    /// connection; `events` are the events they encode, when some carry a
    /// token ([`Parcel::into_wire`] gives both).
    #[inline]
    pub fn lines(&mut self, lines: Lines, events: Option<wishbone_runtime::Batch>) {
        self.delivery.record_lines(lines, events, self.now);
    }

    /// Moves the next byte record's start to `position` (never back): for a
    /// stream whose positions count more bytes than the events' (TLS
    /// records), so that lines recorded next end where they really end.
    #[inline]
    pub fn skip_to(&mut self, position: u64) {
        self.delivery.skip_to(position);
    }

    /// Lines written one frame each (a websocket's), the frame of a payload
    /// of `n` bytes being `frame(n)` bytes long, the last ending at byte
    /// `end` of the stream. An `end` later than the truth (control frames
    /// written in between) only delays acknowledgements, so a count of
    /// bytes written taken after the frames is a safe one. `events` as for
    /// [`Sent::lines`]. Ends must not decrease.
    #[inline]
    pub fn frames(
        &mut self,
        lines: Lines,
        events: Option<wishbone_runtime::Batch>,
        frame: fn(usize) -> usize,
        end: u64,
    ) {
        self.delivery
            .record_frames(lines, events, frame, end, self.now);
    }

    /// One event whose encoding ends at byte `end` of the stream (a
    /// websocket frame). Ends must not decrease.
    #[inline]
    pub fn event_ending_at(&mut self, event: Event, end: u64) {
        self.delivery.record_event(event, end, self.now);
    }

    /// A parcel written as one message per event, numbered on from the
    /// connection's last message (the first is 1). Returns the number of
    /// its last message.
    #[inline]
    pub fn messages(&mut self, parcel: Parcel) -> u64 {
        self.delivery.record_messages(parcel, self.now)
    }

    /// What a write that failed carried: this connection will never
    /// acknowledge it; the next one sends it again (counted as resent).
    #[inline]
    pub fn never_acknowledged(&mut self, parcel: Parcel) {
        self.delivery.record_never_acknowledged(parcel);
    }

    /// What was never written (the connection broke first): the next
    /// connection sends it, not as a resend.
    #[inline]
    pub fn unsent(&mut self, parcel: Parcel) {
        self.delivery.record_unsent(parcel);
    }

    /// An event the peer can never take (larger than it accepts): sending
    /// it again would only block what follows. It goes to `failed` when a
    /// route takes that queue, else it is dropped and counted; either way
    /// it is counted in `module.<name>.rejected` and logged with `reason`.
    pub fn reject(&mut self, event: Event, reason: String) {
        self.rejected.push((event, reason));
    }

    /// How far the write itself delivered, for a peer that is known to
    /// have what was written as soon as the write returns (a file, written
    /// and synced when asked): no [`Connection::heard`] needed.
    #[inline]
    pub fn delivered(&mut self, position: u64) {
        self.delivered = Some(self.delivered.map_or(position, |known| known.max(position)));
    }

    /// What the write rejected, and how far it delivered.
    #[inline]
    pub(crate) fn into_outcome(self) -> (Vec<(Event, String)>, Option<u64>) {
        (self.rejected, self.delivered)
    }
}
