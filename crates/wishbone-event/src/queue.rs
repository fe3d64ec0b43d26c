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
//! Wishbone.
//!
//! A reload moves a queue's receiving end from the module it feeds to the
//! module that replaces it ([`Sender::hand_over`]): the receiver sees its
//! queue end after what came before, and once dropped the rest of the queue
//! goes, untouched, to the new module. A [`WeakSender`] lets the runtime
//! reach a queue without keeping it open.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};

use crate::{Batch, Parcel, QueueStats};

/// Creates a queue that holds at most `capacity` events (at least one).
pub fn channel(capacity: usize) -> (Sender, Receiver) {
    let capacity = capacity.max(1);
    let (tx, rx) = mpsc::unbounded_channel();
    let space = Arc::new(Semaphore::new(capacity));
    let (locked_tx, locked_rx) = watch::channel(false);
    let locked_tx = Arc::new(locked_tx);
    let stats = Arc::new(QueueStats::default());
    let asked = Arc::new(AtomicBool::new(false));
    let sender = Sender {
        link: Some(Link {
            tx,
            space: space.clone(),
            locked: locked_rx,
            asked: asked.clone(),
        }),
        stats: stats.clone(),
        capacity,
    };
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
    Sender {
        link: None,
        stats: Arc::new(QueueStats::default()),
        capacity: usize::MAX,
    }
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

/// The producing end of a queue.
#[derive(Clone, Debug)]
pub struct Sender {
    link: Option<Link>,
    stats: Arc<QueueStats>,
    capacity: usize,
}

/// Room reserved on a queue for one batch; sending consumes it.
#[derive(Debug)]
pub struct Permit {
    link: Option<(mpsc::UnboundedSender<Entry>, OwnedSemaphorePermit)>,
    stats: Arc<QueueStats>,
}

impl Sender {
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
        let Some(link) = &self.link else {
            return Ok(Permit {
                link: None,
                stats: self.stats.clone(),
            });
        };
        let room = self.room_for(events);
        let permit = link
            .space
            .clone()
            .acquire_many_owned(room)
            .await
            .map_err(|_| ())?;
        Ok(Permit {
            link: Some((link.tx.clone(), permit)),
            stats: self.stats.clone(),
        })
    }

    /// Puts the batch on the queue only if there is room now; metrics use
    /// this so they never hold up the event flow.
    pub fn try_send(&self, batch: impl Into<Parcel>) -> Result<(), TrySendError> {
        let batch = batch.into();
        let Some(link) = &self.link else {
            self.stats.record_dropped(batch.len());
            return Ok(());
        };
        match link
            .space
            .clone()
            .try_acquire_many_owned(self.room_for(batch.len()))
        {
            Ok(permit) => Permit {
                link: Some((link.tx.clone(), permit)),
                stats: self.stats.clone(),
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

    fn room_for(&self, events: usize) -> u32 {
        events.clamp(1, self.capacity).min(u32::MAX as usize) as u32
    }

    /// False for a queue no route connects.
    pub fn is_connected(&self) -> bool {
        self.link.is_some()
    }

    /// True while the receiving module asks to be routed around (an output
    /// whose peer is down).
    pub fn is_locked(&self) -> bool {
        self.link.as_ref().is_some_and(|link| *link.locked.borrow())
    }

    /// A handle that wakes when the queue is locked or unlocked.
    pub fn lock_watch(&self) -> LockWatch {
        LockWatch {
            locked: self.link.as_ref().map(|link| link.locked.clone()),
        }
    }

    /// The queue's counters.
    pub fn stats(&self) -> &Arc<QueueStats> {
        &self.stats
    }

    /// How many events the queue holds at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Asks the receiver to hand its end over: it sees the queue end after
    /// every parcel sent before this call, and once it is dropped the
    /// answer is a receiver of the rest, for another module. None for an
    /// unconnected queue or one whose receiver is gone.
    pub fn hand_over(&self) -> Option<oneshot::Receiver<Receiver>> {
        let link = self.link.as_ref()?;
        let (back, answer) = oneshot::channel();
        link.tx.send(Entry::HandOver(back)).ok()?;
        link.asked.store(true, Ordering::Release);
        Some(answer)
    }

    /// A handle that reaches this queue without keeping it open.
    pub fn downgrade(&self) -> WeakSender {
        WeakSender {
            link: self.link.as_ref().map(|link| WeakLink {
                tx: link.tx.downgrade(),
                space: link.space.clone(),
                locked: link.locked.clone(),
                asked: link.asked.clone(),
            }),
            stats: self.stats.clone(),
            capacity: self.capacity,
        }
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

#[derive(Clone, Debug)]
struct WeakLink {
    tx: mpsc::WeakUnboundedSender<Entry>,
    space: Arc<Semaphore>,
    locked: watch::Receiver<bool>,
    asked: Arc<AtomicBool>,
}

impl WeakSender {
    /// A sender of the queue, if it is still open (an unconnected queue
    /// always is).
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
        Some(Sender {
            link,
            stats: self.stats.clone(),
            capacity: self.capacity,
        })
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
                self.stats.record_dropped(events);
                Ok(())
            }
            Some((tx, room)) => match tx.send(Entry::Parcel {
                parcel,
                _room: Some(room),
            }) {
                Ok(()) => {
                    self.stats.record_in(events);
                    Ok(())
                }
                Err(mpsc::error::SendError(Entry::Parcel { parcel, .. })) => {
                    Err(Closed(parcel.into_events()))
                }
                // Only a parcel was sent here.
                Err(mpsc::error::SendError(Entry::HandOver(_))) => Ok(()),
            },
        }
    }
}

/// Follows the locked state of one queue.
#[derive(Clone, Debug)]
pub struct LockWatch {
    locked: Option<watch::Receiver<bool>>,
}

impl LockWatch {
    /// The current state.
    pub fn is_locked(&self) -> bool {
        self.locked.as_ref().is_some_and(|locked| *locked.borrow())
    }

    /// Waits for the next change; never returns for a queue that cannot
    /// change (unconnected, or whose receiver is gone).
    pub async fn changed(&mut self) {
        match &mut self.locked {
            Some(locked) => {
                if locked.changed().await.is_err() {
                    std::future::pending::<()>().await
                }
            }
            None => std::future::pending::<()>().await,
        }
    }
}

/// Locks and unlocks one queue on behalf of its receiver
/// ([`Receiver::locker`]).
#[derive(Clone, Debug)]
pub struct Locker(Arc<watch::Sender<bool>>);

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

/// The consuming end of a queue.
#[derive(Debug)]
pub struct Receiver {
    rx: mpsc::UnboundedReceiver<Entry>,
    space: Arc<Semaphore>,
    locked: Arc<watch::Sender<bool>>,
    stats: Arc<QueueStats>,
    capacity: usize,
    /// Asked to hand its end over ([`Sender::hand_over`]): the queue looks
    /// ended, and dropping the receiver hands the rest over.
    handing_over: Option<oneshot::Sender<Receiver>>,
    /// Set by [`Sender::hand_over`] at once, before the request is reached
    /// in the queue.
    asked: Arc<AtomicBool>,
    /// Parcels a module took and gave back ([`Receiver::give_back`]),
    /// taken again before anything else on the queue.
    returned: VecDeque<Parcel>,
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
    /// ([`Sender::hand_over`]): the queue ends for this one, not because
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;
    use std::time::Duration;

    fn batch(events: usize) -> Batch {
        (0..events).map(|i| Event::new(i.to_string())).collect()
    }

    #[tokio::test]
    async fn a_full_queue_makes_the_sender_wait_until_the_receiver_takes() {
        let (sender, mut receiver) = channel(10);
        sender.send(batch(10)).await.unwrap();
        assert!(matches!(
            sender.try_send(batch(1)),
            Err(TrySendError::Full(_))
        ));
        let waiting = tokio::spawn({
            let sender = sender.clone();
            async move { sender.send(batch(5)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !waiting.is_finished(),
            "send must wait while the queue is full"
        );
        assert_eq!(receiver.recv().await.unwrap().len(), 10);
        waiting.await.unwrap().unwrap();
        assert_eq!(receiver.stats().snapshot().size, 5);
        assert_eq!(receiver.stats().snapshot().in_total, 15);
        assert_eq!(receiver.stats().snapshot().out_total, 10);
    }

    #[tokio::test]
    async fn a_receiver_handed_over_ends_for_its_module_and_the_rest_goes_on() {
        let (sender, mut receiver) = channel(10);
        let weak = sender.downgrade();
        sender.send(batch(2)).await.unwrap();
        let answer = sender.hand_over().expect("a connected queue");
        sender.send(batch(3)).await.unwrap();
        assert_eq!(receiver.recv().await.unwrap().len(), 2, "what came before");
        assert!(
            receiver.recv().await.is_none(),
            "then the queue ends for it"
        );
        assert!(receiver.try_recv().is_none());
        receiver.lock();
        drop(receiver);
        let mut next = answer.await.expect("the rest, handed over");
        assert!(next.is_locked(), "the locked state goes along");
        assert_eq!(next.recv().await.unwrap().len(), 3);
        sender.send(batch(1)).await.unwrap();
        assert_eq!(next.recv().await.unwrap().len(), 1, "the same queue");
        assert_eq!(next.stats().snapshot().out_total, 6);
        drop(sender);
        assert!(weak.upgrade().is_none(), "a weak sender keeps nothing open");
        assert!(next.recv().await.is_none());
    }

    #[tokio::test]
    async fn lines_stay_lines_for_recv_parcel_and_become_events_for_recv() {
        let (sender, mut receiver) = channel(10);
        let lines = crate::Lines::encode(&batch(3), &bytes::Bytes::from_static(b"\n"));
        sender.send(lines.clone()).await.unwrap();
        sender.send(lines.clone()).await.unwrap();
        assert_eq!(receiver.stats().snapshot().size, 6);
        assert_eq!(receiver.recv_parcel().await, Some(Parcel::Lines(lines)));
        assert_eq!(receiver.recv().await, Some(batch(3)));
    }

    #[tokio::test]
    async fn an_unconnected_queue_drops_and_counts() {
        let sender = unconnected();
        sender.send(batch(7)).await.unwrap();
        sender.try_send(batch(3)).unwrap();
        let snapshot = sender.stats().snapshot();
        assert_eq!(snapshot.dropped_total, 10);
        assert_eq!(snapshot.in_total, 0);
    }

    #[tokio::test]
    async fn recv_ends_once_every_sender_is_gone_and_the_queue_is_empty() {
        let (sender, mut receiver) = channel(10);
        sender.send(batch(2)).await.unwrap();
        drop(sender);
        assert_eq!(receiver.recv().await.map(|b| b.len()), Some(2));
        assert!(receiver.recv().await.is_none());
    }

    #[tokio::test]
    async fn a_gone_receiver_gives_the_batch_back_even_to_a_waiting_sender() {
        let (sender, receiver) = channel(1);
        sender.send(batch(1)).await.unwrap();
        let waiting = tokio::spawn({
            let sender = sender.clone();
            async move { sender.send(batch(3)).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(receiver);
        let Closed(returned) = waiting.await.unwrap().unwrap_err();
        assert_eq!(returned.len(), 3);
    }

    #[tokio::test]
    async fn a_batch_larger_than_the_queue_waits_for_an_empty_queue() {
        let (sender, mut receiver) = channel(4);
        sender.send(batch(9)).await.unwrap();
        assert!(matches!(
            sender.try_send(batch(1)),
            Err(TrySendError::Full(_))
        ));
        assert_eq!(receiver.recv().await.unwrap().len(), 9);
        sender.try_send(batch(4)).unwrap();
    }

    #[tokio::test]
    async fn lock_changes_reach_every_sender() {
        let (sender, receiver) = channel(4);
        let mut watch = sender.lock_watch();
        assert!(!sender.is_locked());
        receiver.lock();
        tokio::time::timeout(Duration::from_secs(1), watch.changed())
            .await
            .unwrap();
        assert!(watch.is_locked() && sender.is_locked());
        receiver.unlock();
        tokio::time::timeout(Duration::from_secs(1), watch.changed())
            .await
            .unwrap();
        assert!(!sender.is_locked());
    }

    #[tokio::test]
    async fn abandoning_a_reservation_loses_nothing() {
        let (sender, mut receiver) = channel(2);
        sender.send(batch(2)).await.unwrap();
        let gave_up = tokio::time::timeout(Duration::from_millis(10), sender.reserve(1)).await;
        assert!(gave_up.is_err());
        assert_eq!(receiver.recv().await.unwrap().len(), 2);
        sender.reserve(2).await.unwrap().send(batch(2)).unwrap();
        assert_eq!(receiver.stats().snapshot().in_total, 4);
    }

    #[tokio::test]
    async fn what_a_module_gives_back_goes_first_and_along_with_a_hand_over() {
        let (sender, mut receiver) = channel(10);
        sender.send(batch(2)).await.unwrap();
        let taken = receiver.recv_parcel().await.unwrap();
        receiver.give_back(taken.clone());
        sender.send(batch(1)).await.unwrap();
        assert_eq!(receiver.recv_parcel().await, Some(taken.clone()), "first");
        assert_eq!(receiver.recv().await.unwrap().len(), 1);
        let answer = sender.hand_over().unwrap();
        sender.send(batch(3)).await.unwrap();
        assert!(receiver.recv().await.is_none() && receiver.is_handed_over());
        // Replaced: what it still held goes to the next module, first.
        receiver.give_back(taken);
        drop(receiver);
        let mut next = answer.await.unwrap();
        assert_eq!(next.recv().await.unwrap().len(), 2, "given back, handed on");
        assert_eq!(next.recv().await.unwrap().len(), 3);
        let snapshot = next.stats().snapshot();
        assert_eq!((snapshot.in_total, snapshot.out_total), (10, 10));
    }

    #[tokio::test]
    async fn a_receiver_dropped_before_it_reached_the_request_hands_on_what_came_before() {
        let (sender, mut receiver) = channel(10);
        sender.send(batch(1)).await.unwrap();
        let held = receiver.recv_parcel().await.unwrap();
        sender.send(batch(2)).await.unwrap();
        let answer = sender.hand_over().unwrap();
        sender.send(batch(3)).await.unwrap();
        assert!(
            receiver.is_handed_over(),
            "known before the request is reached"
        );
        receiver.give_back(held);
        drop(receiver);
        let mut next = answer.await.unwrap();
        assert!(!next.is_handed_over());
        let sizes: Vec<usize> = [
            next.recv().await.unwrap().len(),
            next.recv().await.unwrap().len(),
            next.recv().await.unwrap().len(),
        ]
        .into();
        assert_eq!(sizes, [1, 2, 3], "given back, then the queue in order");
        assert_eq!(next.stats().snapshot().size, 0);
    }
}
