//! What every output decides about its events, with no I/O: the delivery
//! core every output that reaches a peer shares.
//!
//! An output owns one [`Delivery`] for its whole life, across connections.
//! Events it takes from its inbox while its peer is down are set aside
//! ([`Delivery::set_aside`]): held for the next connection, or handed to
//! `failed`. On a connection, everything written is recorded with its
//! position in the connection's stream, in the transport's own [`Unit`]:
//! a byte offset for TCP and for websocket frames
//! ([`Delivery::record_lines`], [`Delivery::record_frames`],
//! [`Delivery::record_event`]), a message
//! number for protocols that acknowledge messages (RELP, NATS, HTTP:
//! [`Delivery::record_messages`]). What was written on a connection that can
//! no longer acknowledge it (its write failed) is recorded as such
//! ([`Delivery::record_never_acknowledged`]). The peer's acknowledgements
//! advance one position ([`Delivery::acknowledge`]), which releases every
//! event ending at or before it: its write-ahead buffer's token is resolved, and with
//! `success` it is handed on. When the connection ends
//! ([`Delivery::end`]), what was never acknowledged is exactly what to send
//! again first, or to hand to `failed`; events a write-ahead buffer sent are
//! failed back to it, which sends them again (perhaps through another
//! output). A peer that stops acknowledging for `timeout` while something is
//! outstanding is stalled ([`Delivery::stall`]), so the shell can route
//! around it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use wishbone_runtime::{Batch, Event, Lines, Parcel, Positions};

/// The decisions and records of one output.
#[derive(Debug)]
pub struct Delivery {
    /// Hand undeliverable events to `failed` instead of holding them.
    failover: bool,
    /// Hand acknowledged events to `success`.
    keep_delivered: bool,
    /// Events waiting for the next connection, oldest first.
    held: Batch,
    /// How many of `held`, at its front, a dead connection left
    /// unacknowledged: sending them again is a resend.
    held_unacknowledged: usize,
    /// What was recorded on the current connection and not acknowledged.
    records: VecDeque<Written>,
    /// Taken for the current connection and never written on it.
    unsent: Vec<Parcel>,
    /// Written (perhaps in part) on the current connection by a write that
    /// failed: never to be acknowledged by it.
    never_acknowledged: Vec<Parcel>,
    /// The unit of the current connection's positions, from its first
    /// record.
    unit: Option<Unit>,
    /// Events recorded on this connection (or taken for it) and not yet
    /// acknowledged: kept as records come and go, since the pump asks at
    /// every turn.
    in_flight: usize,
    /// Where the next record starts in the connection's stream.
    recorded: u64,
    /// How far the peer acknowledged.
    acknowledged: u64,
    /// When the acknowledged position last moved (or the first record
    /// since nothing was outstanding was made).
    last_progress: Instant,
    stalled: bool,
}

/// What a connection's positions count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Bytes of the connection's stream (a TCP peer's acknowledgements).
    Bytes,
    /// Messages, numbered from 1 on each connection (a RELP answer, a NATS
    /// PubAck, an HTTP response): acknowledging `n` acknowledges the first
    /// `n` messages.
    Messages,
}

/// Something written on a connection.
#[derive(Debug)]
enum Written {
    /// Lines starting at `start`, laid out on the connection as `placement`
    /// says; when some carry a token, the events themselves, to resolve one
    /// by one.
    Lines {
        start: u64,
        placement: Placement,
        lines: Lines,
        tokens: Option<VecDeque<Event>>,
        /// Lines at the front already released.
        released: usize,
    },
    /// One event whose encoding (or message) ends at `end`.
    Event { end: u64, event: Event },
}

/// How a record's lines lie on the connection.
#[derive(Debug)]
enum Placement {
    /// As [`Lines::data`], each line followed by its delimiter, in bytes.
    Delimited,
    /// One message each.
    Messages,
    /// Each line in a frame of its own, `frame(payload length)` bytes long;
    /// `passed` is the bytes of the frames released so far.
    Framed {
        frame: fn(usize) -> usize,
        passed: u64,
    },
}

impl Placement {
    fn unit(&self) -> Unit {
        match self {
            Placement::Messages => Unit::Messages,
            Placement::Delimited | Placement::Framed { .. } => Unit::Bytes,
        }
    }

