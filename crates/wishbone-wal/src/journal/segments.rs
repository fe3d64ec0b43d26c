//! The segment files of a log, oldest first. There is always a newest one,
//! the one appended to: the type says so, so no code has to assert it.

use std::collections::VecDeque;

/// One segment file.
#[derive(Debug)]
pub(super) struct Segment {
    pub(super) sequence: u64,
    pub(super) len: u64,
    /// The lowest and the highest block id written in it.
    pub(super) first_block: Option<u64>,
    pub(super) last_block: Option<u64>,
}

impl Segment {
    pub(super) fn new(sequence: u64) -> Segment {
        Segment {
            sequence,
            len: 0,
            first_block: None,
            last_block: None,
        }
    }

    /// Whether block `id` may lie in it (ids grow along the log).
    pub(super) fn may_hold(&self, id: u64) -> bool {
        self.first_block.is_some_and(|first| first <= id)
            && self.last_block.is_some_and(|last| id <= last)
    }
}

/// The segments of a log: those before the newest, and the newest.
#[derive(Debug)]
pub(super) struct Segments {
    older: VecDeque<Segment>,
    newest: Segment,
}

impl Segments {
    /// The segments found, oldest first; none when there are none.
    pub(super) fn found(mut found: VecDeque<Segment>) -> Option<Segments> {
        let newest = found.pop_back()?;
        Some(Segments {
            older: found,
            newest,
        })
    }

    /// A log of one new segment.
    pub(super) fn only(newest: Segment) -> Segments {
        Segments {
            older: VecDeque::new(),
            newest,
        }
    }

    /// The one appended to.
    pub(super) fn newest(&self) -> &Segment {
        &self.newest
    }

    /// The one appended to.
    pub(super) fn newest_mut(&mut self) -> &mut Segment {
        &mut self.newest
    }

    /// Those before the newest, oldest first.
    pub(super) fn older(&self) -> impl Iterator<Item = &Segment> {
        self.older.iter()
    }

    /// Every segment, oldest first.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Segment> {
        self.older.iter().chain(std::iter::once(&self.newest))
    }

    /// A new newest segment; the one before goes with the older ones.
    pub(super) fn push(&mut self, newest: Segment) {
        let previous = std::mem::replace(&mut self.newest, newest);
        self.older.push_back(previous);
    }

    /// Forgets the oldest segment before the newest, if there is one.
    pub(super) fn pop_oldest(&mut self) -> Option<Segment> {
        self.older.pop_front()
    }
}
