//! The buffer's bookkeeping as a plain struct: what is kept, what is in
//! flight, what waits, and whose acknowledgement is owed upstream.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use std::time::Instant;

use wishbone_runtime::ack::{Ack, Outcome};
use wishbone_runtime::resend::{ResendChange, Resends};
use wishbone_runtime::{Event, Parcel, Positions};

use super::block::{Location, Stored, payload_bytes};
use super::residency::Residency;
use crate::config::{Config, WhenFull};

/// Where a kept block stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Handed to the log, not yet kept by it (with `path` only): neither
    /// sent nor dropped until it is.
    Writing,
    /// Kept, waiting to be sent (new, or failed and due again).
    Waiting,
    /// Failed downstream, waiting out its pause before it is due again.
    Paused,
    /// Sent, not yet settled by its outputs.
    InFlight,
    /// Delivered; the log has not yet recorded it (with `path` only). It
    /// still holds its room in the buffer, and a crash now sends it again.
    Settling,
}

#[derive(Debug)]
struct Block {
    /// The events; absent while the log writes them, and (with `path`)
    /// while the block waits on disk only or is settling.
    parcel: Option<Parcel>,
    events: usize,
    bytes: usize,
    state: State,
    /// The tokens the events arrived with: resolved once the block is
    /// kept (with `path`) or delivered (in memory), failed when dropped.
    upstream: Vec<Ack>,
    /// The events still owed, by position in the block, once a part of it
    /// was delivered; none: every event.
    owed: Option<Positions>,
}

/// The bookkeeping.
///
/// What it keeps are blocks: the events of one parcel, at most
/// `read_count` (and `max_elements`) of them, each with one id and one
/// token. Lines read from a socket stay lines in their wire form, so a
/// block costs one copy and one token, never one per event. Counts
/// (`max_elements`, `read_count`, drops) are still in events.
///
/// With a log ([`Retention::on_disk`]) a block is first written, then
/// kept; a delivered block is settled once the log has recorded it, and
/// [`Retention::take_settlements`] lists what the log must record.
#[derive(Debug)]
pub struct Retention {
    config: Config,
    blocks: BTreeMap<u64, Block>,
    waiting: BTreeSet<u64>,
    /// Blocks that failed, waiting out their pause.
    paused: BTreeSet<u64>,
    resends: Resends,
    /// Events kept in all (every state), waiting, and being written.
    kept_events: usize,
    waiting_events: usize,
    writing_events: usize,
    /// Payload bytes handed to the log and not yet kept by it.
    writing_bytes: usize,
    bytes: usize,
    next_id: u64,
    dropped: u64,
    /// Events sent again after failing downstream.
    resent: u64,
    /// Blocks the log must record as settled.
    settlements: Vec<u64>,
    /// Blocks kept in memory that may still point into the buffer they
    /// were read into, oldest first (some may be gone since).
    sharing: VecDeque<u64>,
    /// With a log (and only then): which blocks are held in memory besides.
    residency: Option<Residency>,
}

/// Blocks kept in memory that may share the buffer they were read into,
/// at most. A block acknowledged soon (the usual case) never needs a copy
/// of its own; past this many, the oldest get one, so kept blocks pin at
/// most this many read buffers beyond `max_bytes` (16 MiB with the tcp
/// input's 256 KiB reads).
pub const MOST_SHARING: usize = 64;

/// What became of a block offered to [`Retention::push_block`].
#[derive(Debug)]
pub enum Pushed {
    /// Kept in memory, or dropped and counted.
    Done,
    /// The log must write it (its tokens taken off) as block `id`.
    Write(u64, Parcel),
}

impl Retention {
    /// A buffer kept in memory only.
    pub fn new(config: Config) -> Self {
        let pauses = config.resend_pauses();
        Self {
            config,
            blocks: BTreeMap::new(),
            waiting: BTreeSet::new(),
            paused: BTreeSet::new(),
            resends: Resends::new(pauses.0, pauses.1),
            kept_events: 0,
            waiting_events: 0,
            writing_events: 0,
            writing_bytes: 0,
            bytes: 0,
            next_id: 0,
            dropped: 0,
            resent: 0,
            settlements: Vec::new(),
            sharing: VecDeque::new(),
            residency: None,
        }
    }

