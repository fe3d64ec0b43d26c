//! `wishbone.flow.wal`: a bounded, in-memory write-ahead buffer. It keeps
//! every event until an output acknowledges it, sends at most `read_count`
//! at a time, and sends again whatever an output fails.
//!
//! The text `wishbone show --docs` prints is [`DOCS`]. [`Retention`] is the
//! bookkeeping as a plain struct, in blocks of events; the module around it
//! issues one token with each block it sends (on lines,
//! [`wishbone_runtime::Lines::with_ack`]; split over separate events,
//! [`wishbone_runtime::Event::with_ack`]) and hears each block's fate from
//! the outputs that handled it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use futures::future::LocalBoxFuture;
use serde::Deserialize;
use wishbone_runtime::ack::{self, Outcome};
use wishbone_runtime::{
    ArgumentError, Arguments, Event, Module, ModuleContext, ModuleError, ModuleKind, Parcel,
    QueueSpec,
};

/// What `wishbone show --docs` prints.
pub const DOCS: &str = r#"wishbone.flow.wal: a bounded in-memory write-ahead buffer.

Queues
  inbox      events to keep until delivered
  outbox     events on their way to outputs (a round robin, an output)

Arguments (default)
  read_count    events sent and not yet acknowledged, at most (20)
  max_elements  events kept, sent or waiting (1000)
  max_bytes     payload bytes kept (10485760); each kept event has its own
                copy, so this bounds their memory
  when_full     drop_oldest | drop_newest | block (drop_oldest): what a new
                event does when a limit is reached; `block` makes the inbox
                wait, pushing back upstream. Every drop is counted in the
                inbox's dropped_total.

Events are kept in blocks: what arrived together, at most read_count events
(and max_elements, and max_bytes) a block; lines read from a socket stay in
their wire form, one copy and one token per block. Each block sent carries a
token that the outputs which handle it resolve: acknowledged once every one
of its events is with its peer (tcp: the peer's TCP stack acknowledged the
bytes; websocket: likewise for the frames), failed as soon as one of them
cannot be delivered (a connection died, an output is down). A round robin
splits a block's token over its destinations' shares. A failed block is sent
again whole, oldest first, to whichever output is up: events of it that had
arrived may arrive twice. Only the block itself is settled by its token: a
block in flight on one output is never acknowledged by another's progress.
The buffer is transient: a restart starts empty.

Example (the round-robin demo)
  modules:
    wal:
      module: wishbone.flow.wal
      arguments: {read_count: 20, max_elements: 1000, max_bytes: 10485760}
  routingtable:
    - metronome.outbox -> wal.inbox
    - wal.outbox -> roundrobin.inbox
"#;

/// The kind, for the list of builtin modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "wishbone.flow.wal",
    aliases: &["wishbone.flow.qos.wal"],
    description: "keeps events until an output acknowledges them; replays failures",
    docs: DOCS,
    queues: QueueSpec::PROCESS,
    build,
};

/// What a new event does when the buffer is full.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// The oldest events not yet sent make room.
    #[default]
    DropOldest,
    /// The new event is dropped.
    DropNewest,
    /// The inbox waits until deliveries make room.
    Block,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Events sent and not yet acknowledged, at most.
    #[serde(default = "default_read_count")]
    pub read_count: usize,
    /// Events kept in all.
    #[serde(default = "default_max_elements")]
    pub max_elements: usize,
    /// Payload bytes kept in all.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// What a new event does when a limit is reached.
    #[serde(default)]
    pub when_full: WhenFull,
}

fn default_read_count() -> usize {
    20
}

fn default_max_elements() -> usize {
    1000
}

fn default_max_bytes() -> usize {
    10 * 1024 * 1024
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let config: Config = arguments.deserialize()?;
    if config.read_count == 0 || config.max_elements == 0 || config.max_bytes == 0 {
        return Err(ArgumentError::new(
            "`read_count`, `max_elements` and `max_bytes` must be at least 1",
        ));
    }
    Ok(Box::new(Wal { config }))
}

/// The buffer's bookkeeping: what is kept, what is in flight, what waits.
///
/// What it keeps are blocks: the events of one parcel, at most
/// `read_count` (and `max_elements`) of them, each with one id and one
/// token. Lines read from a socket stay lines in their wire form, so a
/// block costs one copy and one token, never one per event. Counts
/// (`max_elements`, `read_count`, drops) are still in events.
#[derive(Debug)]
pub struct Retention {
    config: Config,
    /// Every kept block by id; ids grow with arrival.
    kept: BTreeMap<u64, Parcel>,
    /// Kept blocks waiting to be sent (new, or failed and due again).
    waiting: BTreeSet<u64>,
    /// Events in the kept blocks, and in the waiting ones.
    kept_events: usize,
    waiting_events: usize,
    bytes: usize,
    next_id: u64,
    dropped: u64,
}

