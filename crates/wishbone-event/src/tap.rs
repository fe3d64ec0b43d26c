//! Copies of the events passing a queue, for an operator watching it
//! (`wishbone tap`). A queue nobody taps pays one relaxed atomic load per
//! parcel; a tap that reads slower than the queue loses copies (counted),
//! never holds the queue up.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::{Parcel, QueueStats};

/// Where the taps of one queue are attached; part of its [`QueueStats`].
#[derive(Debug, Default)]
pub struct TapPoint {
    active: AtomicUsize,
    sinks: Mutex<Vec<Sink>>,
    next_id: AtomicU64,
}

#[derive(Debug)]
struct Sink {
    id: u64,
    /// The copies of one parcel go together: one wake of the reader per
    /// parcel, not per copy.
    copies: mpsc::UnboundedSender<Vec<Bytes>>,
    /// Copies sent and not yet read, at most `capacity`.
    waiting: Arc<AtomicUsize>,
    capacity: usize,
    /// The chance of each event being taken.
    sample: f64,
    /// Events to pass over before the next one taken: drawn from the
    /// geometric distribution, so that a small sample costs nothing for
    /// the events it does not take.
    skip: u64,
    state: u64,
    lost: Arc<AtomicU64>,
}

impl TapPoint {
    /// Offers copies of a parcel's events to the taps, if any.
    #[inline]
    pub(crate) fn offer(&self, parcel: &Parcel) {
        if self.active.load(Relaxed) > 0 {
            self.offer_to_taps(parcel);
        }
    }

    #[cold]
    fn offer_to_taps(&self, parcel: &Parcel) {
        let mut sinks = self
            .sinks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = parcel.len() as u64;
        for sink in sinks.iter_mut() {
            let mut index = sink.skip;
            let mut copies = Vec::new();
            while index < count {
                let copy = match parcel {
                    Parcel::Lines(lines) => lines.events(index as usize..index as usize + 1).next(),
                    Parcel::Events(events) => events.get(index as usize).cloned(),
                };
                copies.extend(copy.map(|copy| copy.data().clone()));
                index += 1 + sink.next_skip();
            }
            sink.skip = index - count;
            sink.pass(copies);
        }
    }
}

impl Sink {
    /// Sends a parcel's copies, as many as the reader has room for; the
    /// rest are counted lost.
    fn pass(&self, mut copies: Vec<Bytes>) {
        let room = self.capacity.saturating_sub(self.waiting.load(Relaxed));
        if copies.len() > room {
            self.lost.fetch_add((copies.len() - room) as u64, Relaxed);
            copies.truncate(room);
        }
        if copies.is_empty() {
            return;
        }
        let count = copies.len();
        self.waiting.fetch_add(count, Relaxed);
        if self.copies.send(copies).is_err() {
            self.waiting.fetch_sub(count, Relaxed);
        }
    }