    /// A buffer whose blocks a log keeps, resuming with what the log held
    /// (`blocks`, oldest first, sent before anything new, read back as
    /// [`Retention::take_loads`] asks) and numbering new blocks from
    /// `next_id`. At most `max_memory_bytes` of waiting blocks are held in
    /// memory besides the log.
    pub fn on_disk(config: Config, blocks: Vec<Stored>, next_id: u64) -> Self {
        let mut residency = Residency::new(config.max_memory_bytes);
        let mut retention = Self {
            next_id,
            ..Self::new(config)
        };
        for stored in blocks {
            retention.kept_events += stored.events;
            retention.waiting_events += stored.events;
            retention.bytes += stored.bytes;
            retention.waiting.insert(stored.id);
            residency.recovered(stored.id, stored.bytes, stored.location);
            retention.blocks.insert(
                stored.id,
                Block {
                    parcel: None,
                    events: stored.events,
                    bytes: stored.bytes,
                    state: State::Waiting,
                    upstream: Vec::new(),
                    owed: None,
                },
            );
        }
        retention.residency = Some(residency);
        retention
    }

    /// Cuts a parcel into blocks, each sent in one step: at most
    /// `read_count` and `max_elements` events, at most
    /// `max_bytes` (a single larger event stays alone, and is dropped when
    /// kept).
    pub fn cut(&self, mut parcel: Parcel) -> Vec<Parcel> {
        let most = self.config.read_count.min(self.config.max_elements).max(1);
        let mut blocks = Vec::new();
        while !parcel.is_empty() {
            let rest = parcel.split_off(most);
            let mut block = std::mem::replace(&mut parcel, rest);
            while block.len() > 1 && payload_bytes(&block) > self.config.max_bytes {
                let back = block.split_off(block.len() / 2);
                parcel = join(back, parcel);
            }
            blocks.push(block);
        }
        blocks
    }

    /// Keeps a block cut by [`Retention::cut`], applying `when_full`. Under
    /// `block` a full buffer gives the block back to wait with.
    pub fn push_block(&mut self, mut block: Parcel) -> Result<Pushed, Parcel> {
        let (events, size) = (block.len(), payload_bytes(&block));
        if size > self.config.max_bytes || events > self.config.max_elements {
            self.dropped += events as u64;
            return Ok(Pushed::Done); // its tokens fail as they are dropped
        }
        while !self.has_room(events, size) {
            match self.config.when_full {
                WhenFull::Block => return Err(block),
                WhenFull::DropNewest => {
                    self.dropped += events as u64;
                    return Ok(Pushed::Done);
                }
                WhenFull::DropOldest => {
                    if !self.drop_oldest_waiting() {
                        // Everything kept is in flight: the newest is what can go.
                        self.dropped += events as u64;
                        return Ok(Pushed::Done);
                    }
                }
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        self.kept_events += events;
        self.bytes += size;
        let upstream = block.take_acks();
        let (parcel, state, pushed) = if self.has_log() {
            self.writing_events += events;
            self.writing_bytes += size;
            (None, State::Writing, Pushed::Write(id, block))
        } else {
            self.waiting_events += events;
            self.waiting.insert(id);
            self.sharing.push_back(id);
            (Some(block), State::Waiting, Pushed::Done)
        };
        self.blocks.insert(
            id,
            Block {
                parcel,
                events,
                bytes: size,
                state,
                upstream,
                owed: None,
            },
        );
        self.stop_sharing();
        Ok(pushed)
    }

    /// Gives the oldest blocks that share a read buffer a copy of their
    /// own, until at most [`MOST_SHARING`] share one: lines cut from a
    /// socket read point into that read's buffer, which stays allocated as
    /// long as they do, and `max_bytes` would not bound memory.
    fn stop_sharing(&mut self) {
        while self.sharing.len() > MOST_SHARING {
            let Some(id) = self.sharing.pop_front() else {
                return;
            };
            if let Some(block) = self.blocks.get_mut(&id)
                && let Some(parcel) = &mut block.parcel
            {
                *parcel = owned(parcel);
            }
        }
    }

    /// Drops the oldest block waiting to be sent (or sent again after a
    /// pause), counted; false when none waits.
    fn drop_oldest_waiting(&mut self) -> bool {
        let paused_first = match (self.waiting.first(), self.paused.first()) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(waiting), Some(paused)) => paused < waiting,
        };
        let oldest = match paused_first {
            true => self.paused.pop_first(),
            false => self.waiting.pop_first(),
        };
        let Some(oldest) = oldest else {
            return false;
        };
        self.resends.forget(oldest);
        if let Some(dropped) = self.blocks.remove(&oldest) {
            if !paused_first {
                self.waiting_events -= dropped.events;
            }
            self.forget(oldest, &dropped);
            self.dropped += dropped.events as u64;
            if self.has_log() {
                self.settlements.push(oldest);
            }
            // In memory, its upstream tokens fail as they are dropped.
        }
        true
    }