/// Payload bytes of a parcel, what `max_bytes` counts.
fn payload_bytes(parcel: &Parcel) -> usize {
    match parcel {
        Parcel::Events(batch) => batch.iter().map(Event::len).sum(),
        Parcel::Lines(lines) => lines.data().len() - lines.len() * lines.delimiter().len(),
    }
}

impl Retention {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            kept: BTreeMap::new(),
            waiting: BTreeSet::new(),
            kept_events: 0,
            waiting_events: 0,
            bytes: 0,
            next_id: 0,
            dropped: 0,
        }
    }

    /// Cuts a parcel into blocks that each fit in flight and in the
    /// buffer: at most `read_count` and `max_elements` events, at most
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

    /// Keeps one event (a block of its own), applying `when_full`.
    #[cfg(test)]
    pub fn push(&mut self, event: Event) -> Result<(), Parcel> {
        self.push_block(Parcel::Events(vec![event]))
    }

    /// Keeps a block cut by [`Retention::cut`], applying `when_full`. Under
    /// `block` a full buffer gives the block back to wait with.
    pub fn push_block(&mut self, block: Parcel) -> Result<(), Parcel> {
        let (events, size) = (block.len(), payload_bytes(&block));
        if size > self.config.max_bytes || events > self.config.max_elements {
            self.dropped += events as u64;
            return Ok(());
        }
        while !self.has_room(events, size) {
            match self.config.when_full {
                WhenFull::Block => return Err(block),
                WhenFull::DropNewest => {
                    self.dropped += events as u64;
                    return Ok(());
                }
                WhenFull::DropOldest => match self.waiting.pop_first() {
                    Some(oldest) => {
                        if let Some(dropped) = self.kept.remove(&oldest) {
                            self.forget(&dropped, true);
                            self.dropped += dropped.len() as u64;
                        }
                    }
                    None => {
                        // Everything kept is in flight: the newest is what can go.
                        self.dropped += events as u64;
                        return Ok(());
                    }
                },
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        self.kept_events += events;
        self.waiting_events += events;
        self.bytes += size;
        // A copy of its own: lines cut from a socket read share that read's
        // buffer, which would otherwise stay allocated as long as they are
        // kept, and `max_bytes` would not bound memory.
        let owned = match block {
            Parcel::Lines(lines) => Parcel::Lines(lines.owned()),
            Parcel::Events(batch) => Parcel::Events(
                batch
                    .iter()
                    .map(|event| event.with_data(bytes::Bytes::copy_from_slice(event.data())))
                    .collect(),
            ),
        };
        self.kept.insert(id, owned);
        self.waiting.insert(id);
        Ok(())
    }

    /// Takes a block's counts off the books.
    fn forget(&mut self, block: &Parcel, waiting: bool) {
        self.kept_events -= block.len();
        self.bytes -= payload_bytes(block);
        if waiting {
            self.waiting_events -= block.len();
        }
    }

    /// Whether a block of `events` events and `size` bytes fits now.
    pub fn has_room(&self, events: usize, size: usize) -> bool {
        self.kept_events + events <= self.config.max_elements
            && self.bytes + size <= self.config.max_bytes
    }

    /// Events in the oldest waiting block when it may be sent now (it fits
    /// within `read_count` with what is in flight), else 0.
    pub fn sendable(&self) -> usize {
        let room = self.config.read_count.saturating_sub(self.in_flight());
        self.waiting
            .first()
            .and_then(|id| self.kept.get(id))
            .map_or(0, |block| if block.len() <= room { block.len() } else { 0 })
    }

    /// Takes the oldest waiting blocks, now in flight, while they fit in
    /// `count` events and `read_count`.
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
            self.waiting_events -= next;
            if let Some(block) = self.kept.get(&id) {
                taken.push((id, block.clone()));
            }
        }
    }

    /// An output settled block `id`: delivered blocks are forgotten, failed
    /// ones wait to be sent again, before anything newer.
    pub fn resolve(&mut self, id: u64, outcome: Outcome) {
        if self.waiting.contains(&id) {
            return; // settled twice, or a stale token: nothing in flight to settle
        }
        match outcome {
            Outcome::Acknowledged => {
                if let Some(block) = self.kept.remove(&id) {
                    self.forget(&block, false);
                }
            }
            Outcome::Failed => {
                if let Some(block) = self.kept.get(&id) {
                    self.waiting_events += block.len();
                    self.waiting.insert(id);
                }
            }
        }
    }

    /// Events sent and not yet settled.
    pub fn in_flight(&self) -> usize {
        self.kept_events - self.waiting_events
    }

    /// Events kept in all.
    pub fn len(&self) -> usize {
        self.kept_events
    }

    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    /// Events dropped so far by the retention limits.
    pub fn dropped(&self) -> u64 {
        self.dropped
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

/// A block on its way: its token, split over its events when they travel
/// one by one.
fn with_token(block: Parcel, token: ack::Ack) -> Parcel {
    match block {
        Parcel::Lines(lines) => Parcel::Lines(lines.with_ack(token)),
        Parcel::Events(batch) => {
            let shares = token.split(batch.len());
            Parcel::Events(
                batch
                    .into_iter()
                    .zip(shares)
                    .map(|(event, share)| event.with_ack(share))
                    .collect(),
            )
        }
    }
}

/// The module.
pub struct Wal {
    config: Config,
}

impl Module for Wal {
    fn run(
        self: Box<Self>,
        mut context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        let mut inbox = context.take_incoming("inbox");
        let outbox = context.outgoing("outbox");
        let abort = context.aborting();
        let name = context.name().to_string();
        let mut retention = Retention::new(self.config);
        Box::pin(async move {
            let (issuer, mut replies) = ack::issuer();
            let mut blocked: VecDeque<Parcel> = VecDeque::new();
            let mut inbox_open = true;
            let mut reported = 0;
            loop {
                while let Some(block) = blocked.pop_front() {
                    if let Err(block) = retention.push_block(block) {
                        blocked.push_front(block);
                        break;
                    }
                }
                if retention.dropped() > reported {
                    inbox
                        .stats()
                        .record_dropped((retention.dropped() - reported) as usize);
                    reported = retention.dropped();
                }
                if !inbox_open && blocked.is_empty() && retention.is_empty() {
                    return Ok(());
                }
                let sendable = retention.sendable();
                let undelivered = retention.len() + blocked.iter().map(Parcel::len).sum::<usize>();
                tokio::select! {
                    biased;
                    _ = abort.cancelled() => {
                        return Err(ModuleError::Aborted { undelivered });
                    }
                    Some((id, outcome)) = replies.recv() => retention.resolve(id, outcome),
                    permit = outbox.reserve(sendable), if sendable > 0 => {
                        let Ok(permit) = permit else {
                            return Err(ModuleError::DownstreamGone { queue: "outbox".into(), undelivered });
                        };
                        // `sendable` is the oldest waiting block's size: one block.
                        if let Some((id, block)) = retention.take(sendable).pop()
                            && permit.send(with_token(block, issuer.issue(id))).is_err()
                        {
                            tracing::error!(module = %name, "outbox closed");
                        }
                    }
                    parcel = inbox.recv_parcel(), if inbox_open && blocked.is_empty() => match parcel {
                        None => inbox_open = false,
                        Some(parcel) => blocked.extend(retention.cut(parcel)),
                    },
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wishbone_runtime::Lines;

    fn config(when_full: WhenFull) -> Config {
        Config {
            read_count: 2,
            max_elements: 4,
            max_bytes: 1000,
            when_full,
        }
    }

    fn ids(taken: &[(u64, Parcel)]) -> Vec<u64> {
        taken.iter().map(|(id, _)| *id).collect()
    }

    fn filled(when_full: WhenFull, events: usize) -> Retention {
        let mut retention = Retention::new(config(when_full));
        for index in 0..events {
            let _ = retention.push(Event::new(format!("e{index}")));
        }
        retention
    }

    #[test]
    fn kept_events_do_not_hold_on_to_the_buffer_they_were_cut_from() {
        let read = bytes::Bytes::from(vec![b'x'; 256 * 1024]);
        let mut retention = Retention::new(config(WhenFull::Block));
        retention.push(Event::new(read.slice(0..10))).unwrap();
        let (_, kept) = retention.take(1).pop().unwrap();
        let kept = kept.into_events().pop().unwrap();
        assert_eq!(kept.data(), &read.slice(0..10));
        let inside = read.as_ptr_range().contains(&kept.data().as_ptr());
        assert!(!inside, "the kept event must own its payload");
        let lines = Lines::new(read.slice(0..4), vec![3], bytes::Bytes::from_static(b"\n"));
        retention.push_block(Parcel::Lines(lines)).unwrap();
        let (_, Parcel::Lines(kept)) = retention.take(1).pop().unwrap() else {
            panic!("lines stay lines");
        };
        assert!(
            !read.as_ptr_range().contains(&kept.data().as_ptr()),
            "kept lines own theirs too"
        );
    }

    #[test]
    fn lines_are_kept_in_blocks_of_at_most_read_count() {
        let retention = Retention::new(config(WhenFull::Block));
        let events: Vec<Event> = (0..5).map(|i| Event::new(format!("e{i}"))).collect();
        let lines = Lines::encode(&events, &bytes::Bytes::from_static(b"\n"));
        let blocks = retention.cut(Parcel::Lines(lines));
        let sizes: Vec<usize> = blocks.iter().map(Parcel::len).collect();
        assert_eq!(sizes, [2, 2, 1], "read_count 2");
        assert!(blocks.iter().all(|block| matches!(block, Parcel::Lines(_))));
        let tight = Retention::new(Config {
            max_bytes: 3,
            ..config(WhenFull::Block)
        });
        let sizes: Vec<usize> = tight
            .cut(Parcel::Events(events))
            .iter()
            .map(Parcel::len)
            .collect();
        assert_eq!(
            sizes,
            [1, 1, 1, 1, 1],
            "two events of 2 bytes exceed max_bytes 3"
        );
    }

    #[test]
    fn a_block_is_sent_with_one_token_and_settled_whole() {
        let (issuer, mut replies) = ack::issuer();
        let mut retention = Retention::new(Config {
            read_count: 10,
            ..config(WhenFull::Block)
        });
        let events: Vec<Event> = (0..3).map(|i| Event::new(format!("e{i}"))).collect();
        let lines = Lines::encode(&events, &bytes::Bytes::from_static(b"\n"));
        for block in retention.cut(Parcel::Lines(lines)) {
            retention.push_block(block).unwrap();
        }
        let (id, block) = retention.take(10).pop().unwrap();
        assert_eq!(retention.in_flight(), 3);
        let sent = with_token(block, issuer.issue(id));
        let Parcel::Lines(sent) = sent else {
            panic!("lines stay lines")
        };
        sent.ack().unwrap().acknowledge();
        retention.resolve(id, replies.try_recv().unwrap().1);
        assert!(retention.is_empty());
    }

    #[test]
    fn read_count_bounds_what_is_in_flight() {
        let mut retention = filled(WhenFull::DropOldest, 4);
        assert_eq!(ids(&retention.take(10)), [0, 1]);
        assert_eq!(retention.sendable(), 0);
        retention.resolve(0, Outcome::Acknowledged);
        assert_eq!(ids(&retention.take(10)), [2]);
        assert_eq!(retention.len(), 3);
    }

    #[test]
    fn a_failed_event_is_sent_again_before_anything_newer() {
        let mut retention = filled(WhenFull::DropOldest, 4);
        retention.take(2);
        retention.resolve(1, Outcome::Acknowledged);
        retention.resolve(0, Outcome::Failed);
        assert_eq!(ids(&retention.take(10)), [0, 2]);
    }

    #[test]
    fn an_acknowledgement_settles_only_its_own_event() {
        let mut retention = filled(WhenFull::DropOldest, 3);
        retention.take(2);
        retention.resolve(1, Outcome::Acknowledged);
        assert_eq!(
            retention.in_flight(),
            1,
            "event 0 is still in flight on another output"
        );
        retention.resolve(1, Outcome::Failed);
        assert_eq!(
            retention.len(),
            2,
            "a late failure of a settled event changes nothing"
        );
    }

    #[test]
    fn drop_oldest_drops_the_oldest_waiting_and_counts() {
        let mut retention = filled(WhenFull::DropOldest, 4);
        retention.take(1); // event 0 is in flight and may not be dropped
        retention.push(Event::new("e4")).unwrap();
        retention.push(Event::new("e5")).unwrap();
        assert_eq!(retention.dropped(), 2);
        retention.resolve(0, Outcome::Acknowledged);
        assert_eq!(ids(&retention.take(10)), [3, 4]);
    }

    #[test]
    fn drop_newest_keeps_what_it_has() {
        let mut retention = filled(WhenFull::DropNewest, 6);
        assert_eq!(retention.dropped(), 2);
        assert_eq!(ids(&retention.take(10)), [0, 1]);
    }

    #[test]
    fn block_gives_the_event_back_until_there_is_room() {
        let mut retention = filled(WhenFull::Block, 4);
        let back = retention.push(Event::new("e4")).unwrap_err();
        assert_eq!(retention.dropped(), 0);
        retention.take(1);
        retention.resolve(0, Outcome::Acknowledged);
        retention.push_block(back).unwrap();
        assert_eq!(retention.len(), 4);
    }

    #[test]
    fn the_byte_limit_counts_too() {
        let mut retention = Retention::new(Config {
            read_count: 5,
            max_elements: 100,
            max_bytes: 10,
            when_full: WhenFull::DropOldest,
        });
        for text in ["aaaa", "bbbb", "cccc"] {
            retention.push(Event::new(text)).unwrap();
        }
        assert_eq!((retention.len(), retention.dropped()), (2, 1));
        retention.push(Event::new("x".repeat(11))).unwrap();
        assert_eq!(
            retention.dropped(),
            2,
            "an event larger than the whole buffer is dropped"
        );
    }
}
