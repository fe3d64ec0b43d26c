//! How a flow module passes its destinations' state upstream: an output
//! whose peer is down locks its inbox; a module between it and a round
//! robin (a funnel, a fanout, a selector, a process module) locks its own
//! inboxes in turn, so the round robin routes around the dead path however
//! many modules stand on it, and a write-ahead buffer holds its events
//! instead of sending them down a path that can only fail them.

use futures::future::select_all;
use wishbone_event::queue::{LockWatch, Locker, Sender};

/// The inbound queues of one module and the destinations whose state they
/// follow: they are locked while any destination is.
///
/// Any, not all: every destination named here must receive what the module
/// passes on (a fanout's copies, a funnel's one outbox), or may receive any
/// given event (a selector's queues, which content chooses). A round robin
/// chooses among its destinations, and so follows the opposite rule itself.
#[derive(Debug)]
pub struct LockRelay {
    inbound: Vec<Locker>,
    destinations: Vec<LockWatch>,
}

impl LockRelay {
    /// Relays the state of `destinations` (connected ones only count) to
    /// `inbound`, at once and on every [`LockRelay::follow`].
    pub fn new<'a>(
        inbound: Vec<Locker>,
        destinations: impl IntoIterator<Item = &'a Sender>,
    ) -> Self {
        let relay = Self {
            inbound,
            destinations: destinations
                .into_iter()
                .filter(|sender| sender.is_connected())
                .map(Sender::lock_watch)
                .collect(),
        };
        relay.apply();
        relay
    }

    /// Whether some destination is down now.
    pub fn is_down(&self) -> bool {
        self.destinations.iter().any(LockWatch::is_locked)
    }

    fn apply(&self) {
        let down = self.is_down();
        for locker in &self.inbound {
            match down {
                true => locker.lock(),
                false => locker.unlock(),
            }
        }
    }

    /// Waits for a destination to lock or unlock, then passes the state on.
    /// Never returns for a module without destinations that can change.
    pub async fn follow(&mut self) {
        match self.destinations.as_mut_slice() {
            [] => std::future::pending::<()>().await,
            // The usual case (a funnel's or a process module's one outbox):
            // no allocation each time it is awaited beside the inbox.
            [only] => only.changed().await,
            _ => {
                select_all(
                    self.destinations
                        .iter_mut()
                        .map(|watch| Box::pin(watch.changed())),
                )
                .await;
            }
        }
        self.apply();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use wishbone_event::queue;

    use super::*;

    #[tokio::test]
    async fn inbound_queues_are_locked_while_any_destination_is() {
        let (into_module, module_inbox) = queue::channel(4);
        let (to_a, a) = queue::channel(4);
        let (to_b, b) = queue::channel(4);
        a.lock();
        let mut relay = LockRelay::new(vec![module_inbox.locker()], [&to_a, &to_b]);
        assert!(into_module.is_locked(), "a destination down from the start");
        a.unlock();
        tokio::time::timeout(Duration::from_secs(1), relay.follow())
            .await
            .unwrap();
        assert!(!into_module.is_locked());
        b.lock();
        tokio::time::timeout(Duration::from_secs(1), relay.follow())
            .await
            .unwrap();
        assert!(into_module.is_locked(), "the other one down");
        let unconnected = queue::unconnected();
        let relay = LockRelay::new(vec![module_inbox.locker()], [&unconnected]);
        assert!(!relay.is_down() && !into_module.is_locked());
    }
}
