//! The one loop that moves events over a live connection, for every output:
//! take parcels from the inbox while the connection has room, gather what
//! else waits into the same write, learn what the peer acknowledged, notice
//! a peer that stopped acknowledging, and end when the inbox closed and
//! everything is delivered, on an abort, or when the connection dies. Every
//! write is the pump's ([`Connection::send`]); the connection only tells
//! what it heard.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use wishbone_runtime::Parcel;

use crate::state::OutputState;
use crate::transport::{Connection, Heard, OnStall, Sent};

/// How often a stall is looked for while something is outstanding.
const STALL_CHECK: Duration = Duration::from_millis(50);

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

/// What the pump does next, once a turn's news is taken in.
enum Turn {
    Go,
    End(Ended),
}

/// Runs one connection until it ends. Before returning, every
/// acknowledgement the connection can still learn of is taken in, and
/// what was taken from the inbox and never written is recorded as unsent.
pub(crate) async fn pump<C: Connection>(
    connection: &mut C,
    state: &mut OutputState,
    abort: &CancellationToken,
) -> Ended {
    let (held, resent) = state.delivery.begin(std::time::Instant::now());
    state.resending(resent);
    let mut waiting = Waiting::default();
    waiting.push(Parcel::Events(held));
    let mut stall_check = tokio::time::interval(STALL_CHECK);
    stall_check.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let ended = loop {
        let room = connection.room(state.delivery.in_flight());
        if room > 0 && !waiting.is_empty() {
            if let Turn::End(ended) = write(connection, state, waiting.take(room), abort).await {
                break ended;
            }
            continue;
        }
        if waiting.is_empty() && !state.inbox_open && state.delivery.is_settled() {
            connection.close(state.timeout).await;
            break Ended::Drained;
        }
        let take = waiting.is_empty() && room > 0;
        let divert = state.delivery.is_stalled() && state.delivery.fails_over();
        let turn = tokio::select! {
            biased;
            _ = abort.cancelled() => Turn::End(Ended::Aborted),
            heard = connection.heard() => match heard {
                Ok(Heard::Writable) => write(connection, state, Vec::new(), abort).await,
                Ok(heard) => state.take_in_heard(heard, abort).await,
                Err(error) => Turn::End(Ended::Lost(error)),
            },
            parcel = state.inbox.recv_parcel(), if state.inbox_open && (take || divert) => match parcel {
                None => {
                    state.inbox_open = false;
                    Turn::Go
                }
                Some(parcel) if divert => match state.fail(parcel.into_events(), abort).await {
                    true => Turn::Go,
                    false => Turn::End(Ended::Aborted),
                },
                Some(parcel) => {
                    waiting.gather(parcel, room, state).await;
                    Turn::Go
                }
            },
            _ = stall_check.tick(), if !state.delivery.is_settled() => {
                match connection.on_stall() {
                    OnStall::Reconnect if state.stalled_now() => Turn::End(Ended::Lost(format!(
                        "no acknowledgement for {:?}",
                        state.timeout
                    ))),
                    OnStall::Reconnect => Turn::Go,
                    OnStall::RouteAround => {
                        state.check_stall();
                        Turn::Go
                    }
                }
            }
        };
        if let Turn::End(ended) = turn {
            break ended;
        }
    };
    let dead = matches!(ended, Ended::Lost(_) | Ended::Again(_));
    if let Some(position) = connection.finish(dead).await {
        state.take_in(position).await;
    }
    for parcel in waiting.parcels {
        state.delivery.record_unsent(parcel);
    }
    ended
}

/// One write: `parcels` (none, when the connection has writing of its own
/// to do), then what it rejected and what it delivered at once.
async fn write<C: Connection>(
    connection: &mut C,
    state: &mut OutputState,
    parcels: Vec<Parcel>,
    abort: &CancellationToken,
) -> Turn {
    let mut sent = Sent::new(&mut state.delivery, state.timeout);
    let result = connection.send(parcels, &mut sent).await;
    let (rejected, delivered) = sent.into_outcome();
    for (event, reason) in rejected {
        if !state.reject(event, &reason, abort).await {
            return Turn::End(Ended::Aborted);
        }
    }
    if let Some(position) = delivered {
        state.take_in(position).await;
    }
    match result {
        Ok(()) => Turn::Go,
        Err(error) => Turn::End(Ended::Lost(error)),
    }
}

impl OutputState {
    /// The peer acknowledged up to `position`: what that released is
    /// counted, and handed to `success` when asked.
    async fn take_in(&mut self, position: u64) {
        let success = self.release(position);
        if !success.is_empty() {
            self.pass_on(success).await;
        }
    }

    /// Takes in what the connection heard (not [`Heard::Writable`], which
    /// is a write).
    async fn take_in_heard(&mut self, heard: Heard, abort: &CancellationToken) -> Turn {
        match heard {
            Heard::Acknowledged(position) => {
                self.take_in(position).await;
                Turn::Go
            }
            Heard::Refused { message, reason } => {
                let (refused, success) = self.refuse(message);
                if !success.is_empty() {
                    self.pass_on(success).await;
                }
                match refused {
                    Some(event) => match self.reject(event, &reason, abort).await {
                        true => Turn::Go,
                        false => Turn::End(Ended::Aborted),
                    },
                    None => Turn::Go,
                }
            }
            Heard::Again(reason) => Turn::End(Ended::Again(reason)),
            Heard::Writable => Turn::Go,
        }
    }
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

    /// Takes `parcel`, and what else waits in the inbox while the whole
    /// fits in `room` events: one write for all of it.
    async fn gather(&mut self, parcel: Parcel, room: usize, state: &mut OutputState) {
        let mut events = parcel.len();
        self.push(parcel);
        if events < room {
            state
                .gather(|parcel| {
                    events += parcel.len();
                    self.push(parcel);
                    events < room
                })
                .await;
        }
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
