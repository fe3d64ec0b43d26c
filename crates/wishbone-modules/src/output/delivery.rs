//! What every output decides about its events, with no I/O: the delivery
//! core the tcp and websocket outputs (and any output to come) share.
//!
//! An output owns one [`Delivery`] for its whole life, across connections.
//! Events it takes from its inbox while its peer is down are set aside
//! ([`Delivery::set_aside`]): held for the next connection, or handed to
//! `failed`. On a connection, everything written is recorded with its
//! position in the connection's stream: a byte offset for TCP and for
//! websocket frames, a sequence number for protocols that acknowledge
//! messages. The peer's acknowledgements advance one position
//! ([`Delivery::acknowledge`]), which releases every event ending at or
//! before it: its write-ahead buffer's token is resolved, and with
//! `success` it is handed on. When the connection ends
//! ([`Delivery::end`]), what was never acknowledged is exactly what to send
//! again first, or to hand to `failed`; events a write-ahead buffer sent are
//! failed back to it, which sends them again (perhaps through another
//! output). A peer that stops acknowledging for `timeout` while something is
//! outstanding is stalled ([`Delivery::stall`]), so the shell can route
//! around it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use wishbone_runtime::{Batch, Event, Lines, Parcel};

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
    records: VecDeque<Record>,
    /// Taken for the current connection and never written on it.
    unsent: Vec<Parcel>,
    /// Where the next record starts in the connection's stream.
    recorded: u64,
    /// How far the peer acknowledged.
    acknowledged: u64,
    /// When the acknowledged position last moved (or the first record
    /// since nothing was outstanding was made).
    last_progress: Instant,
    stalled: bool,
}

/// Something written on a connection.
#[derive(Debug)]
enum Record {
    /// Lines in their wire form, starting at `start`; when some carry a
    /// token, the events themselves, to resolve one by one.
    Lines {
        start: u64,
        lines: Lines,
        tokens: Option<VecDeque<Event>>,
        /// Lines at the front already released.
        released: usize,
    },
    /// One event whose encoding ends at `end`.
    Event { end: u64, event: Event },
}

