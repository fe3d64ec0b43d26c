//! `wishbone.flow.roundrobin`: deals events from `inbox` to its destinations
//! in strict rotation, skipping destinations that are down.
//!
//! The text `wishbone show --docs` prints is [`DOCS`]. The dealing is done by
//! [`Rotation`], a plain struct; the module around it waits for room on each
//! destination and re-deals a destination's share when it locks meanwhile.

use std::cell::Cell;
use std::rc::Rc;

use bytes::Bytes;
use futures::future::{LocalBoxFuture, select_all};
use serde::Deserialize;
use wishbone_runtime::queue::{LockWatch, Sender};
use wishbone_runtime::{
    ArgumentError, Arguments, Batch, Lines, LinesBuilder, Module, ModuleContext, ModuleError,
    ModuleKind, Parcel, Positions, QueueSpec,
};

/// What `wishbone show --docs` prints.
pub const DOCS: &str = r#"wishbone.flow.roundrobin: deals events over its destinations in turn.

Queues
  inbox      events to deal
  <any>      every other queue a route connects is a destination, in the
             order the routing table lists them

Arguments (default)
  randomize  start the rotation at a random destination (false)

Behaviour
  With every destination up, N events over k destinations give each N/k,
  each in input order. A destination whose module locked its queue (an
  output whose peer is down or stopped reading) leaves the rotation until it
  unlocks; its share goes to the others. With every destination locked,
  the round robin locks its own inbox until one unlocks: a write-ahead
  buffer feeding it holds its events meanwhile (where its retention limits
  apply), and a round robin feeding it routes around it. What reached it
  anyway waits here, and the inbox fills up and pushes back upstream.

Example
  modules:
    input: {module: wishbone.input.tcp, arguments: {port: 19283}}
    roundrobin: {module: wishbone.flow.roundrobin}
    output_1: {module: wishbone.output.tcp, arguments: {port: 10001}}
    output_2: {module: wishbone.output.tcp, arguments: {port: 10002}}
  routingtable:
    - input.outbox -> roundrobin.inbox
    - roundrobin.one -> output_1.inbox
    - roundrobin.two -> output_2.inbox
"#;

/// The kind, for the list of builtin modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "wishbone.flow.roundrobin",
    aliases: &["wishbone.builtin.flow.roundrobin"],
    description: "deals events over its destinations in turn, skipping those that are down",
    docs: DOCS,
    queues: QueueSpec {
        incoming: &["inbox"],
        outgoing: &[],
        any_incoming: false,
        any_outgoing: true,
    },
    build,
};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Start the rotation at a random destination.
    #[serde(default)]
    pub randomize: bool,
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let config: Config = arguments.deserialize()?;
    Ok(Box::new(RoundRobin { config }))
}

/// Strict rotation over destinations, continuing across batches.
#[derive(Clone, Debug, Default)]
pub struct Rotation {
    next: usize,
}

impl Rotation {
    /// A rotation whose first event goes to destination `start`.
    pub fn starting_at(start: usize) -> Self {
        Self { next: start }
    }