    /// How many of `lines` are whole within their first `within` positions,
    /// never fewer than the `done` already released.
    #[inline]
    fn whole_within(&mut self, lines: &Lines, within: u64, done: usize) -> usize {
        let within = within.min(usize::MAX as u64) as usize;
        match self {
            Placement::Delimited => lines.whole_within(within).max(done),
            Placement::Messages => within.min(lines.len()).max(done),
            Placement::Framed { frame, passed } => {
                let mut whole = done;
                while whole < lines.len() {
                    let end = *passed + frame(lines.line(whole).len()) as u64;
                    if end > within as u64 {
                        break;
                    }
                    *passed = end;
                    whole += 1;
                }
                whole
            }
        }
    }
}

/// What an acknowledgement released.
#[derive(Debug, Default, PartialEq)]
pub struct Released {
    /// Events now in the peer's hands.
    pub events: usize,
    /// Bytes the acknowledgement released: the positions it advanced by
    /// for a byte stream, the released events' bytes for messages.
    pub bytes: u64,
    /// The released events, when `success` wants them.
    pub success: Batch,
}

/// A change in whether the peer keeps up.
#[derive(Debug, PartialEq, Eq)]
pub enum Stall {
    /// Nothing outstanding was acknowledged for `timeout`.
    Stalled,
    /// Acknowledgements move again.
    Resumed,
}

/// What a connection that ended left behind.
#[derive(Debug, Default, PartialEq)]
pub struct Lost {
    /// Events never acknowledged, now held to be sent again first.
    pub held: usize,
    /// Events never acknowledged, for `failed` (with `failed: true`).
    pub failed: Batch,
    /// Events failed back to the write-ahead buffer that sent them.
    pub returned: usize,
}

impl Delivery {
    /// `failover`: undeliverable events go to `failed`; `keep_delivered`:
    /// acknowledged ones go to `success`.
    pub fn new(failover: bool, keep_delivered: bool) -> Self {
        Self {
            failover,
            keep_delivered,
            held: Batch::new(),
            held_unacknowledged: 0,
            records: VecDeque::new(),
            unsent: Vec::new(),
            never_acknowledged: Vec::new(),
            unit: None,
            in_flight: 0,
            recorded: 0,
            acknowledged: 0,
            last_progress: Instant::now(),
            stalled: false,
        }
    }

    /// Takes a parcel while no connection can take it: a buffer's block
    /// of lines is failed back to it whole, anything else is set aside.
    pub fn set_aside_parcel(&mut self, parcel: Parcel) -> Batch {
        match fail_back_block(parcel) {
            Ok(_) => Batch::new(),
            Err(other) => self.set_aside(other.into_events()),
        }
    }

    /// Events taken while no connection can take them: those a write-ahead
    /// buffer sent are failed back to it, the rest are held, or returned
    /// for `failed` when failing over.
    pub fn set_aside(&mut self, batch: Batch) -> Batch {
        let mine = return_to_buffers(batch).1;
        if self.failover {
            mine
        } else {
            self.held.extend(mine);
            Batch::new()
        }
    }

    /// Whether undeliverable events go to `failed` (`failed: true`).
    pub fn fails_over(&self) -> bool {
        self.failover
    }

    /// Whether more may be taken from the inbox while down: always when
    /// failing over, else up to `capacity` held events.
    pub fn has_room(&self, capacity: usize) -> bool {
        self.failover || self.held.len() < capacity
    }

    /// A new connection: positions start again at 0. Returns what was
    /// held, to send first, and how many of it are resends.
    pub fn begin(&mut self, now: Instant) -> (Batch, usize) {
        self.records.clear();
        self.unit = None;
        self.recorded = 0;
        self.acknowledged = 0;
        self.last_progress = now;
        self.stalled = false;
        let resent = std::mem::take(&mut self.held_unacknowledged);
        (std::mem::take(&mut self.held), resent)
    }

    /// Records lines written (or about to be) as bytes after everything
    /// recorded so far; `events` are the events they encode, kept when some
    /// carry a token that must be resolved one by one.
    pub fn record_lines(&mut self, lines: Lines, events: Option<Batch>, now: Instant) {
        let length = lines.data().len() as u64;
        self.push_lines(Placement::Delimited, lines, events, length, now);
    }

