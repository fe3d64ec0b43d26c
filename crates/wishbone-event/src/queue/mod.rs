//! The bounded channel behind one route of a routing table.
//!
//! A route `a.outbox -> b.inbox` is one queue: module `a` holds its
//! [`Sender`] (cloned freely, a TCP input gives one to each connection) and
//! module `b` its [`Receiver`]. Capacity counts events: a sender first
//! reserves room for a batch's events, waiting while the queue is full, then
//! hands the batch over. What travels is a [`Parcel`]: a batch, or lines in
//! their wire form; [`Receiver::recv`] gives separate events either way, and
//! [`Receiver::recv_parcel`] leaves lines as they are. Reserving and sending
//! are separate steps so a module can wait for room on several queues at
//! once and abandon a wait without losing the batch it holds.
//!
//! A queue that no route connects is still a [`Sender`] ([`unconnected`]): what
//! is put on it is dropped and counted in `dropped_total`, as in the original
//! Wishbone; one where a module's configuration chose to leave events
//! ([`discarding`]) counts them in `discarded_total` instead.
//!
//! A reload moves a queue's receiving end from the module it feeds to the
//! module that replaces it ([`Sender::hand_over`]): the receiver sees its
//! queue end after what came before, and once dropped the rest of the queue
//! goes, untouched, to the new module. A [`WeakSender`] lets the runtime
//! reach a queue without keeping it open.
//!
//! A reload also moves a queue's sending end: a module that keeps running
//! while the routes out of it change sends, from then on, into the queue
//! of its new destination ([`Rewiring`]). Every clone of its [`Sender`]
//! follows at once; what it sent before stays where it went.

mod lock;
mod receiver;
mod sender;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};

use crate::{Batch, Parcel, QueueStats};

pub use lock::{LockWatch, Locker};
pub use receiver::Receiver;
use sender::Endpoint;
pub use sender::{Permit, Rewiring, Sender, WeakSender};

/// Creates a queue that holds at most `capacity` events (at least one).
pub fn channel(capacity: usize) -> (Sender, Receiver) {
    let capacity = capacity.max(1);
    let (tx, rx) = mpsc::unbounded_channel();
    let space = Arc::new(Semaphore::new(capacity));
    let (locked_tx, locked_rx) = watch::channel(false);
    let locked_tx = Arc::new(locked_tx);
    let stats = Arc::new(QueueStats::default());
    let asked = Arc::new(AtomicBool::new(false));
    let sender = Sender::new(Endpoint {
        link: Some(Link {
            tx,
            space: space.clone(),
            locked: locked_rx,
            asked: asked.clone(),
        }),
        stats: stats.clone(),
        capacity,
        discards: false,
    });
    let receiver = Receiver {
        rx,
        space,
        locked: locked_tx,
        stats,
        capacity,
        handing_over: None,
        asked,
        returned: VecDeque::new(),
    };
    (sender, receiver)
}

/// A queue no route connects: everything put on it is dropped and counted.
pub fn unconnected() -> Sender {
    Sender::new(Endpoint {
        link: None,
        stats: Arc::new(QueueStats::default()),
        capacity: usize::MAX,
        discards: false,
    })
}

/// A queue no route connects, where a module's configuration chose to
/// leave events (a filter's `rejected`): what is put on it is discarded
/// and counted in `discarded_total`, apart from what is dropped.
pub fn discarding() -> Sender {
    Sender::new(Endpoint {
        link: None,
        stats: Arc::new(QueueStats::default()),
        capacity: usize::MAX,
        discards: true,
    })
}

/// A receiver that is already closed, for an incoming queue no route feeds.
pub fn closed(capacity: usize) -> Receiver {
    let (_, receiver) = channel(capacity);
    receiver
}

/// The receiving module is gone; the events come back so they are not lost.
#[derive(Debug)]
pub struct Closed(pub Batch);

/// Why [`Sender::try_send`] did not take a batch; the batch comes back.
#[derive(Debug)]
pub enum TrySendError {
    /// No room for the batch now.
    Full(Batch),
    /// The receiving module is gone.
    Closed(Batch),
}

#[derive(Clone, Debug)]
struct Link {
    tx: mpsc::UnboundedSender<Entry>,
    space: Arc<Semaphore>,
    locked: watch::Receiver<bool>,
    /// Set when the receiving end is asked to hand over.
    asked: Arc<AtomicBool>,
}

#[derive(Clone, Debug)]
struct WeakLink {
    tx: mpsc::WeakUnboundedSender<Entry>,
    space: Arc<Semaphore>,
    locked: watch::Receiver<bool>,
    asked: Arc<AtomicBool>,
}

/// What travels through the channel: a parcel and the room it takes, given
/// back when the receiver takes the parcel; or the request to hand the
/// receiving end over.
#[derive(Debug)]
enum Entry {
    Parcel {
        parcel: Parcel,
        _room: Option<OwnedSemaphorePermit>,
    },
    HandOver(oneshot::Sender<Receiver>),
}
