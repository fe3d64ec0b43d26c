//! The loop the filter and the selector share: take a parcel, sort it,
//! settle what goes nowhere, and send the rest on with backpressure; the
//! inbox is down while a destination is. A parcel whose conditions take
//! long is sorted in slices, taking turns with the other modules of the
//! thread (`wishbone_runtime::turn`).

use wishbone_runtime::Parcel;
use wishbone_runtime::queue::Sender;
use wishbone_runtime::turn::map_in_turn;
use wishbone_runtime::{Counted, LockRelay, ModuleContext, ModuleError};

use crate::sort::{Choice, Sorted, sort};

/// What a condition that failed on an event costs: counted, and logged the
/// first time with the reason.
pub(crate) struct ConditionErrors {
    module: String,
    counted: Counted,
}

impl ConditionErrors {
    pub(crate) fn new(module: &str) -> Self {
        Self {
            module: module.to_string(),
            counted: Counted::new(module, "condition_errors"),
        }
    }

    /// Counts one error; the first is logged.
    pub(crate) fn count(&self, place: &str, reason: &str) {
        if self.counted.total() == 0 {
            tracing::warn!(module = %self.module, %place, %reason, "a condition failed on an event; it counts as not matching (module.{}.condition_errors counts them)", self.module);
        }
        self.counted.add(1);
    }
}

/// Sorts every parcel from the module's inbox into `queues` (in the order
/// of a [`Choice`]'s bits) until it closes; events on `discarding`, when
/// no route connects it, were filtered out on purpose and are counted as
/// discarded, not dropped. At the end, the number of condition errors is
/// logged.
pub(crate) async fn route<'a>(
    mut context: ModuleContext,
    queues: impl IntoIterator<Item = &'a str>,
    discarding: &str,
    paced: bool,
    choose: impl Fn(&[u8], &ConditionErrors) -> Choice + Sync,
) -> Result<(), ModuleError> {
    let mut inbox = context.take_incoming("inbox");
    let destinations: Vec<(String, Sender)> = queues
        .into_iter()
        .map(|queue| match queue == discarding {
            true => (queue.to_string(), context.discards(queue)),
            false => (queue.to_string(), context.outgoing(queue)),
        })
        .collect();
    let errors = ConditionErrors::new(context.name());
    let workers = context.options().threads;
    // Any destination may get any event: while one is down, so is the inbox.
    let mut relay = LockRelay::new(
        vec![inbox.locker()],
        destinations.iter().map(|(_, sender)| sender),
    );
    loop {
        let parcel = tokio::select! {
            parcel = inbox.recv_parcel() => parcel,
            () = relay.follow() => continue,
        };
        let Some(mut parcel) = parcel else { break };
        while !parcel.is_empty() {
            let (choices, rest) =
                choose_in_turn(&mut parcel, paced, workers, |event| choose(event, &errors));
            let mut chosen = choices.into_iter();
            let sorted = sort(parcel, destinations.len(), |_| chosen.next().unwrap_or(1));
            deliver(sorted, &destinations)
                .await
                .map_err(|error| error.holding_more(rest.len()))?;
            if !rest.is_empty() {
                // The module's turn ended: the others of its thread run.
                tokio::task::yield_now().await;
            }
            parcel = rest;
        }
    }
    tracing::info!(module = %errors.module, condition_errors = errors.counted.total(), "routing totals");
    Ok(())
}

/// Where each event of `parcel` goes, in order, for as many events as a
/// turn allows when `paced` (every one otherwise), asked on `workers`
/// threads when paced; the events not reached are split off and returned.
fn choose_in_turn(
    parcel: &mut Parcel,
    paced: bool,
    workers: usize,
    choose: impl Fn(&[u8]) -> Choice + Sync,
) -> (Vec<Choice>, Parcel) {
    let choices = map_in_turn(parcel, paced, workers, choose);
    let rest = parcel.split_off(choices.len());
    (choices, rest)
}

/// Sends each destination its parcel of `sorted`.
async fn deliver(sorted: Sorted, destinations: &[(String, Sender)]) -> Result<(), ModuleError> {
    sorted.settle_unconnected(|index| destinations[index].1.is_connected());
    let Sorted(parcels) = sorted;
    let mut parcels = parcels.into_iter();
    for (name, sender) in destinations {
        let Some(parcel) = parcels.next() else { break };
        if let Err(closed) = sender.send(parcel).await {
            let undelivered = closed.0.len() + parcels.map(|parcel| parcel.len()).sum::<usize>();
            return Err(ModuleError::DownstreamGone {
                queue: name.clone(),
                undelivered,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wishbone_runtime::Event;

    #[test]
    fn choices_asked_on_several_threads_are_those_of_one_in_order() {
        let parcel = || Parcel::Events((0..2000).map(|n: u32| Event::new(n.to_string())).collect());
        let choose = |data: &[u8]| -> Choice {
            let n: u32 = std::str::from_utf8(data).unwrap().parse().unwrap();
            1 << (n % 3)
        };
        let mut every = Vec::new();
        for workers in [1, 3] {
            let (mut all, mut parcel) = (Vec::new(), parcel());
            while !parcel.is_empty() {
                let (choices, rest) = choose_in_turn(&mut parcel, true, workers, choose);
                assert_eq!(choices.len(), parcel.len(), "one choice an event kept");
                all.extend(choices);
                parcel = rest;
            }
            every.push(all);
        }
        assert_eq!(every[0].len(), 2000);
        assert_eq!(every[0], every[1]);
    }
}
