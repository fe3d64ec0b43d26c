//! Events written to a connection and not yet acknowledged by the peer.

use std::collections::VecDeque;

use wishbone_runtime::{Batch, Event};

/// The events of one connection, in write order, each with the byte offset
/// in the connection's stream where its encoding ends.
///
/// The kernel tells how many written bytes the peer's TCP stack has not yet
/// acknowledged; everything ending at or before `written - unacknowledged` is
/// in the peer's hands. What remains when the connection dies is exactly
/// what must be sent again, or handed to `failed`.
#[derive(Debug, Default)]
pub struct InFlight {
    events: VecDeque<(u64, Event)>,
    /// Bytes encoded on this connection so far: where the next event starts.
    encoded: u64,
}

impl InFlight {
    /// Records an event whose encoding (payload and delimiter) is `bytes` long.
    pub fn push(&mut self, event: Event, bytes: usize) {
        self.encoded += bytes as u64;
        self.events.push_back((self.encoded, event));
    }

    /// Records an event whose encoding ends at byte `end` of the connection,
    /// for writers that learn offsets only after writing; ends must not
    /// decrease.
    pub fn push_ending_at(&mut self, event: Event, end: u64) {
        self.encoded = self.encoded.max(end);
        self.events.push_back((end, event));
    }

    /// Releases the events that end at or before `acknowledged` bytes and
    /// gives each to `delivered`; returns how many.
    pub fn acknowledge(&mut self, acknowledged: u64, mut delivered: impl FnMut(Event)) -> usize {
        let mut count = 0;
        while let Some((end, _)) = self.events.front() {
            if *end > acknowledged {
                break;
            }
            if let Some((_, event)) = self.events.pop_front() {
                delivered(event);
                count += 1;
            }
        }
        count
    }

    /// The connection died: everything not acknowledged, in order, and a
    /// fresh start for the next connection's offsets.
    pub fn take_all(&mut self) -> Batch {
        self.encoded = 0;
        self.events.drain(..).map(|(_, event)| event).collect()
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(lines: &[&'static str]) -> InFlight {
        let mut inflight = InFlight::default();
        for line in lines {
            inflight.push(Event::new(*line), line.len() + 1);
        }
        inflight
    }

    #[test]
    fn only_events_whose_last_byte_was_acknowledged_are_released() {
        let mut inflight = tracker(&["aaa", "bb", "c"]); // ends at 4, 7, 9
        let mut delivered = Vec::new();
        assert_eq!(inflight.acknowledge(6, |e| delivered.push(e)), 1);
        assert_eq!(inflight.acknowledge(7, |e| delivered.push(e)), 1);
        assert_eq!(delivered, [Event::new("aaa"), Event::new("bb")]);
        assert_eq!(inflight.len(), 1);
    }

    #[test]
    fn a_dead_connection_gives_back_the_rest_in_order_and_offsets_restart() {
        let mut inflight = tracker(&["one", "two", "three"]);
        inflight.acknowledge(4, drop);
        assert_eq!(
            inflight.take_all(),
            vec![Event::new("two"), Event::new("three")]
        );
        assert!(inflight.is_empty());
        inflight.push(Event::new("two"), 4);
        assert_eq!(inflight.acknowledge(4, drop), 1);
    }
}