    /// Records lines written one frame each, the frame of a payload of `n`
    /// bytes being `frame(n)` bytes long, the last frame ending at byte
    /// `end` of the stream (or later: then every frame is taken to end
    /// later than it does, never earlier). `events` as for
    /// [`Delivery::record_lines`]. Ends must not decrease.
    pub fn record_frames(
        &mut self,
        lines: Lines,
        events: Option<Batch>,
        frame: fn(usize) -> usize,
        end: u64,
        now: Instant,
    ) {
        let length: u64 = lines.iter().map(|line| frame(line.len()) as u64).sum();
        self.skip_to(end.saturating_sub(length));
        let placement = Placement::Framed { frame, passed: 0 };
        self.push_lines(placement, lines, events, length, now);
    }

    /// Records a parcel written (or about to be) as one message per event,
    /// after everything recorded so far: the first message of a connection
    /// is number 1. Returns the number of its last message.
    pub fn record_messages(&mut self, parcel: Parcel, now: Instant) -> u64 {
        match parcel {
            Parcel::Lines(lines) => {
                let count = lines.len() as u64;
                self.push_lines(Placement::Messages, lines, None, count, now);
            }
            Parcel::Events(batch) => {
                self.set_unit(Unit::Messages);
                for event in batch {
                    let end = self.recorded + 1;
                    self.record_at(event, end, now);
                }
            }
        }
        self.recorded
    }

    fn push_lines(
        &mut self,
        placement: Placement,
        lines: Lines,
        events: Option<Batch>,
        length: u64,
        now: Instant,
    ) {
        if lines.is_empty() {
            return;
        }
        self.set_unit(placement.unit());
        let tokens = events
            .filter(|events| events.iter().any(|event| event.ack().is_some()))
            .map(VecDeque::from);
        debug_assert!(tokens.as_ref().is_none_or(|t| t.len() == lines.len()));
        self.outstanding_from(now);
        let start = self.recorded;
        self.recorded += length;
        self.in_flight += lines.len();
        self.records.push_back(Written::Lines {
            start,
            placement,
            lines,
            tokens,
            released: 0,
        });
    }

    /// A connection counts in one unit only.
    #[inline]
    fn set_unit(&mut self, unit: Unit) {
        debug_assert!(
            self.unit.is_none_or(|current| current == unit),
            "a connection's positions count {:?}, not {unit:?}",
            self.unit
        );
        self.unit = Some(unit);
    }

    /// Moves the next record's start to `position` (never back): for a
    /// writer whose positions count more than the events' bytes (TLS
    /// records), so that lines recorded next end where their last byte
    /// really ends, and none earlier.
    #[inline]
    pub fn skip_to(&mut self, position: u64) {
        self.recorded = self.recorded.max(position);
    }

    /// Records one event whose encoding ends at byte `end` of the stream,
    /// for writers that learn positions as they write (a websocket's
    /// frames). Ends must not decrease.
    #[inline]
    pub fn record_event(&mut self, event: Event, end: u64, now: Instant) {
        self.set_unit(Unit::Bytes);
        self.record_at(event, end, now);
    }

    #[inline]
    fn record_at(&mut self, event: Event, end: u64, now: Instant) {
        self.outstanding_from(now);
        self.recorded = self.recorded.max(end);
        self.in_flight += 1;
        self.records.push_back(Written::Event { end, event });
    }

    /// Records what a write that failed carried: written perhaps in part,
    /// and never to be acknowledged by this connection. Its end holds it for
    /// the next one (sending it then is a resend), or fails it over.
    pub fn record_never_acknowledged(&mut self, parcel: Parcel) {
        if !parcel.is_empty() {
            self.in_flight += parcel.len();
            self.never_acknowledged.push(parcel);
        }
    }

    /// Records what was taken for this connection and never written on it
    /// (the connection died first): its end holds it for the next one, or
    /// fails it over, like what was written and not acknowledged, but
    /// sending it then is not a resend.
    pub fn record_unsent(&mut self, parcel: Parcel) {
        if !parcel.is_empty() {
            self.in_flight += parcel.len();
            self.unsent.push(parcel);
        }
    }

