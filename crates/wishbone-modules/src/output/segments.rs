//! Blocks of lines written to a connection and not yet acknowledged.

use std::collections::VecDeque;

use wishbone_runtime::{Batch, Event, Lines};

/// What a TCP output wrote on one connection, a block of lines at a time,
/// each block with the byte offset in the connection's stream where it
/// starts.
///
/// Like [`super::InFlight`] but per block: an event is released once the
/// peer's TCP stack acknowledged its delimiter's last byte, and nothing is
/// done per event for lines that carry no token unless the caller wants the
/// delivered events. What remains when the connection dies is exactly what
/// must be sent again, or handed to `failed`.
#[derive(Debug, Default)]
pub struct Segments {
    blocks: VecDeque<Block>,
    /// Bytes recorded on this connection so far: where the next block starts.
    encoded: u64,
}

#[derive(Debug)]
struct Block {
    start: u64,
    lines: Lines,
    /// The events as they came, when some carry a write-ahead buffer's token
    /// that must be resolved one by one; the front ones are released.
    tokens: Option<VecDeque<Event>>,
    /// Lines at the front already released.
    released: usize,
}

impl Segments {
    /// Records a block written after the previous ones; `events` are the
    /// events it encodes, kept when they carry tokens.
    pub fn push(&mut self, lines: Lines, events: Option<Batch>) {
        if lines.is_empty() {
            return;
        }
        let tokens = events
            .filter(|events| events.iter().any(|event| event.ack().is_some()))
            .map(VecDeque::from);
        debug_assert!(tokens.as_ref().is_none_or(|t| t.len() == lines.len()));
        let start = self.encoded;
        self.encoded += lines.data().len() as u64;
        self.blocks.push_back(Block {
            start,
            lines,
            tokens,
            released: 0,
        });
    }

    /// Releases the events whose encoding ends at or before `acknowledged`
    /// bytes and returns how many. Events carrying tokens go to `delivered`,
    /// the others too when `all` is set.
    pub fn acknowledge(
        &mut self,
        acknowledged: u64,
        all: bool,
        mut delivered: impl FnMut(Event),
    ) -> usize {
        let mut count = 0;
        while let Some(block) = self.blocks.front_mut() {
            if block.start >= acknowledged {
                break;
            }
            let within = (acknowledged - block.start).min(usize::MAX as u64) as usize;
            let whole = block.lines.whole_within(within).max(block.released);
            let newly = whole - block.released;
            match &mut block.tokens {
                Some(tokens) => tokens.drain(..newly).for_each(&mut delivered),
                None if all => block
                    .lines
                    .events(block.released..whole)
                    .for_each(&mut delivered),
                None => {}
            }
            block.released = whole;
            count += newly;
            if whole < block.lines.len() {
                break;
            }
            self.blocks.pop_front();
        }
        count
    }

    /// The connection died: every event not released, in order, and a
    /// fresh start for the next connection's offsets.
    pub fn take_all(&mut self) -> Batch {
        self.encoded = 0;
        let mut events = Batch::new();
        for block in self.blocks.drain(..) {
            match block.tokens {
                Some(tokens) => events.extend(tokens),
                None => events.extend(block.lines.events(block.released..block.lines.len())),
            }
        }
        events
    }

    /// Events recorded and not yet released.
    pub fn len(&self) -> usize {
        self.blocks
            .iter()
            .map(|block| block.lines.len() - block.released)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use wishbone_runtime::ack;

    fn block(texts: &[&'static str]) -> Lines {
        let events: Batch = texts.iter().map(|text| Event::new(*text)).collect();
        Lines::encode(&events, &Bytes::from_static(b"\n"))
    }

    #[test]
    fn only_events_whose_last_byte_was_acknowledged_are_released() {
        let mut segments = Segments::default();
        segments.push(block(&["aaa", "bb"]), None); // ends at 4, 7
        segments.push(block(&["c"]), None); // ends at 9
        let mut delivered = Vec::new();
        assert_eq!(segments.acknowledge(6, true, |e| delivered.push(e)), 1);
        assert_eq!(segments.acknowledge(8, true, |e| delivered.push(e)), 1);
        assert_eq!(delivered, [Event::new("aaa"), Event::new("bb")]);
        assert_eq!(segments.len(), 1);
        assert_eq!(segments.acknowledge(9, false, |e| delivered.push(e)), 1);
        assert_eq!(delivered.len(), 2, "only wanted events are made");
        assert!(segments.is_empty());
    }

    #[test]
    fn a_dead_connection_gives_back_the_rest_in_order_and_offsets_restart() {
        let mut segments = Segments::default();
        segments.push(block(&["one", "two"]), None);
        segments.push(block(&["three"]), None);
        segments.acknowledge(4, false, drop);
        assert_eq!(
            segments.take_all(),
            vec![Event::new("two"), Event::new("three")]
        );
        assert!(segments.is_empty());
        segments.push(block(&["two"]), None);
        assert_eq!(segments.acknowledge(4, false, drop), 1);
    }

    #[test]
    fn tokens_are_resolved_one_by_one_and_come_back_unresolved() {
        let (issuer, mut replies) = ack::issuer();
        let events: Batch = (0..3)
            .map(|id| Event::new(id.to_string()).with_ack(issuer.issue(id)))
            .collect();
        let mut segments = Segments::default();
        let lines = Lines::encode(&events, &Bytes::from_static(b"\n"));
        segments.push(lines, Some(events));
        assert_eq!(segments.acknowledge(2, false, |e| e.acknowledge()), 1);
        assert_eq!(replies.try_recv().unwrap(), (0, ack::Outcome::Acknowledged));
        let rest = segments.take_all();
        assert_eq!(rest.len(), 2);
        assert!(rest.iter().all(|event| event.ack().is_some()));
        assert!(replies.try_recv().is_err(), "the rest are not yet resolved");
    }
}
