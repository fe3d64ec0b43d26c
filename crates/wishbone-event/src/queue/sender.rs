//! The producing end of a queue, and how a reload points it at another.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use arc_swap::ArcSwap;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot, watch};

use super::{Closed, Entry, Link, LockWatch, Receiver, TrySendError, WeakLink};
use crate::{Parcel, QueueStats};

/// The queue a sender puts its events on.
#[derive(Debug)]
pub(super) struct Endpoint {
    pub(super) link: Option<Link>,
    pub(super) stats: Arc<QueueStats>,
    pub(super) capacity: usize,
    /// Unconnected, and what is put on it is discarded rather than dropped.
    pub(super) discards: bool,
}

impl Endpoint {
    /// Counts what a queue no route connects was given.
    fn unrouted(&self, events: usize) {
        match self.discards {
            true => self.stats.record_discarded(events),
            false => self.stats.record_dropped(events),
        }
    }
}

/// What every clone of one sender shares: the queue it sends to now.
#[derive(Debug)]
pub(super) struct Target {
    pub(super) endpoint: ArcSwap<Endpoint>,
    /// Counts rewirings, for the lock watches of this sender.
    pub(super) rewired: watch::Sender<u64>,
}

/// The producing end of a queue.
#[derive(Clone, Debug)]
pub struct Sender {
    target: Arc<Target>,
}

/// Room reserved on a queue for one batch; sending consumes it.
#[derive(Debug)]
pub struct Permit {
    link: Option<(mpsc::UnboundedSender<Entry>, OwnedSemaphorePermit)>,
    endpoint: Arc<Endpoint>,
}

impl Sender {
    pub(super) fn new(endpoint: Endpoint) -> Self {
        Self {
            target: Arc::new(Target {
                endpoint: ArcSwap::from_pointee(endpoint),
                rewired: watch::Sender::new(0),
            }),
        }
    }

    /// Waits for room, then puts the batch (or lines) on the queue. Returns
    /// the events when the receiving module is gone.
    pub async fn send(&self, parcel: impl Into<Parcel>) -> Result<(), Closed> {
        let parcel = parcel.into();
        if parcel.is_empty() {
            return Ok(());
        }
        match self.reserve(parcel.len()).await {
            Ok(permit) => permit.send(parcel),
            Err(()) => Err(Closed(parcel.into_events())),
        }
    }

    /// Waits until the queue has room for `events` events. A batch larger
    /// than the whole queue waits for an empty queue. Dropping the returned
    /// future gives up the wait and loses nothing.
    pub async fn reserve(&self, events: usize) -> Result<Permit, ()> {
        let endpoint = self.target.endpoint.load_full();
        let Some(link) = &endpoint.link else {
            return Ok(Permit {
                link: None,
                endpoint: endpoint.clone(),
            });
        };
        let room = room_for(&endpoint, events);
        let permit = link
            .space
            .clone()
            .acquire_many_owned(room)
            .await
            .map_err(|_| ())?;
        Ok(Permit {
            link: Some((link.tx.clone(), permit)),
            endpoint: endpoint.clone(),
        })
    }

    /// Puts the batch on the queue only if there is room now; metrics use
    /// this so they never hold up the event flow.
    pub fn try_send(&self, batch: impl Into<Parcel>) -> Result<(), TrySendError> {
        let batch = batch.into();
        let endpoint = self.target.endpoint.load_full();
        let Some(link) = &endpoint.link else {
            endpoint.unrouted(batch.len());
            return Ok(());
        };
        match link
            .space
            .clone()
            .try_acquire_many_owned(room_for(&endpoint, batch.len()))
        {
            Ok(permit) => Permit {
                link: Some((link.tx.clone(), permit)),
                endpoint: endpoint.clone(),
            }
            .send(batch)
            .map_err(|Closed(batch)| TrySendError::Closed(batch)),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                Err(TrySendError::Full(batch.into_events()))
            }
            Err(tokio::sync::TryAcquireError::Closed) => {
                Err(TrySendError::Closed(batch.into_events()))
            }
        }
    }

    /// False for a queue no route connects.
    pub fn is_connected(&self) -> bool {
        self.target.endpoint.load().link.is_some()
    }

    /// True while the receiving module asks to be routed around (an output
    /// whose peer is down).
    pub fn is_locked(&self) -> bool {
        self.target
            .endpoint
            .load()
            .link
            .as_ref()
            .is_some_and(|link| *link.locked.borrow())
    }

    /// A handle that wakes when the queue is locked or unlocked, or when
    /// a reload points this sender at another queue.
    pub fn lock_watch(&self) -> LockWatch {
        LockWatch::new(
            locked_of(&self.target.endpoint.load()),
            Arc::downgrade(&self.target),
            self.target.rewired.subscribe(),
        )
    }

    /// The counters of the queue it sends to now.
    pub fn stats(&self) -> Arc<QueueStats> {
        self.target.endpoint.load().stats.clone()
    }

    /// How many events the queue holds at most.
    pub fn capacity(&self) -> usize {
        self.target.endpoint.load().capacity
    }

    /// Asks the receiver to hand its end over: it sees the queue end after
    /// every parcel sent before this call, and once it is dropped the
    /// answer is a receiver of the rest, for another module. None for an
    /// unconnected queue or one whose receiver is gone.
    pub fn hand_over(&self) -> Option<oneshot::Receiver<Receiver>> {
        let endpoint = self.target.endpoint.load();
        let link = endpoint.link.as_ref()?;
        let (back, answer) = oneshot::channel();
        link.tx.send(Entry::HandOver(back)).ok()?;
        link.asked.store(true, Ordering::Release);
        Some(answer)
    }

    /// A handle that reaches the queue it sends to now without keeping it
    /// open.
    pub fn downgrade(&self) -> WeakSender {
        let endpoint = self.target.endpoint.load();
        WeakSender {
            link: endpoint.link.as_ref().map(|link| WeakLink {
                tx: link.tx.downgrade(),
                space: link.space.clone(),
                locked: link.locked.clone(),
                asked: link.asked.clone(),
            }),
            stats: endpoint.stats.clone(),
            capacity: endpoint.capacity,
        }
    }

    /// Whether both send to the same queue now.
    pub fn same_queue(&self, other: &Sender) -> bool {
        Arc::ptr_eq(&self.stats(), &other.stats())
    }

    /// A handle that points this sender and all its clones at another
    /// queue, without keeping any of them alive.
    pub fn rewiring(&self) -> Rewiring {
        Rewiring {
            target: Arc::downgrade(&self.target),
        }
    }
}