    /// How many events to pass over before the next one taken.
    fn next_skip(&mut self) -> u64 {
        if self.sample >= 1.0 {
            return 0;
        }
        // xorshift64*, then the geometric distribution's inverse.
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let draw = self.state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let uniform = ((draw >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        (uniform.ln() / (1.0 - self.sample).ln()).floor() as u64
    }
}

/// A tap on one queue: copies of its events, at most `capacity` waiting;
/// detached when dropped.
#[derive(Debug)]
pub struct Tap {
    copies: mpsc::UnboundedReceiver<Vec<Bytes>>,
    /// The copies of the last batch not yet taken, in order.
    batch: std::collections::VecDeque<Bytes>,
    waiting: Arc<AtomicUsize>,
    lost: Arc<AtomicU64>,
    stats: Arc<QueueStats>,
    id: u64,
}

impl Tap {
    /// Taps the queue whose counters are `stats`, taking each event with
    /// probability `sample` (1: every one).
    pub fn attach(stats: &Arc<QueueStats>, capacity: usize, sample: f64) -> Tap {
        let point = stats.tap_point();
        let (copies, receiver) = mpsc::unbounded_channel();
        let waiting = Arc::new(AtomicUsize::new(0));
        let id = point.next_id.fetch_add(1, Relaxed);
        let lost = Arc::new(AtomicU64::new(0));
        let mut sink = Sink {
            id,
            copies,
            waiting: waiting.clone(),
            capacity: capacity.max(1),
            sample: sample.clamp(f64::MIN_POSITIVE, 1.0),
            skip: 0,
            state: 0x9E37_79B9_7F4A_7C15 ^ (id + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9),
            lost: lost.clone(),
        };
        sink.skip = sink.next_skip();
        point
            .sinks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(sink);
        point.active.fetch_add(1, Relaxed);
        Tap {
            copies: receiver,
            batch: Default::default(),
            waiting,
            lost,
            stats: stats.clone(),
            id,
        }
    }

    /// The next copy; waits while the queue is idle.
    pub async fn next(&mut self) -> Option<Bytes> {
        if self.batch.is_empty() {
            self.batch.extend(self.copies.recv().await?);
        }
        self.take()
    }

    /// The next copy if one waits.
    pub fn try_next(&mut self) -> Option<Bytes> {
        if self.batch.is_empty() {
            self.batch.extend(self.copies.try_recv().ok()?);
        }
        self.take()
    }

    fn take(&mut self) -> Option<Bytes> {
        let copy = self.batch.pop_front()?;
        self.waiting.fetch_sub(1, Relaxed);
        Some(copy)
    }

    /// Copies lost because this tap was behind.
    pub fn lost(&self) -> u64 {
        self.lost.load(Relaxed)
    }

    /// The count of [`Tap::lost`], to read while the tap is awaited.
    pub fn lost_counter(&self) -> Arc<AtomicU64> {
        self.lost.clone()
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        let point = self.stats.tap_point();
        point
            .sinks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .retain(|sink| sink.id != self.id);
        point.active.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue;
    use crate::{Event, Lines};

    #[tokio::test]
    async fn a_tap_sees_every_event_sent_and_costs_nothing_once_dropped() {
        let (sender, mut receiver) = queue::channel(100);
        sender.send(vec![Event::new("before")]).await.unwrap();
        let mut tap = Tap::attach(&sender.stats(), 10, 1.0);
        let lines = Lines::encode(
            &[Event::new("a"), Event::new("b")],
            &Bytes::from_static(b"\n"),
        );
        sender.send(lines).await.unwrap();
        sender.send(vec![Event::new("c")]).await.unwrap();
        for expected in ["a", "b", "c"] {
            assert_eq!(tap.next().await.unwrap(), expected);
        }
        assert_eq!(
            receiver.recv().await.unwrap().len(),
            1,
            "the queue is untouched"
        );
        drop(tap);
        assert_eq!(sender.stats().tap_point().active.load(Relaxed), 0);
        sender.send(vec![Event::new("d")]).await.unwrap();
    }

    #[tokio::test]
    async fn a_slow_tap_loses_copies_and_a_sample_takes_a_share() {
        let (sender, _receiver) = queue::channel(100_000);
        let full = Tap::attach(&sender.stats(), 5, 1.0);
        let mut sampled = Tap::attach(&sender.stats(), 100_000, 0.1);
        let batch: Vec<Event> = (0..20_000).map(|i| Event::new(i.to_string())).collect();
        sender.send(batch).await.unwrap();
        assert_eq!(full.lost(), 20_000 - 5, "a tap holding 5 lost the rest");
        let mut taken = 0;
        while let Ok(Some(_)) =
            tokio::time::timeout(std::time::Duration::from_millis(10), sampled.next()).await
        {
            taken += 1;
        }
        assert!((1_600..2_400).contains(&taken), "about a tenth: {taken}");
    }
}
