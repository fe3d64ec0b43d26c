//! `wishbone.flow.roundrobin`: deals events from `inbox` to its destinations
//! in strict rotation, skipping destinations that are down.
//!
//! The text `wishbone show --docs` prints is [`DOCS`]. The dealing is done by
//! [`Rotation`], a plain struct; the module around it waits for room on each
//! destination and re-deals a destination's share when it locks meanwhile.

use futures::future::{LocalBoxFuture, select_all};
use serde::Deserialize;
use wishbone_runtime::queue::{LockWatch, Sender};
use wishbone_runtime::{
    ArgumentError, Arguments, Batch, Module, ModuleContext, ModuleError, ModuleKind, QueueSpec,
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
  events wait here, and the inbox fills up and pushes back upstream.

Example
  modules:
    roundrobin:
      module: wishbone.flow.roundrobin
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

    /// Deals a batch over the destinations marked up: one batch per
    /// destination (empty for those down), each in input order. Returns the
    /// batch whole when none is up.
    pub fn deal(&mut self, batch: Batch, up: &[bool]) -> Result<Vec<Batch>, Batch> {
        let count = up.len();
        if !up.contains(&true) {
            return Err(batch);
        }
        let mut shares: Vec<Batch> = (0..count)
            .map(|_| Batch::with_capacity(batch.len() / count + 1))
            .collect();
        for event in batch {
            self.next %= count;
            while !up[self.next] {
                self.next = (self.next + 1) % count;
            }
            shares[self.next].push(event);
            self.next += 1;
        }
        Ok(shares)
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
            let dealing = deal_all(name, inbox, destinations, Rotation::starting_at(start));
            tokio::select! {
                outcome = dealing => outcome,
                _ = abort.cancelled() => Err(ModuleError("aborted while events waited for a destination".into())),
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
    mut rotation: Rotation,
) -> Result<(), ModuleError> {
    if destinations.is_empty() {
        tracing::warn!(module = %name, "no destinations connected: events are dropped and counted");
    }
    let mut watches: Vec<LockWatch> = destinations
        .iter()
        .map(|(_, sender)| sender.lock_watch())
        .collect();
    let mut gone = vec![false; destinations.len()];
    while let Some(batch) = inbox.recv().await {
        if destinations.is_empty() {
            inbox.stats().record_dropped(batch.len());
            continue;
        }
        let mut todo = batch;
        while !todo.is_empty() {
            let up: Vec<bool> = destinations
                .iter()
                .zip(&gone)
                .map(|((_, sender), gone)| !gone && !sender.is_locked())
                .collect();
            let shares = match rotation.deal(todo, &up) {
                Ok(shares) => shares,
                Err(batch) => {
                    if gone.iter().all(|gone| *gone) {
                        return Err(ModuleError(format!(
                            "every destination is gone; {} events undelivered",
                            batch.len()
                        )));
                    }
                    todo = batch;
                    let waits = watches.iter_mut().map(|watch| Box::pin(watch.changed()));
                    select_all(waits).await;
                    continue;
                }
            };
            todo = Batch::new();
            for (index, share) in shares
                .into_iter()
                .enumerate()
                .filter(|(_, share)| !share.is_empty())
            {
                let sender = &destinations[index].1;
                let watch = &mut watches[index];
                let reserved = tokio::select! {
                    reserved = sender.reserve(share.len()) => reserved,
                    () = locked(watch) => {
                        todo.extend(share);
                        continue;
                    }
                };
                let refused = match reserved {
                    Ok(permit) => permit.send(share).err().map(|closed| closed.0),
                    Err(()) => Some(share),
                };
                if let Some(share) = refused {
                    tracing::warn!(module = %name, destination = %destinations[index].0, "destination gone");
                    gone[index] = true;
                    todo.extend(share);
                }
            }
        }
    }
    Ok(())
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
    use wishbone_runtime::Event;

    fn numbered(count: usize) -> Batch {
        (0..count).map(|i| Event::new(i.to_string())).collect()
    }

    fn texts(batch: &Batch) -> Vec<String> {
        batch
            .iter()
            .map(|e| String::from_utf8_lossy(e.data()).into_owned())
            .collect()
    }

    #[test]
    fn strict_rotation_continues_across_batches() {
        let mut rotation = Rotation::default();
        let first = rotation.deal(numbered(3), &[true, true]).unwrap();
        let second = rotation.deal(numbered(3), &[true, true]).unwrap();
        assert_eq!(texts(&first[0]), ["0", "2"]);
        assert_eq!(texts(&first[1]), ["1"]);
        assert_eq!(texts(&second[0]), ["1"]);
        assert_eq!(texts(&second[1]), ["0", "2"]);
    }

    #[test]
    fn a_destination_that_is_down_is_skipped_and_restored() {
        let mut rotation = Rotation::default();
        let skipped = rotation.deal(numbered(4), &[true, false, true]).unwrap();
        assert_eq!(skipped.iter().map(Vec::len).collect::<Vec<_>>(), [2, 0, 2]);
        let restored = rotation.deal(numbered(3), &[true, true, true]).unwrap();
        assert_eq!(restored.iter().map(Vec::len).collect::<Vec<_>>(), [1, 1, 1]);
    }

    #[test]
    fn an_even_split_is_exact_and_in_order() {
        let mut rotation = Rotation::starting_at(1);
        let shares = rotation.deal(numbered(10_000), &[true, true]).unwrap();
        assert_eq!((shares[0].len(), shares[1].len()), (5000, 5000));
        assert_eq!(texts(&shares[1])[..3], ["0", "2", "4"]);
    }

    #[test]
    fn with_none_up_the_batch_comes_back_whole() {
        let mut rotation = Rotation::default();
        let back = rotation.deal(numbered(5), &[false, false]).unwrap_err();
        assert_eq!(back.len(), 5);
    }
}