    /// Deals events over the destinations marked up: one parcel per
    /// destination (empty for those down), each in input order. Lines stay
    /// lines: each destination's are copied into one buffer of its own, or
    /// passed on whole when only one destination is up. Returns the parcel
    /// whole when none is up.
    pub fn deal(&mut self, parcel: Parcel, up: &[bool]) -> Result<Vec<Parcel>, Parcel> {
        let live = up.iter().filter(|up| **up).count();
        if live == 0 {
            return Err(parcel);
        }
        let shares = match parcel {
            Parcel::Lines(lines) if live == 1 => {
                let mut shares = vec![Parcel::default(); up.len()];
                shares[self.following(up)] = Parcel::Lines(lines);
                shares
            }
            Parcel::Lines(mut lines) => {
                let (bytes, count) = (lines.data().len() / live + 1024, lines.len() / live + 1);
                let mut builders: Vec<LinesBuilder> = up
                    .iter()
                    .map(|&up| match up {
                        true => LinesBuilder::new(lines.delimiter().clone(), bytes, count),
                        false => LinesBuilder::new(lines.delimiter().clone(), 0, 0),
                    })
                    .collect();
                // Which of the block's events each share carries, for its
                // token: a failed share fails only those.
                let mut carried: Option<Vec<Positions>> =
                    lines.ack().map(|_| vec![Positions::new(); up.len()]);
                for index in 0..lines.len() {
                    let destination = self.following(up);
                    builders[destination].push_from(&lines, index);
                    if let Some(carried) = &mut carried {
                        carried[destination].push(index);
                    }
                }
                let mut shares: Vec<Lines> =
                    builders.into_iter().map(LinesBuilder::finish).collect();
                // A buffer's block is delivered once every share of it is.
                if let (Some(ack), Some(carried)) = (lines.take_ack(), carried) {
                    let dealt = carried
                        .into_iter()
                        .filter(|part| !part.is_empty())
                        .collect();
                    let mut parts = ack.parts(dealt).into_iter();
                    for share in shares.iter_mut().filter(|share| !share.is_empty()) {
                        if let Some(part) = parts.next() {
                            let dealt = std::mem::replace(share, Lines::empty(Bytes::new()));
                            *share = dealt.with_ack(part);
                        }
                    }
                }
                shares.into_iter().map(Parcel::Lines).collect()
            }
            Parcel::Events(batch) => {
                let mut batches: Vec<Batch> = up
                    .iter()
                    .map(|&up| match up {
                        true => Batch::with_capacity(batch.len() / live + 1),
                        false => Batch::new(),
                    })
                    .collect();
                for event in batch {
                    batches[self.following(up)].push(event);
                }
                batches.into_iter().map(Parcel::Events).collect()
            }
        };
        Ok(shares)
    }

    /// The destination of the next event; at least one must be up.
    fn following(&mut self, up: &[bool]) -> usize {
        let count = up.len();
        if self.next >= count {
            self.next = 0;
        }
        while !up[self.next] {
            self.next += 1;
            if self.next == count {
                self.next = 0;
            }
        }
        let chosen = self.next;
        self.next += 1;
        chosen
    }
}

/// The module.
pub struct RoundRobin {
    config: Config,
}

impl Module for RoundRobin {
    fn run(
        self: Box<Self>,
        mut context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        let inbox = context.take_incoming("inbox");
        let destinations = context.destinations();
        let name = context.name().to_string();
        let start = if self.config.randomize {
            random_below(destinations.len())
        } else {
            0
        };
        let abort = context.aborting();
        Box::pin(async move {
            // Events in the dealer's hands, for the report of an abort.
            let holding = Rc::new(Cell::new(0));
            let dealing = deal_all(
                name,
                inbox,
                destinations,
                Rotation::starting_at(start),
                holding.clone(),
            );
            tokio::select! {
                outcome = dealing => outcome,
                _ = abort.cancelled() => Err(ModuleError::Aborted { undelivered: holding.get() }),
            }
        })
    }
}

/// A cheap random start, from the clock's nanoseconds; no cryptography needed.
fn random_below(count: usize) -> usize {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    nanos as usize % count.max(1)
}

async fn deal_all(
    name: String,
    mut inbox: wishbone_runtime::queue::Receiver,
    destinations: Vec<(String, Sender)>,
    rotation: Rotation,
    holding: Rc<Cell<usize>>,
) -> Result<(), ModuleError> {
    if destinations.is_empty() {
        tracing::warn!(module = %name, "no destinations connected: events are dropped and counted");
    }
    let mut dealer = Dealer {
        name,
        watches: destinations
            .iter()
            .map(|(_, sender)| sender.lock_watch())
            .collect(),
        gone: vec![false; destinations.len()],
        destinations,
        rotation,
        holding,
    };
    loop {
        follow_destinations(&inbox, &dealer.destinations, &dealer.gone);
        let parcel = tokio::select! {
            biased;
            parcel = inbox.recv_parcel() => parcel,
            () = any_changed(&mut dealer.watches), if !dealer.destinations.is_empty() => continue,
        };
        let Some(parcel) = parcel else {
            break;
        };
        if dealer.destinations.is_empty() {
            inbox.stats().record_dropped(parcel.len());
            continue;
        }
        dealer.deal(parcel, &inbox).await?;
    }
    Ok(())
}