    /// Progress is measured from the first record after a quiet time.
    #[inline]
    fn outstanding_from(&mut self, now: Instant) {
        if self.records.is_empty() {
            self.last_progress = now;
        }
    }

    /// The peer acknowledged everything up to `position`: releases the
    /// events ending at or before it and resolves their tokens.
    #[inline]
    pub fn acknowledge(&mut self, position: u64, now: Instant) -> Released {
        let mut released = Released::default();
        if position <= self.acknowledged {
            return released;
        }
        let messages = self.unit == Some(Unit::Messages);
        if !messages {
            released.bytes = position - self.acknowledged;
        }
        self.acknowledged = position;
        self.last_progress = now;
        let keep = self.keep_delivered;
        let mut deliver = |event: Event| {
            event.acknowledge();
            if keep {
                released.success.push(event);
            }
        };
        while let Some(record) = self.records.front_mut() {
            match record {
                Written::Event { end, .. } => {
                    if *end > position {
                        break;
                    }
                    if let Some(Written::Event { event, .. }) = self.records.pop_front() {
                        if messages {
                            released.bytes += event.len() as u64;
                        }
                        deliver(event);
                        released.events += 1;
                    }
                }
                Written::Lines {
                    start,
                    placement,
                    lines,
                    tokens,
                    released: done,
                } => {
                    if *start >= position {
                        break;
                    }
                    let whole = placement.whole_within(lines, position - *start, *done);
                    if messages {
                        released.bytes += (*done..whole)
                            .map(|index| lines.line(index).len() as u64)
                            .sum::<u64>();
                    }
                    match tokens {
                        Some(tokens) => tokens.drain(..whole - *done).for_each(&mut deliver),
                        None if keep => lines.events(*done..whole).for_each(&mut deliver),
                        None => {}
                    }
                    released.events += whole - *done;
                    *done = whole;
                    if whole < lines.len() {
                        break;
                    }
                    if let Some(ack) = lines.take_ack() {
                        ack.acknowledge();
                    }
                    self.records.pop_front();
                }
            }
        }
        self.in_flight -= released.events;
        released
    }

    /// The peer refused message `message` for good, having every one
    /// before it ([`Delivery::acknowledge`] them first): takes its event
    /// out, settled on this connection, for `failed`. None when `message`
    /// is not the next one owed, which then stays owed.
    pub fn refuse(&mut self, message: u64, now: Instant) -> Option<Event> {
        if self.unit != Some(Unit::Messages) || message != self.acknowledged + 1 {
            return None;
        }
        let event = match self.records.front_mut()? {
            Written::Event { end, .. } if *end == message => match self.records.pop_front() {
                Some(Written::Event { event, .. }) => event,
                _ => return None,
            },
            Written::Lines {
                start,
                lines,
                tokens,
                released,
                ..
            } if *start + *released as u64 + 1 == message => {
                let event = match tokens {
                    Some(tokens) => tokens.pop_front()?,
                    None => lines.events(*released..*released + 1).next()?,
                };
                *released += 1;
                if *released == lines.len() {
                    if let Some(ack) = lines.take_ack() {
                        ack.acknowledge();
                    }
                    self.records.pop_front();
                }
                event
            }
            _ => return None,
        };
        self.acknowledged = message;
        self.last_progress = now;
        self.in_flight -= 1;
        Some(event)
    }

    /// Whether the peer stopped acknowledging (or started again): stalled
    /// when something is outstanding and the acknowledged position has not
    /// moved for `timeout`.
    pub fn stall(&mut self, now: Instant, timeout: Duration) -> Option<Stall> {
        let stuck = !self.records.is_empty()
            && now.saturating_duration_since(self.last_progress) >= timeout;
        match (self.stalled, stuck) {
            (false, true) => {
                self.stalled = true;
                Some(Stall::Stalled)
            }
            (true, false) => {
                self.stalled = false;
                Some(Stall::Resumed)
            }
            _ => None,
        }
    }

    /// True while stalled.
    pub fn is_stalled(&self) -> bool {
        self.stalled
    }

