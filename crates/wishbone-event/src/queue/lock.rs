//! The locked state of a queue: set by its receiver, followed by senders.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Weak};
use std::task::Poll;

use tokio::sync::watch;

use super::sender::{Target, locked_of};

/// Follows the locked state of the queue one sender sends to, and of the
/// next one when a reload re-wires the sender.
#[derive(Clone, Debug)]
pub struct LockWatch {
    locked: Option<watch::Receiver<bool>>,
    target: Weak<Target>,
    rewired: watch::Receiver<u64>,
}

impl LockWatch {
    pub(super) fn new(
        locked: Option<watch::Receiver<bool>>,
        target: Weak<Target>,
        rewired: watch::Receiver<u64>,
    ) -> Self {
        Self {
            locked,
            target,
            rewired,
        }
    }

    /// The current state.
    pub fn is_locked(&self) -> bool {
        self.locked.as_ref().is_some_and(|locked| *locked.borrow())
    }

    /// Waits for the next change, or for the sender to be re-wired; never
    /// returns for a queue that cannot change (unconnected, or whose
    /// receiver is gone) unless the sender is re-wired.
    pub async fn changed(&mut self) {
        let moved = {
            let mut locked = pin!(async {
                match &mut self.locked {
                    Some(locked) => {
                        if locked.changed().await.is_err() {
                            std::future::pending::<()>().await
                        }
                    }
                    None => std::future::pending::<()>().await,
                }
            });
            let mut rewired = pin!(async {
                if self.rewired.changed().await.is_err() {
                    std::future::pending::<()>().await
                }
            });
            std::future::poll_fn(|cx| {
                if locked.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(false);
                }
                rewired.as_mut().poll(cx).map(|()| true)
            })
            .await
        };
        if moved && let Some(target) = self.target.upgrade() {
            self.locked = locked_of(&target.endpoint.load());
        }
    }
}

/// Locks and unlocks one queue on behalf of its receiver
/// ([`Receiver::locker`](super::Receiver::locker)).
#[derive(Clone, Debug)]
pub struct Locker(pub(super) Arc<watch::Sender<bool>>);

impl Locker {
    /// Asks upstream flow modules to route around the queue.
    pub fn lock(&self) {
        self.0
            .send_if_modified(|locked| !std::mem::replace(locked, true));
    }

    /// Takes the queue back into rotation.
    pub fn unlock(&self) {
        self.0
            .send_if_modified(|locked| std::mem::replace(locked, false));
    }

    /// The current state.
    pub fn is_locked(&self) -> bool {
        *self.0.borrow()
    }
}