    /// The log has kept block `id` at `location`: it may be sent, and its
    /// events are acknowledged upstream. `parcel` is the block as the log
    /// holds it; past `max_memory_bytes` the newest waiting blocks let go
    /// of theirs and wait on disk only.
    pub fn kept(&mut self, id: u64, parcel: Parcel, location: Location) {
        let Some(block) = self.blocks.get_mut(&id) else {
            return;
        };
        if block.state != State::Writing {
            return;
        }
        block.state = State::Waiting;
        block.parcel = Some(parcel);
        block.upstream.drain(..).for_each(|ack| ack.acknowledge());
        self.writing_events -= block.events;
        self.writing_bytes -= block.bytes;
        self.waiting_events += block.events;
        self.waiting.insert(id);
        if let Some(residency) = &mut self.residency {
            residency.kept(id, block.bytes, location);
        }
        self.evict();
    }

    /// Lets go of the events of the blocks the residency no longer holds.
    fn evict(&mut self) {
        let Some(residency) = &mut self.residency else {
            return;
        };
        for id in residency.take_evictions() {
            if let Some(block) = self.blocks.get_mut(&id) {
                block.parcel = None;
            }
        }
    }

    /// Blocks to read back from the log now (with `path`), oldest first.
    pub fn take_loads(&mut self) -> Vec<(u64, Location)> {
        self.residency
            .as_mut()
            .map(Residency::take_loads)
            .unwrap_or_default()
    }

    /// The log read block `id` back.
    pub fn loaded(&mut self, id: u64, parcel: Parcel) {
        let Some(residency) = &mut self.residency else {
            return;
        };
        if residency.loaded(id)
            && let Some(block) = self.blocks.get_mut(&id)
        {
            block.parcel = Some(parcel);
        }
        self.evict();
    }

    /// The log could not read these blocks back: they are dropped, counted
    /// and settled, as the log itself lost them.
    pub fn unreadable(&mut self, ids: &[u64]) {
        for &id in ids {
            if self.waiting.remove(&id)
                && let Some(block) = self.blocks.remove(&id)
            {
                self.waiting_events -= block.events;
                self.forget(id, &block);
                self.dropped += block.events as u64;
                self.settlements.push(id);
            }
        }
    }

    /// Whether a log keeps the blocks ([`Retention::on_disk`]).
    fn has_log(&self) -> bool {
        self.residency.is_some()
    }

    /// Payload bytes held in memory with `path` (waiting or in flight).
    pub fn held_bytes(&self) -> usize {
        self.residency.as_ref().map_or(0, Residency::held)
    }

    /// Takes block `id`'s counts off the books.
    fn forget(&mut self, id: u64, block: &Block) {
        self.resends.forget(id);
        self.kept_events -= block.events;
        self.bytes -= block.bytes;
        if let Some(residency) = &mut self.residency {
            residency.forget(id);
        }
    }

    /// Whether a block of `events` events and `size` bytes fits now.
    pub fn has_room(&self, events: usize, size: usize) -> bool {
        self.kept_events + events <= self.config.max_elements
            && self.bytes + size <= self.config.max_bytes
    }

    /// Events in the oldest waiting block, the next to send; 0 when none
    /// waits. Blocks go out without waiting for earlier ones to be
    /// acknowledged: what is in flight is kept, so `max_elements` and
    /// `max_bytes` bound it.
    pub fn sendable(&self) -> usize {
        self.waiting
            .first()
            .and_then(|id| self.blocks.get(id))
            .filter(|block| block.parcel.is_some()) // on disk only: read back first
            .map_or(0, |block| {
                block.owed.as_ref().map_or(block.events, Positions::len)
            })
    }

    /// Takes the oldest waiting blocks, now in flight, while they fit in
    /// `count` events.
    pub fn take(&mut self, count: usize) -> Vec<(u64, Parcel)> {
        let mut taken = Vec::new();
        let mut budget = count;
        loop {
            let next = self.sendable();
            if next == 0 || next > budget {
                return taken;
            }
            let Some(id) = self.waiting.pop_first() else {
                return taken;
            };
            budget -= next;
            if let Some(block) = self.blocks.get_mut(&id) {
                self.waiting_events -= block.events;
                block.state = State::InFlight;
                if let Some(residency) = &mut self.residency {
                    residency.sent(id);
                }
                if let Some(parcel) = &block.parcel {
                    // Once a part was delivered, only what is still owed.
                    let sent = match &block.owed {
                        None => parcel.clone(),
                        Some(owed) => parcel.select(owed),
                    };
                    if self.resends.has(id) {
                        self.resends.resent(sent.len());
                        self.resent += sent.len() as u64;
                    }
                    taken.push((id, sent));
                }
            }
        }
    }