    /// The connection ended: what it never acknowledged is held to be sent
    /// again first, or returned for `failed`; a buffer's events go back to
    /// it.
    pub fn end(&mut self) -> Lost {
        let mut unacknowledged = Batch::new();
        let mut blocks_returned = 0;
        for record in self.records.drain(..) {
            match record {
                Written::Event { event, .. } => unacknowledged.push(event),
                // A buffer's block goes back to it: the lines the peer
                // acknowledged are settled, the rest it sends again.
                Written::Lines {
                    mut lines,
                    released,
                    ..
                } if lines.ack().is_some() => {
                    blocks_returned += lines.len() - released;
                    if let Some(ack) = lines.take_ack() {
                        ack.fail_only(Positions::range(released..lines.len()));
                    }
                }
                Written::Lines {
                    lines,
                    tokens: Some(tokens),
                    ..
                } => {
                    debug_assert!(tokens.len() <= lines.len());
                    unacknowledged.extend(tokens);
                }
                Written::Lines {
                    lines, released, ..
                } => unacknowledged.extend(lines.events(released..lines.len())),
            }
        }
        for parcel in self.never_acknowledged.drain(..) {
            match fail_back_block(parcel) {
                Ok(events) => blocks_returned += events,
                Err(parcel) => unacknowledged.extend(parcel.into_events()),
            }
        }
        let mut unsent = Batch::new();
        for parcel in self.unsent.drain(..) {
            match fail_back_block(parcel) {
                Ok(events) => blocks_returned += events,
                Err(parcel) => unsent.extend(parcel.into_events()),
            }
        }
        self.unit = None;
        self.in_flight = 0;
        self.recorded = 0;
        self.acknowledged = 0;
        self.stalled = false;
        let (returned, mut mine) = return_to_buffers(unacknowledged);
        let (returned_unsent, mine_unsent) = return_to_buffers(unsent);
        let mut lost = Lost {
            returned: returned + returned_unsent + blocks_returned,
            ..Lost::default()
        };
        let sent_before = mine.len();
        mine.extend(mine_unsent);
        if self.failover {
            lost.failed = mine;
        } else {
            lost.held = mine.len();
            self.held_unacknowledged += sent_before;
            let newer = std::mem::replace(&mut self.held, mine);
            self.held.extend(newer);
        }
        lost
    }

    /// How far the peer acknowledged on this connection.
    #[inline]
    pub fn acknowledged(&self) -> u64 {
        self.acknowledged
    }

    /// Events recorded on this connection and not yet acknowledged.
    #[inline]
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// [`Delivery::in_flight`] counted from the records, to check the count
    /// kept.
    #[cfg(test)]
    fn in_flight_counted(&self) -> usize {
        self.records
            .iter()
            .map(|record| match record {
                Written::Event { .. } => 1,
                Written::Lines {
                    lines, released, ..
                } => lines.len() - released,
            })
            .chain(self.unsent.iter().map(Parcel::len))
            .chain(self.never_acknowledged.iter().map(Parcel::len))
            .sum()
    }

    /// Nothing is outstanding on this connection.
    #[inline]
    pub fn is_settled(&self) -> bool {
        self.records.is_empty() && self.unsent.is_empty() && self.never_acknowledged.is_empty()
    }

    /// Takes every event held for the next connection (for a replacement
    /// to send instead).
    pub fn take_held(&mut self) -> Batch {
        self.held_unacknowledged = 0;
        std::mem::take(&mut self.held)
    }

    /// Events held for the next connection.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Every event this output still has and did not deliver.
    pub fn undelivered(&self) -> usize {
        self.held.len() + self.in_flight()
    }
}

/// Fails a write-ahead buffer's block back to it whole (it sends it again):
/// how many events it held. Any other parcel is handed back.
fn fail_back_block(parcel: Parcel) -> Result<usize, Parcel> {
    match parcel {
        Parcel::Lines(mut lines) if lines.ack().is_some() => {
            if let Some(ack) = lines.take_ack() {
                ack.fail();
            }
            Ok(lines.len())
        }
        other => Err(other),
    }
}

/// Fails back the events a write-ahead buffer sent (it sends them again);
/// returns how many, and the others.
fn return_to_buffers(batch: Batch) -> (usize, Batch) {
    let before = batch.len();
    let mine: Batch = batch.into_iter().filter(|event| !event.fail()).collect();
    (before - mine.len(), mine)
}

#[cfg(test)]
mod tests;
