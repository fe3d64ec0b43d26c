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
    copies: mpsc::Sender<Bytes>,
    /// A copy is taken when a draw below 2^64 falls under this.
    threshold: u64,
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
        let mut each = |data: &Bytes| {
            for sink in sinks.iter_mut() {
                if !sink.draw() {
                    continue;
                }
                if sink.copies.try_send(data.clone()).is_err() {
                    sink.lost.fetch_add(1, Relaxed);
                }
            }
        };
        match parcel {
            Parcel::Lines(lines) => lines
                .events(0..lines.len())
                .for_each(|event| each(event.data())),
            Parcel::Events(events) => events.iter().for_each(|event| each(event.data())),
        }
    }
}

impl Sink {
    /// Whether this event is one of the sample (xorshift64*).
    fn draw(&mut self) -> bool {
        if self.threshold == u64::MAX {
            return true;
        }
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) < self.threshold
    }
}

/// A tap on one queue: copies of its events, at most `capacity` waiting;
/// detached when dropped.
#[derive(Debug)]
pub struct Tap {
    copies: mpsc::Receiver<Bytes>,
    lost: Arc<AtomicU64>,
    stats: Arc<QueueStats>,
    id: u64,
}

impl Tap {
    /// Taps the queue whose counters are `stats`, taking each event with
    /// probability `sample` (1: every one).
    pub fn attach(stats: &Arc<QueueStats>, capacity: usize, sample: f64) -> Tap {
        let point = stats.tap_point();
        let (copies, receiver) = mpsc::channel(capacity.max(1));
        let id = point.next_id.fetch_add(1, Relaxed);
        let lost = Arc::new(AtomicU64::new(0));
        let threshold = match sample {
            rate if rate >= 1.0 => u64::MAX,
            rate if rate <= 0.0 => 0,
            rate => (rate * u64::MAX as f64) as u64,
        };
        point
            .sinks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(Sink {
                id,
                copies,
                threshold,
                state: 0x9E37_79B9_7F4A_7C15 ^ (id + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9),
                lost: lost.clone(),
            });
        point.active.fetch_add(1, Relaxed);
        Tap {
            copies: receiver,
            lost,
            stats: stats.clone(),
            id,
        }
    }

    /// The next copy; waits while the queue is idle.
    pub async fn next(&mut self) -> Option<Bytes> {
        self.copies.recv().await
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
