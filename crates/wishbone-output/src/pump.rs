//! The one loop that moves events over a live connection, for every output:
//! take parcels from the inbox while the connection has room, gather what
//! else waits into the same write, learn what the peer acknowledged, notice
//! a peer that stopped acknowledging, and end when the inbox closed and
//! everything is delivered, on an abort, or when the connection dies.

use std::collections::VecDeque;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use wishbone_runtime::Parcel;

use crate::state::OutputState;
use crate::transport::{Connection, OnStall, Sent};

/// Takes in an acknowledgement of `$position`: what it released is
/// counted, and handed to `success` when asked.
macro_rules! take_in {
    ($state:expr, $position:expr) => {{
        let success = $state.release($position);
        if !success.is_empty() {
            $state.pass_on(success).await;
        }
    }};
}

/// Takes in what the connection said (`heard`, `acknowledged`, `tick`):
/// an acknowledgement, nothing, or its end, which ends the pump's loop.
macro_rules! take_in_or_end {
    ($state:expr, $said:expr, $connection:expr) => {
        match $said {
            Ok(Some(position)) => take_in!($state, position),
            Ok(None) => {}
            Err(error) => break lost(&$connection, error),
        }
    };
}

/// How a connection that failed ended: to be made again at once, or lost.
fn lost<C: Connection>(connection: &C, error: String) -> Ended {
    match connection.again_at_once() {
        true => Ended::Again(error),
        false => Ended::Lost(error),
    }
}

/// How a connection's pump ended.
pub(crate) enum Ended {
    /// Everything was delivered and the inbox is closed.
    Drained,
    /// The connection died or was given up on.
    Lost(String),
    /// The connection ended to send its events again at once: no outage.
    Again(String),
    /// The server aborted the drain.
    Aborted,
}

/// Runs one connection until it ends. Before returning, every
/// acknowledgement the connection can still learn of is taken in, and
/// what was taken from the inbox and never written is recorded as unsent.
pub(crate) async fn pump<C: Connection>(
    mut connection: C,
    state: &mut OutputState,
    abort: &CancellationToken,
) -> Ended {
    let (held, resent) = state.delivery.begin(std::time::Instant::now());
    state.resending(resent);
    let mut waiting = Waiting::default();
    waiting.push(Parcel::Events(held));
    let mut tick = tokio::time::interval(connection.tick_every());
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let ended = loop {
        if !state.delivery.is_settled() {
            take_in_or_end!(state, connection.acknowledged(), connection);
        }
        let room = connection.room(state.delivery.in_flight());
        if room > 0 && !waiting.is_empty() {
            let parcels = waiting.take(room);
            let mut sent = Sent::new(&mut state.delivery, state.timeout);
            let result = connection.send(parcels, &mut sent).await;
            let mut aborted = false;
            for (event, reason) in sent.into_rejected() {
                aborted = aborted || !state.reject(event, &reason, abort).await;
            }
            if aborted {
                break Ended::Aborted;
            }
            if let Err(error) = result {
                break lost(&connection, error);
            }
            continue;
        }
        if waiting.is_empty() && !state.inbox_open && state.delivery.is_settled() {
            connection.close(state.timeout).await;
            break Ended::Drained;
        }
        let take = waiting.is_empty() && room > 0;
        let divert = state.delivery.is_stalled() && state.delivery.fails_over();
        tokio::select! {
            biased;
            _ = abort.cancelled() => break Ended::Aborted,
            heard = connection.heard() => take_in_or_end!(state, heard, connection),
            parcel = state.inbox.recv_parcel(), if state.inbox_open && (take || divert) => match parcel {
                None => state.inbox_open = false,
                Some(parcel) if divert => {
                    if !state.fail(parcel.into_events(), abort).await {
                        break Ended::Aborted;
                    }
                }
                Some(parcel) => {
                    let mut events = parcel.len();
                    waiting.push(parcel);
                    if events < room {
                        state
                            .gather(|parcel| {
                                events += parcel.len();
                                waiting.push(parcel);
                                events < room
                            })
                            .await;
                    }
                }
            },
            _ = tick.tick(), if !state.delivery.is_settled() => {
                take_in_or_end!(state, connection.tick(), connection);
                if connection.on_stall() == OnStall::Reconnect {
                    if state.stalled_now() {
                        break Ended::Lost(format!("no acknowledgement for {:?}", state.timeout));
                    }
                } else {
                    state.check_stall();
                }
            }
        }
    };
    let dead = matches!(ended, Ended::Lost(_) | Ended::Again(_));
    if let Some(position) = connection.finish(dead).await {
        take_in!(state, position);
    }
    for parcel in waiting.parcels {
        state.delivery.record_unsent(parcel);
    }
    ended
}

/// Parcels taken from the inbox and not yet handed to the connection,
/// oldest first.
#[derive(Default)]
struct Waiting {
    parcels: VecDeque<Parcel>,
}

impl Waiting {
    #[inline]
    fn push(&mut self, parcel: Parcel) {
        if !parcel.is_empty() {
            self.parcels.push_back(parcel);
        }
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.parcels.is_empty()
    }

    /// The oldest parcels, `room` events at most; a parcel that does not
    /// fit whole is split.
    #[inline]
    fn take(&mut self, mut room: usize) -> Vec<Parcel> {
        let mut taken = Vec::new();
        while room > 0
            && let Some(mut parcel) = self.parcels.pop_front()
        {
            if parcel.len() > room {
                let rest = parcel.split_off(room);
                self.parcels.push_front(rest);
            }
            room -= parcel.len();
            taken.push(parcel);
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wishbone_runtime::Event;

    fn parcel(count: usize) -> Parcel {
        Parcel::Events((0..count).map(|n| Event::new(n.to_string())).collect())
    }

    #[test]
    fn waiting_parcels_are_taken_oldest_first_and_split_to_fit() {
        let mut waiting = Waiting::default();
        waiting.push(parcel(3));
        waiting.push(parcel(0));
        waiting.push(parcel(4));
        let lengths = |parcels: Vec<Parcel>| parcels.iter().map(Parcel::len).collect::<Vec<_>>();
        assert_eq!(lengths(waiting.take(5)), [3, 2]);
        assert_eq!(lengths(waiting.take(1)), [1]);
        assert_eq!(lengths(waiting.take(usize::MAX)), [1]);
        assert!(waiting.is_empty());
        assert!(waiting.take(3).is_empty());
    }
}