fn room_for(endpoint: &Endpoint, events: usize) -> u32 {
    events.clamp(1, endpoint.capacity).min(u32::MAX as usize) as u32
}

pub(super) fn locked_of(endpoint: &Endpoint) -> Option<watch::Receiver<bool>> {
    endpoint.link.as_ref().map(|link| link.locked.clone())
}

/// Points a module's [`Sender`] (every clone of it) at another queue, as a
/// reload re-wires a module it keeps. Parcels already sent or reserved
/// stay on the queue they were for.
#[derive(Clone, Debug)]
pub struct Rewiring {
    target: Weak<Target>,
}

impl Rewiring {
    /// From now on, the sender puts its events where `destination` does.
    /// False when every clone of the sender is gone.
    pub fn to(&self, destination: &Sender) -> bool {
        let Some(target) = self.target.upgrade() else {
            return false;
        };
        target
            .endpoint
            .store(destination.target.endpoint.load_full());
        target.rewired.send_modify(|count| *count += 1);
        true
    }

    /// Whether the sender puts its events where `destination` does; false
    /// when it is gone.
    pub fn sends_like(&self, destination: &Sender) -> bool {
        self.target.upgrade().is_some_and(|target| {
            Arc::ptr_eq(
                &target.endpoint.load().stats,
                &destination.target.endpoint.load().stats,
            )
        })
    }
}

/// A [`Sender`] that does not keep its queue open: once every sender is
/// gone the queue closes, and [`WeakSender::upgrade`] says so.
#[derive(Clone, Debug)]
pub struct WeakSender {
    link: Option<WeakLink>,
    stats: Arc<QueueStats>,
    capacity: usize,
}

impl WeakSender {
    /// A sender of the queue, if it is still open (an unconnected queue
    /// always is). A new sender: rewiring one never moves another.
    pub fn upgrade(&self) -> Option<Sender> {
        let link = match &self.link {
            None => None,
            Some(link) => Some(Link {
                tx: link.tx.upgrade()?,
                space: link.space.clone(),
                locked: link.locked.clone(),
                asked: link.asked.clone(),
            }),
        };
        Some(Sender::new(Endpoint {
            link,
            stats: self.stats.clone(),
            capacity: self.capacity,
            discards: false,
        }))
    }
}

impl Permit {
    /// Puts the batch (or lines) on the queue. It may be larger than what
    /// was reserved (the queue then briefly holds more than its capacity),
    /// never unboundedly so: the next reservation waits for the room to come
    /// back.
    pub fn send(self, parcel: impl Into<Parcel>) -> Result<(), Closed> {
        let parcel = parcel.into();
        let events = parcel.len();
        match self.link {
            None => {
                self.endpoint.unrouted(events);
                Ok(())
            }
            Some((tx, room)) => {
                self.endpoint.stats.tap_point().offer(&parcel);
                match tx.send(Entry::Parcel {
                    parcel,
                    _room: Some(room),
                }) {
                    Ok(()) => {
                        self.endpoint.stats.record_in(events);
                        Ok(())
                    }
                    Err(mpsc::error::SendError(Entry::Parcel { parcel, .. })) => {
                        Err(Closed(parcel.into_events()))
                    }
                    // Only a parcel was sent here.
                    Err(mpsc::error::SendError(Entry::HandOver(_))) => Ok(()),
                }
            }
        }
    }
}