/// The destinations and how the next event is dealt.
struct Dealer {
    name: String,
    destinations: Vec<(String, Sender)>,
    watches: Vec<LockWatch>,
    /// Destinations whose queue closed.
    gone: Vec<bool>,
    rotation: Rotation,
    /// Events in the dealer's hands, for the report of an abort.
    holding: Rc<Cell<usize>>,
}

impl Dealer {
    /// Deals `parcel` until every event is in a destination's queue: to
    /// those up, in turn; what one could not take (it locked meanwhile, or
    /// is gone) is dealt again among the others. While none is up, the
    /// inbox is locked and the dealer waits for a change.
    async fn deal(
        &mut self,
        parcel: Parcel,
        inbox: &wishbone_runtime::queue::Receiver,
    ) -> Result<(), ModuleError> {
        let mut todo = parcel;
        while !todo.is_empty() {
            self.holding.set(todo.len());
            let up: Vec<bool> = self
                .destinations
                .iter()
                .zip(&self.gone)
                .map(|((_, sender), gone)| !gone && !sender.is_locked())
                .collect();
            let shares = match self.rotation.deal(todo, &up) {
                Ok(shares) => shares,
                Err(batch) => {
                    if self.gone.iter().all(|gone| *gone) {
                        return Err(ModuleError::DownstreamGone {
                            queue: "every destination".into(),
                            undelivered: batch.len(),
                        });
                    }
                    todo = batch;
                    inbox.lock();
                    any_changed(&mut self.watches).await;
                    continue;
                }
            };
            todo = Parcel::default();
            for (index, share) in shares.into_iter().enumerate() {
                if share.is_empty() {
                    continue;
                }
                if let Some(refused) = self.hand_over(index, share).await {
                    todo.extend(refused);
                }
            }
        }
        self.holding.set(0);
        Ok(())
    }

    /// Hands `share` to destination `index`; what it could not take (it
    /// locked while waiting for room, or its queue closed) comes back.
    async fn hand_over(&mut self, index: usize, share: Parcel) -> Option<Batch> {
        let sender = &self.destinations[index].1;
        let count = share.len();
        let reserved = tokio::select! {
            reserved = sender.reserve(count) => reserved,
            () = locked(&mut self.watches[index]) => return Some(share.into_events()),
        };
        let refused = match reserved {
            Ok(permit) => permit.send(share).err().map(|closed| closed.0),
            Err(()) => Some(share.into_events()),
        };
        match &refused {
            Some(_) => {
                tracing::warn!(module = %self.name, destination = %self.destinations[index].0, "destination gone");
                self.gone[index] = true;
            }
            None => self.holding.set(self.holding.get().saturating_sub(count)),
        }
        refused
    }
}

/// Locks the inbox while no destination can take events (each is locked or
/// gone), unlocks it once one can; only a change takes the queue's lock.
fn follow_destinations(
    inbox: &wishbone_runtime::queue::Receiver,
    destinations: &[(String, Sender)],
    gone: &[bool],
) {
    let none_up = !destinations.is_empty()
        && destinations
            .iter()
            .zip(gone)
            .all(|((_, sender), gone)| *gone || sender.is_locked());
    match (none_up, inbox.is_locked()) {
        (true, false) => inbox.lock(),
        (false, true) => inbox.unlock(),
        _ => {}
    }
}

