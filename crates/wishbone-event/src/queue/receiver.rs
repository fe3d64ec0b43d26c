//! The consuming end of a queue.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use super::{Entry, Locker};
use crate::{Batch, Parcel, QueueStats};

/// The consuming end of a queue.
#[derive(Debug)]
pub struct Receiver {
    pub(super) rx: mpsc::UnboundedReceiver<Entry>,
    pub(super) space: Arc<Semaphore>,
    pub(super) locked: Arc<watch::Sender<bool>>,
    pub(super) stats: Arc<QueueStats>,
    pub(super) capacity: usize,
    /// Asked to hand its end over ([`Sender::hand_over`](super::Sender::hand_over)): the queue looks
    /// ended, and dropping the receiver hands the rest over.
    pub(super) handing_over: Option<oneshot::Sender<Receiver>>,
    /// Set by [`Sender::hand_over`](super::Sender::hand_over) at once, before the request is reached
    /// in the queue.
    pub(super) asked: Arc<AtomicBool>,
    /// Parcels a module took and gave back ([`Receiver::give_back`]),
    /// taken again before anything else on the queue.
    pub(super) returned: VecDeque<Parcel>,
}

impl Receiver {
    /// The next batch, or `None` once every sender is gone and the queue is
    /// empty: the signal for a module to finish its work and stop.
    pub async fn recv(&mut self) -> Option<Batch> {
        self.recv_parcel().await.map(Parcel::into_events)
    }

    /// The next batch if one is waiting now.
    pub fn try_recv(&mut self) -> Option<Batch> {
        self.try_recv_parcel().map(Parcel::into_events)
    }

    /// [`Receiver::recv`] for modules that can take lines as they are.
    pub async fn recv_parcel(&mut self) -> Option<Parcel> {
        std::future::poll_fn(|cx| self.poll_recv_parcel(cx)).await
    }

    /// [`Receiver::try_recv`] for modules that can take lines as they are.
    pub fn try_recv_parcel(&mut self) -> Option<Parcel> {
        if self.handing_over.is_some() {
            return None;
        }
        if let Some(parcel) = self.take_returned() {
            return Some(parcel);
        }
        let entry = self.rx.try_recv().ok()?;
        self.take(entry)
    }

    /// Poll form of [`Receiver::recv_parcel`], for modules that merge many queues.
    pub fn poll_recv_parcel(&mut self, cx: &mut Context<'_>) -> Poll<Option<Parcel>> {
        if self.handing_over.is_some() {
            return Poll::Ready(None);
        }
        if let Some(parcel) = self.take_returned() {
            return Poll::Ready(Some(parcel));
        }
        self.rx
            .poll_recv(cx)
            .map(|entry| entry.and_then(|entry| self.take(entry)))
    }

    /// The parcel an entry holds; none for a request to hand over, which
    /// ends the queue for this receiver.
    #[inline]
    fn take(&mut self, entry: Entry) -> Option<Parcel> {
        match entry {
            Entry::Parcel { parcel, .. } => {
                self.stats.record_out(parcel.len());
                Some(parcel)
            }
            Entry::HandOver(back) => {
                self.handing_over = Some(back);
                None
            }
        }
    }

    fn take_returned(&mut self) -> Option<Parcel> {
        let parcel = self.returned.pop_front()?;
        self.stats.record_out(parcel.len());
        Some(parcel)
    }

    /// Whether this end is to be handed over to another module
    /// ([`Sender::hand_over`](super::Sender::hand_over)): the queue ends for this one, not because
    /// every sender is gone. True as soon as it is asked, before the
    /// module has taken what was sent before the request: dropping the
    /// receiver then hands that on too, after what it gave back.
    pub fn is_handed_over(&self) -> bool {
        self.handing_over.is_some() || self.asked.load(Ordering::Acquire)
    }

    /// Puts back a parcel the module took and cannot deliver, to be taken
    /// first: by this module again, or, once the queue is handed over, by
    /// the module that replaces it (an output replaced by a reload while its
    /// peer is down gives back what it held). Counted as put on the queue
    /// again; it may briefly hold more than its capacity, by what the
    /// module had taken.
    pub fn give_back(&mut self, parcel: Parcel) {
        if parcel.is_empty() {
            return;
        }
        self.stats.record_in(parcel.len());
        self.returned.push_back(parcel);
    }

    /// Asks upstream flow modules to route around this queue.
    pub fn lock(&self) {
        self.locked
            .send_if_modified(|locked| !std::mem::replace(locked, true));
    }

    /// Takes this queue back into rotation.
    pub fn unlock(&self) {
        self.locked
            .send_if_modified(|locked| std::mem::replace(locked, false));
    }

    /// The current locked state.
    pub fn is_locked(&self) -> bool {
        *self.locked.borrow()
    }

    /// A handle that locks and unlocks this queue, for a module that hands
    /// the receiver itself to a stream (a funnel merging its queues).
    pub fn locker(&self) -> Locker {
        Locker(self.locked.clone())
    }

    /// The queue's counters.
    pub fn stats(&self) -> &Arc<QueueStats> {
        &self.stats
    }

    /// How many events the queue holds at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if self.handing_over.is_none() && self.asked.load(Ordering::Acquire) {
            // Dropped before reaching the request: what came before it goes
            // along, after what the module gave back.
            while let Ok(entry) = self.rx.try_recv() {
                match entry {
                    Entry::Parcel { parcel, .. } => self.returned.push_back(parcel),
                    Entry::HandOver(back) => {
                        self.handing_over = Some(back);
                        break;
                    }
                }
            }
        }
        if let Some(back) = self.handing_over.take() {
            self.asked.store(false, Ordering::Release);
            // The rest of the queue, untouched, for the next module; if
            // nobody waits for it any more, it is dropped (and closes).
            let (_, empty) = mpsc::unbounded_channel();
            let (unlocked, _) = watch::channel(false);
            let _ = back.send(Receiver {
                rx: std::mem::replace(&mut self.rx, empty),
                space: self.space.clone(),
                locked: std::mem::replace(&mut self.locked, Arc::new(unlocked)),
                stats: self.stats.clone(),
                capacity: self.capacity,
                handing_over: None,
                asked: self.asked.clone(),
                returned: std::mem::take(&mut self.returned),
            });
            return;
        }
        // Wakes senders waiting for room: their batch comes back as `Closed`.
        self.space.close();
    }
}
