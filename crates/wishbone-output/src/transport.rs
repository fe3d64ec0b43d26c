//! What one kind of output says about its peer, and nothing else: how to
//! connect ([`Transport`]), and on a live connection how to write a batch,
//! learn what was acknowledged and end ([`Connection`]). Everything else
//! (the inbox, backoff, `failed` and `success`, stalls, resends, draining)
//! is the pump's and the shell's, the same for every output.

use std::future::Future;
use std::time::{Duration, Instant};

use wishbone_runtime::{Event, Lines, Parcel};

use crate::delivery::Delivery;
use crate::tcp::{ACK_INTERVAL, Progress};

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
}

/// One live connection to the peer, driven by the pump.
///
/// Positions are in one unit per connection, counted from its start: bytes
/// of the stream (recorded with [`Sent::lines`] or [`Sent::event_ending_at`])
/// or messages (recorded with [`Sent::messages`]). Every acknowledgement
/// returned says "everything up to this position", and never goes back.
pub trait Connection {
    /// How many more events the connection takes now, with `in_flight`
    /// written and not yet acknowledged (a window, a limit of pending
    /// publishes); 0 pauses the inbox.
    fn room(&self, in_flight: usize) -> usize;

    /// Writes `parcels` (at most [`Connection::room`] events) and records
    /// every one of their events in `sent`, whatever happens: with its
    /// position, as never acknowledged (a write that failed), as unsent
    /// (never written), or as rejected. An error ends the connection; what it
    /// did not acknowledge is sent again on the next one, or fails over.
    fn send(
        &mut self,
        parcels: Vec<Parcel>,
        sent: &mut Sent<'_>,
    ) -> impl Future<Output = Result<(), String>>;

    /// Waits until the peer says something: how far it acknowledged
    /// (`Some`), nothing worth reporting (`None`: a wake-up, a read that
    /// carried no acknowledgement), or that the connection is over (an
    /// error). It runs beside the inbox and may be dropped at any await:
    /// it must lose nothing when it is.
    fn heard(&mut self) -> impl Future<Output = Result<Option<u64>, String>>;

    /// For a connection over a [`CountingSocket`](crate::tcp::CountingSocket)
    /// (under TLS, a websocket): its [`Progress`], from which the defaults
    /// of [`Connection::acknowledged`], [`Connection::tick`],
    /// [`Connection::tick_every`] and [`Connection::finish`] learn what the
    /// peer's TCP stack acknowledged.
    fn counting(&self) -> Option<&Progress> {
        None
    }

    /// How far the peer acknowledged, as known now without waiting. Asked
    /// at every turn while something is unacknowledged.
    fn acknowledged(&mut self) -> Result<Option<u64>, String> {
        Ok(self.counting().and_then(Progress::acknowledged_now))
    }

    /// Asked every [`Connection::tick_every`] while something is
    /// unacknowledged: a safety net for acknowledgements [`Connection::heard`]
    /// would miss. Stalls are checked on the same tick.
    fn tick(&mut self) -> Result<Option<u64>, String> {
        Ok(self.counting().and_then(Progress::kernel_count))
    }

    /// How often [`Connection::tick`] runs: every [`ACK_INTERVAL`] over a
    /// counting socket, else every 100 ms.
    fn tick_every(&self) -> Duration {
        match self.counting() {
            Some(_) => ACK_INTERVAL,
            None => Duration::from_millis(100),
        }
    }

    /// What a peer that acknowledged nothing for `timeout` while something
    /// was outstanding means.
    fn on_stall(&self) -> OnStall {
        OnStall::RouteAround
    }

    /// Whether the connection ended only to send its events again at once
    /// (an HTTP store that refused a batch for its data: the events go
    /// again in halves), not because the peer is down: the shell then
    /// reconnects without a backoff wait and without calling it an outage.
    fn again_at_once(&self) -> bool {
        false
    }

    /// Everything was delivered and the inbox is closed: ends the
    /// connection as the protocol asks, within `timeout`.
    fn close(&mut self, timeout: Duration) -> impl Future<Output = ()>;

    /// The connection is over (`lost`: it died or was given up on): the
    /// last acknowledgement it can still learn of, if any. Over a counting
    /// socket, the kernel's count once it settled.
    fn finish(&mut self, lost: bool) -> impl Future<Output = Option<u64>> {
        let progress = self.counting().cloned();
        async move {
            match progress {
                Some(progress) => progress.finish(lost).await,
                None => None,
            }
        }
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
}

impl<'a> Sent<'a> {
    #[inline]
    pub(crate) fn new(delivery: &'a mut Delivery, timeout: Duration) -> Self {
        Self {
            delivery,
            now: Instant::now(),
            timeout,
            rejected: Vec::new(),
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

    #[inline]
    pub(crate) fn into_rejected(self) -> Vec<(Event, String)> {
        self.rejected
    }
}