/// What an acknowledgement released.
#[derive(Debug, Default, PartialEq)]
pub struct Released {
    /// Events now in the peer's hands.
    pub events: usize,
    /// Positions (bytes) the acknowledgement advanced by.
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
            recorded: 0,
            acknowledged: 0,
            last_progress: Instant::now(),
            stalled: false,
        }
    }

    /// Takes a parcel while no connection can take it: a buffer's block
    /// of lines is failed back to it whole, anything else is set aside.
    pub fn set_aside_parcel(&mut self, parcel: Parcel) -> Batch {
        match parcel {
            Parcel::Lines(mut lines) if lines.ack().is_some() => {
                if let Some(ack) = lines.take_ack() {
                    ack.fail();
                }
                Batch::new()
            }
            other => self.set_aside(other.into_events()),
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
        self.recorded = 0;
        self.acknowledged = 0;
        self.last_progress = now;
        self.stalled = false;
        let resent = std::mem::take(&mut self.held_unacknowledged);
        (std::mem::take(&mut self.held), resent)
    }

    /// Records lines written (or about to be) after everything recorded so
    /// far; `events` are the events they encode, kept when some carry a
    /// token that must be resolved one by one.
    pub fn record_lines(&mut self, lines: Lines, events: Option<Batch>, now: Instant) {
        if lines.is_empty() {
            return;
        }
        let tokens = events
            .filter(|events| events.iter().any(|event| event.ack().is_some()))
            .map(VecDeque::from);
        debug_assert!(tokens.as_ref().is_none_or(|t| t.len() == lines.len()));
        self.outstanding_from(now);
        let start = self.recorded;
        self.recorded += lines.data().len() as u64;
        self.records.push_back(Record::Lines {
            start,
            lines,
            tokens,
            released: 0,
        });
    }

    /// Moves the next record's start to `position` (never back): for a
    /// writer whose positions count more than the events' bytes (TLS
    /// records), so that lines recorded next end where their last byte
    /// really ends, and none earlier.
    pub fn skip_to(&mut self, position: u64) {
        self.recorded = self.recorded.max(position);
    }

    /// Records one event whose encoding ends at position `end`, for writers
    /// that learn positions as they write (a websocket's frames, a
    /// protocol's sequence numbers). Ends must not decrease.
    pub fn record_event(&mut self, event: Event, end: u64, now: Instant) {
        self.outstanding_from(now);
        self.recorded = self.recorded.max(end);
        self.records.push_back(Record::Event { end, event });
    }

    /// Records what was taken for this connection and never written on it
    /// (the connection died first): its end holds it for the next one, or
    /// fails it over, like what was written and not acknowledged, but
    /// sending it then is not a resend.
    pub fn record_unsent(&mut self, parcel: Parcel) {
        if !parcel.is_empty() {
            self.unsent.push(parcel);
        }
    }

    /// Progress is measured from the first record after a quiet time.
    fn outstanding_from(&mut self, now: Instant) {
        if self.records.is_empty() {
            self.last_progress = now;
        }
    }

    /// The peer acknowledged everything up to `position`: releases the
    /// events ending at or before it and resolves their tokens.
    pub fn acknowledge(&mut self, position: u64, now: Instant) -> Released {
        let mut released = Released::default();
        if position <= self.acknowledged {
            return released;
        }
        released.bytes = position - self.acknowledged;
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
                Record::Event { end, .. } => {
                    if *end > position {
                        break;
                    }
                    if let Some(Record::Event { event, .. }) = self.records.pop_front() {
                        deliver(event);
                        released.events += 1;
                    }
                }
                Record::Lines {
                    start,
                    lines,
                    tokens,
                    released: done,
                } => {
                    if *start >= position {
                        break;
                    }
                    let within = (position - *start).min(usize::MAX as u64) as usize;
                    let whole = lines.whole_within(within).max(*done);
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
        released
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
                Record::Event { event, .. } => unacknowledged.push(event),
                // A buffer's block goes back to it whole: it sends it again.
                Record::Lines {
                    mut lines,
                    released,
                    ..
                } if lines.ack().is_some() => {
                    blocks_returned += lines.len() - released;
                    if let Some(ack) = lines.take_ack() {
                        ack.fail();
                    }
                }
                Record::Lines {
                    lines,
                    tokens: Some(tokens),
                    ..
                } => {
                    debug_assert!(tokens.len() <= lines.len());
                    unacknowledged.extend(tokens);
                }
                Record::Lines {
                    lines, released, ..
                } => unacknowledged.extend(lines.events(released..lines.len())),
            }
        }
        let mut unsent = Batch::new();
        for parcel in self.unsent.drain(..) {
            match parcel {
                Parcel::Lines(mut lines) if lines.ack().is_some() => {
                    blocks_returned += lines.len();
                    if let Some(ack) = lines.take_ack() {
                        ack.fail();
                    }
                }
                Parcel::Lines(lines) => unsent.extend(lines.events(0..lines.len())),
                Parcel::Events(batch) => unsent.extend(batch),
            }
        }
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

    /// Events recorded on this connection and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.records
            .iter()
            .map(|record| match record {
                Record::Event { .. } => 1,
                Record::Lines {
                    lines, released, ..
                } => lines.len() - released,
            })
            .chain(self.unsent.iter().map(Parcel::len))
            .sum()
    }

    /// Nothing is outstanding on this connection.
    pub fn is_settled(&self) -> bool {
        self.records.is_empty() && self.unsent.is_empty()
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

/// Fails back the events a write-ahead buffer sent (it sends them again);
/// returns how many, and the others.
fn return_to_buffers(batch: Batch) -> (usize, Batch) {
    let before = batch.len();
    let mine: Batch = batch.into_iter().filter(|event| !event.fail()).collect();
    (before - mine.len(), mine)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use wishbone_runtime::ack;

    fn lines(texts: &[&str]) -> Lines {
        let events: Batch = texts
            .iter()
            .map(|text| Event::new(text.to_string()))
            .collect();
        Lines::encode(&events, &Bytes::from_static(b"\n"))
    }

    fn texts(batch: &Batch) -> Vec<String> {
        batch
            .iter()
            .map(|event| String::from_utf8_lossy(event.data()).into_owned())
            .collect()
    }

    #[test]
    fn only_events_whose_last_byte_was_acknowledged_are_released() {
        let now = Instant::now();
        let mut delivery = Delivery::new(false, true);
        delivery.record_lines(lines(&["aaa", "bb"]), None, now); // ends at 4, 7
        delivery.record_lines(lines(&["c"]), None, now); // ends at 9
        let first = delivery.acknowledge(6, now);
        assert_eq!((first.events, first.bytes), (1, 6));
        assert_eq!(texts(&first.success), ["aaa"]);
        assert_eq!(texts(&delivery.acknowledge(8, now).success), ["bb"]);
        assert_eq!(
            delivery.acknowledge(8, now),
            Released::default(),
            "no progress"
        );
        assert_eq!(delivery.in_flight(), 1);
        assert_eq!(delivery.acknowledge(9, now).events, 1);
        assert!(delivery.is_settled());
    }

    #[test]
    fn events_with_known_ends_are_released_by_position() {
        let now = Instant::now();
        let mut delivery = Delivery::new(false, false);
        delivery.record_event(Event::new("one"), 10, now);
        delivery.record_event(Event::new("two"), 25, now);
        let released = delivery.acknowledge(24, now);
        assert_eq!((released.events, released.success.len()), (1, 0));
        assert_eq!(delivery.in_flight(), 1);
    }

    #[test]
    fn a_dead_connection_leaves_the_rest_to_send_first_and_counts_them_as_resends() {
        let now = Instant::now();
        let mut delivery = Delivery::new(false, false);
        assert!(delivery.set_aside(vec![Event::new("waiting")]).is_empty());
        let (first, resent) = delivery.begin(now);
        assert_eq!((texts(&first), resent), (vec!["waiting".to_string()], 0));
        delivery.record_lines(lines(&["one", "two", "three"]), None, now);
        delivery.acknowledge(4, now);
        assert!(delivery.set_aside(vec![Event::new("newer")]).is_empty());
        let lost = delivery.end();
        assert_eq!((lost.held, lost.returned), (2, 0));
        assert_eq!(delivery.undelivered(), 3);
        let (again, resent) = delivery.begin(now);
        assert_eq!(texts(&again), ["two", "three", "newer"]);
        assert_eq!(resent, 2, "newer was never sent");
    }

    #[test]
    fn what_a_connection_never_wrote_is_held_but_not_counted_as_resent() {
        let now = Instant::now();
        let mut delivery = Delivery::new(false, false);
        delivery.begin(now);
        delivery.record_lines(lines(&["one", "two"]), None, now);
        delivery.end();
        let (held, resent) = delivery.begin(now);
        assert_eq!(resent, 2, "written once, unacknowledged: sent again");
        // The next connection dies before writing them, again and again.
        for _ in 0..5 {
            delivery.record_unsent(Parcel::Events(held.clone()));
            let lost = delivery.end();
            assert_eq!(lost.held, 2);
            let (again, resent) = delivery.begin(now);
            assert_eq!(texts(&again), ["one", "two"], "held, in order");
            assert_eq!(resent, 0, "never written: not sent again");
        }
        // A buffer's block taken and never written goes back to it whole.
        let (issuer, mut replies) = wishbone_runtime::ack::issuer();
        let block = lines(&["a", "b"]).with_ack(issuer.issue(7));
        delivery.record_unsent(Parcel::Lines(block));
        assert_eq!(delivery.undelivered(), 2);
        let lost = delivery.end();
        assert_eq!((lost.returned, lost.held), (2, 0));
        assert!(matches!(
            replies.try_recv(),
            Ok((7, wishbone_runtime::ack::Outcome::Failed))
        ));
    }

    #[test]
    fn failing_over_hands_undeliverable_events_to_failed() {
        let now = Instant::now();
        let mut delivery = Delivery::new(true, false);
        assert_eq!(texts(&delivery.set_aside(vec![Event::new("a")])), ["a"]);
        assert!(delivery.has_room(0), "failing over never fills up");
        delivery.begin(now);
        delivery.record_lines(lines(&["b", "c"]), None, now);
        delivery.acknowledge(2, now);
        let lost = delivery.end();
        assert_eq!(texts(&lost.failed), ["c"]);
        assert_eq!(delivery.held(), 0);
    }

    #[test]
    fn a_buffers_tokens_are_resolved_one_by_one_and_failed_back_when_lost() {
        let now = Instant::now();
        let (issuer, mut replies) = ack::issuer();
        let events: Batch = (0..3)
            .map(|id| Event::new(id.to_string()).with_ack(issuer.issue(id)))
            .collect();
        let mut delivery = Delivery::new(false, false);
        let encoded = Lines::encode(&events, &Bytes::from_static(b"\n"));
        delivery.record_lines(encoded, Some(events), now);
        assert_eq!(delivery.acknowledge(2, now).events, 1);
        assert_eq!(replies.try_recv().unwrap(), (0, ack::Outcome::Acknowledged));
        let lost = delivery.end();
        assert_eq!(
            (lost.held, lost.returned),
            (0, 2),
            "the buffer resends them"
        );
        assert_eq!(replies.try_recv().unwrap(), (1, ack::Outcome::Failed));
        assert_eq!(replies.try_recv().unwrap(), (2, ack::Outcome::Failed));
        let (waiting, _) = ack::issuer();
        let buffered = vec![Event::new("x").with_ack(waiting.issue(9))];
        assert!(delivery.set_aside(buffered).is_empty());
        assert_eq!(delivery.held(), 0, "a buffer's event is never held");
    }

    #[test]
    fn a_buffers_block_is_resolved_whole_and_failed_back_whole() {
        let now = Instant::now();
        let (issuer, mut replies) = ack::issuer();
        let mut delivery = Delivery::new(false, false);
        delivery.record_lines(lines(&["a", "b"]).with_ack(issuer.issue(1)), None, now);
        delivery.record_lines(lines(&["c", "d"]).with_ack(issuer.issue(2)), None, now);
        assert_eq!(delivery.acknowledge(2, now).events, 1);
        assert!(replies.try_recv().is_err(), "half a block is not the block");
        assert_eq!(delivery.acknowledge(6, now).events, 2);
        assert_eq!(replies.try_recv().unwrap(), (1, ack::Outcome::Acknowledged));
        let lost = delivery.end();
        assert_eq!(
            (lost.returned, lost.held),
            (1, 0),
            "d was never acknowledged"
        );
        assert_eq!(replies.try_recv().unwrap(), (2, ack::Outcome::Failed));
        let waiting = lines(&["e"]).with_ack(issuer.issue(3));
        assert!(delivery.set_aside_parcel(Parcel::Lines(waiting)).is_empty());
        assert_eq!(replies.try_recv().unwrap(), (3, ack::Outcome::Failed));
        assert_eq!(delivery.held(), 0);
    }

    #[test]
    fn a_peer_that_stops_acknowledging_stalls_and_resumes() {
        let start = Instant::now();
        let timeout = Duration::from_secs(10);
        let mut delivery = Delivery::new(false, false);
        assert_eq!(
            delivery.stall(start + timeout * 5, timeout),
            None,
            "idle is not stalled"
        );
        delivery.record_lines(lines(&["a", "b"]), None, start + timeout * 5);
        assert_eq!(delivery.stall(start + timeout * 5, timeout), None, "fresh");
        let later = start + timeout * 6;
        assert_eq!(delivery.stall(later, timeout), Some(Stall::Stalled));
        assert_eq!(delivery.stall(later, timeout), None, "said once");
        assert!(delivery.is_stalled());
        delivery.acknowledge(2, later);
        assert_eq!(delivery.stall(later, timeout), Some(Stall::Resumed));
    }

    /// A small deterministic generator, so a failure can be replayed.
    /// Drives a delivery with random writes, partial acknowledgements and
    /// disconnects, against a model of what the peer really received: no
    /// event is lost, none is acknowledged twice or sent again once
    /// acknowledged, acknowledgements follow the order of writing, and a
    /// duplicate at the peer only ever comes from a resend of what a dead
    /// connection had not acknowledged.
    #[test]
    fn random_histories_lose_nothing_and_acknowledge_nothing_twice() {
        let id_of =
            |event: &Event| -> u64 { String::from_utf8_lossy(event.data()).parse().unwrap() };
        for seed in 1..300u64 {
            let mut random = crate::random::Random(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let failover = random.below(2) == 0;
            let now = Instant::now();
            let mut delivery = Delivery::new(failover, true);
            let mut next_id = 0u64;
            let mut acknowledged: Vec<u64> = Vec::new();
            let mut failed: Vec<u64> = Vec::new();
            let mut left_unacknowledged: Vec<u64> = Vec::new();
            let mut arrived: Vec<u64> = Vec::new(); // at the peer, duplicates included
            let mut connected = false;
            // The current connection: (end position, id) in writing order,
            // and how many of them were acknowledged.
            let mut positions: Vec<(u64, u64)> = Vec::new();
            let mut acknowledged_here = 0;
            let write =
                |delivery: &mut Delivery, positions: &mut Vec<(u64, u64)>, events: Batch| {
                    let mut end = positions.last().map_or(0, |(end, _)| *end);
                    for event in &events {
                        end += event.len() as u64 + 1;
                        positions.push((end, id_of(event)));
                    }
                    let encoded = Lines::encode(&events, &Bytes::from_static(b"\n"));
                    delivery.record_lines(encoded, None, now);
                };
            let fresh = |next_id: &mut u64, count: u64| -> Batch {
                (0..count)
                    .map(|_| {
                        *next_id += 1;
                        Event::new(next_id.to_string())
                    })
                    .collect()
            };
            for _ in 0..300 {
                match (random.below(6), connected) {
                    (0, false) => {
                        let batch = fresh(&mut next_id, random.below(4));
                        failed.extend(delivery.set_aside(batch).iter().map(id_of));
                    }
                    (1, false) => {
                        let (first, _) = delivery.begin(now);
                        connected = true;
                        positions.clear();
                        acknowledged_here = 0;
                        for event in &first {
                            assert!(
                                !acknowledged.contains(&id_of(event)),
                                "seed {seed}: acknowledged event sent again"
                            );
                        }
                        write(&mut delivery, &mut positions, first);
                    }
                    (2 | 3, true) => {
                        let batch = fresh(&mut next_id, 1 + random.below(5));
                        write(&mut delivery, &mut positions, batch);
                    }
                    (4, true) => {
                        let total = positions.last().map_or(0, |(end, _)| *end);
                        let position = random.below(total + 1);
                        for event in delivery.acknowledge(position, now).success {
                            let id = id_of(&event);
                            assert_eq!(
                                id, positions[acknowledged_here].1,
                                "seed {seed}: out of order"
                            );
                            acknowledged_here += 1;
                            acknowledged.push(id);
                        }
                    }
                    (5, true) => {
                        // The peer received a prefix at least as long as
                        // what it acknowledged; the link dies.
                        let total = positions.last().map_or(0, |(end, _)| *end);
                        let floor = acknowledged_here
                            .checked_sub(1)
                            .map_or(0, |index| positions[index].0);
                        let received = floor + random.below(total - floor + 1);
                        arrived.extend(
                            positions
                                .iter()
                                .filter(|(end, _)| *end <= received)
                                .map(|(_, id)| *id),
                        );
                        left_unacknowledged
                            .extend(positions[acknowledged_here..].iter().map(|(_, id)| *id));
                        failed.extend(delivery.end().failed.iter().map(id_of));
                        connected = false;
                    }
                    _ => {}
                }
            }
            let mut once = acknowledged.clone();
            once.sort_unstable();
            once.dedup();
            assert_eq!(
                once.len(),
                acknowledged.len(),
                "seed {seed}: acknowledged twice"
            );
            if connected {
                failed.extend(delivery.end().failed.iter().map(id_of));
            }
            let (rest, _) = delivery.begin(now);
            let mut all: Vec<u64> = acknowledged
                .iter()
                .chain(&failed)
                .copied()
                .chain(rest.iter().map(id_of))
                .collect();
            all.sort_unstable();
            assert_eq!(
                all,
                (1..=next_id).collect::<Vec<_>>(),
                "seed {seed}: lost or doubled"
            );
            for id in &arrived {
                if arrived.iter().filter(|other| *other == id).count() > 1 {
                    assert!(
                        left_unacknowledged.contains(id),
                        "seed {seed}: {id} duplicated without a resend"
                    );
                }
            }
        }
    }
}