    /// An output settled block `id`: delivered blocks are forgotten (with
    /// a log, once it has recorded them), failed ones wait to be sent
    /// again, before anything newer.
    pub fn resolve(&mut self, id: u64, outcome: Outcome, now: Instant) {
        let Some(block) = self.blocks.get_mut(&id) else {
            return;
        };
        if block.state != State::InFlight {
            return; // settled twice, or a stale token: nothing in flight to settle
        }
        if outcome == Outcome::Acknowledged {
            self.resends.delivered(id, now);
        }
        match outcome {
            Outcome::Acknowledged if self.residency.is_some() => {
                block.state = State::Settling;
                block.parcel = None;
                self.settlements.push(id);
                if let Some(residency) = &mut self.residency {
                    residency.forget(id);
                }
            }
            Outcome::Acknowledged => {
                if let Some(block) = self.blocks.remove(&id) {
                    block.upstream.iter().for_each(Ack::acknowledge);
                    self.forget(id, &block);
                }
            }
            Outcome::Failed | Outcome::Partly(_) => {
                if let Outcome::Partly(failed) = outcome {
                    // What was delivered of it is settled: only the failed
                    // events are owed, named in the block's own positions.
                    block.owed = Some(match &block.owed {
                        None => failed,
                        Some(owed) => owed.pick(&failed),
                    });
                }
                block.state = State::Paused;
                let owed = block.owed.as_ref().map_or(block.events, Positions::len);
                self.paused.insert(id);
                self.resends.failed(id, owed, now);
                if let Some(residency) = &mut self.residency {
                    residency.failed(id);
                }
            }
        }
    }

    /// Blocks whose pause is over wait to be sent again, before anything
    /// newer.
    pub fn release_due(&mut self, now: Instant) {
        for id in self.resends.take_due(now) {
            if self.paused.remove(&id)
                && let Some(block) = self.blocks.get_mut(&id)
            {
                block.state = State::Waiting;
                self.waiting_events += block.events;
                self.waiting.insert(id);
            }
        }
    }

    /// When the next paused block is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.resends.next_due()
    }

    /// A change in resending worth a log line, once.
    pub fn take_resend_change(&mut self) -> Option<ResendChange> {
        self.resends.take_change()
    }

    /// What the log must record as settled since the last call.
    pub fn take_settlements(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.settlements)
    }

    /// The log has recorded these blocks as settled: they are forgotten.
    pub fn settled(&mut self, ids: &[u64]) {
        for id in ids {
            if self
                .blocks
                .get(id)
                .is_some_and(|block| block.state == State::Settling)
                && let Some(block) = self.blocks.remove(id)
            {
                self.forget(*id, &block);
            }
        }
    }

    /// Events sent and not yet settled (with a log, and not yet recorded).
    pub fn in_flight(&self) -> usize {
        self.kept_events - self.waiting_events - self.writing_events
    }

    /// Events kept in all, counting those being written.
    pub fn len(&self) -> usize {
        self.kept_events
    }

    /// Events handed to the log and not yet kept by it.
    pub fn writing(&self) -> usize {
        self.writing_events
    }

    /// Their payload bytes.
    pub fn writing_bytes(&self) -> usize {
        self.writing_bytes
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Events sent again so far after failing downstream.
    pub fn resent(&self) -> u64 {
        self.resent
    }

    /// Events dropped so far by the retention limits.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// The block with payloads of its own.
fn owned(block: &Parcel) -> Parcel {
    match block {
        Parcel::Lines(lines) => Parcel::Lines(lines.owned()),
        Parcel::Events(batch) => Parcel::Events(
            batch
                .iter()
                .map(|event| Event::new(bytes::Bytes::copy_from_slice(event.data())))
                .collect(),
        ),
    }
}

/// `front` followed by `back`, as one parcel of separate events: only a
/// block too large for `max_bytes` is cut this way, which is rare.
fn join(front: Parcel, back: Parcel) -> Parcel {
    if back.is_empty() {
        return front;
    }
    let mut events = front.into_events();
    events.extend(back.into_events());
    Parcel::Events(events)
}