/// Returns once any of the queues is locked or unlocked.
async fn any_changed(watches: &mut [LockWatch]) {
    select_all(watches.iter_mut().map(|watch| Box::pin(watch.changed()))).await;
}

/// Returns once the queue is locked.
async fn locked(watch: &mut LockWatch) {
    while !watch.is_locked() {
        watch.changed().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use wishbone_runtime::{Event, Lines};

    fn numbered(count: usize) -> Parcel {
        Parcel::Events((0..count).map(|i| Event::new(i.to_string())).collect())
    }

    fn numbered_lines(count: usize) -> Parcel {
        let events = numbered(count).into_events();
        Parcel::Lines(Lines::encode(&events, &Bytes::from_static(b"\n")))
    }

    fn texts(parcel: &Parcel) -> Vec<String> {
        parcel
            .clone()
            .into_events()
            .iter()
            .map(|e| String::from_utf8_lossy(e.data()).into_owned())
            .collect()
    }

    fn sizes(shares: &[Parcel]) -> Vec<usize> {
        shares.iter().map(Parcel::len).collect()
    }

    #[test]
    fn strict_rotation_continues_across_batches() {
        let mut rotation = Rotation::default();
        let first = rotation.deal(numbered(3), &[true, true]).unwrap();
        let second = rotation.deal(numbered_lines(3), &[true, true]).unwrap();
        assert_eq!(texts(&first[0]), ["0", "2"]);
        assert_eq!(texts(&first[1]), ["1"]);
        assert_eq!(texts(&second[0]), ["1"]);
        assert_eq!(texts(&second[1]), ["0", "2"]);
    }

    #[test]
    fn a_destination_that_is_down_is_skipped_and_restored() {
        for parcel in [numbered, numbered_lines] {
            let mut rotation = Rotation::default();
            let skipped = rotation.deal(parcel(4), &[true, false, true]).unwrap();
            assert_eq!(sizes(&skipped), [2, 0, 2]);
            let restored = rotation.deal(parcel(3), &[true, true, true]).unwrap();
            assert_eq!(sizes(&restored), [1, 1, 1]);
        }
    }

    #[test]
    fn an_even_split_is_exact_and_in_order() {
        for parcel in [numbered, numbered_lines] {
            let mut rotation = Rotation::starting_at(1);
            let shares = rotation.deal(parcel(10_000), &[true, true]).unwrap();
            assert_eq!(sizes(&shares), [5000, 5000]);
            assert_eq!(texts(&shares[1])[..3], ["0", "2", "4"]);
            assert_eq!(texts(&shares[0])[4999], "9999");
        }
    }

    #[test]
    fn dealt_lines_are_encoded_lines_of_their_own() {
        let mut rotation = Rotation::default();
        let shares = rotation.deal(numbered_lines(5), &[true, true]).unwrap();
        let Parcel::Lines(first) = &shares[0] else {
            panic!("lines stay lines");
        };
        assert_eq!(&first.data()[..], b"0\n2\n4\n");
    }

    #[test]
    fn lines_for_the_only_destination_up_pass_whole_and_the_turn_moves_on() {
        let mut rotation = Rotation::default();
        let parcel = numbered_lines(4);
        let Parcel::Lines(sent) = &parcel else {
            unreachable!()
        };
        let buffer = sent.data().as_ptr();
        let shares = rotation.deal(parcel, &[false, true]).unwrap();
        let Parcel::Lines(passed) = &shares[1] else {
            panic!("lines stay lines");
        };
        assert_eq!((passed.len(), passed.data().as_ptr()), (4, buffer));
        let next = rotation.deal(numbered(1), &[true, true]).unwrap();
        assert_eq!(sizes(&next), [1, 0]);
    }

    #[test]
    fn with_none_up_the_batch_comes_back_whole() {
        let mut rotation = Rotation::default();
        let back = rotation.deal(numbered(5), &[false, false]).unwrap_err();
        assert_eq!(back.len(), 5);
    }
}
