//! Which events of a block a token's outcome speaks of.
//!
//! A token covers a block of events (a write-ahead buffer's block, the
//! lines of one file read). When the block travels in parts (a round
//! robin's shares, a selector's destinations, a parcel cut to fit a
//! window), each part's token knows which of the block's events it carries,
//! so a failure names exactly the events that were not delivered and the
//! buffer sends only those again.

use std::ops::Range;

/// Positions of events within a block, ascending: kept as ranges, so a
/// contiguous part (a parcel cut in two) costs one entry however long.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Positions {
    ranges: Vec<Range<u32>>,
    len: usize,
}

impl Positions {
    /// No positions.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every position in `range`.
    pub fn range(range: Range<usize>) -> Self {
        let mut positions = Self::new();
        positions.push_range(range);
        positions
    }

    /// Adds positions after every one held so far; a range that starts
    /// before the last one held is joined in order.
    pub fn push_range(&mut self, range: Range<usize>) {
        if range.is_empty() {
            return;
        }
        let range = narrow(range.start)..narrow(range.end);
        match self.ranges.last_mut() {
            Some(last) if range.start < last.start => {
                let mut merged = Positions::new();
                merged.push_range(usize_range(&range));
                self.union(&merged);
            }
            Some(last) if range.start <= last.end => {
                let end = range.end.max(last.end);
                self.len += (end - last.end) as usize;
                last.end = end;
            }
            _ => {
                self.len += (range.end - range.start) as usize;
                self.ranges.push(range);
            }
        }
    }

    /// Adds one position after every one held so far.
    pub fn push(&mut self, position: usize) {
        self.push_range(position..position + 1);
    }

    /// How many positions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The positions, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.ranges.iter().flat_map(usize_range)
    }

    /// The ranges, ascending and apart.
    pub fn ranges(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        self.ranges.iter().map(usize_range)
    }

    /// Whether `position` is held.
    pub fn contains(&self, position: usize) -> bool {
        let position = narrow(position);
        let after = self.ranges.partition_point(|range| range.end <= position);
        self.ranges
            .get(after)
            .is_some_and(|range| range.start <= position)
    }

    /// For a part that carries the events at `self`, in order: where its
    /// own positions `local` stand in the whole block.
    pub fn pick(&self, local: &Positions) -> Positions {
        let mut picked = Positions::new();
        let mut ranges = self.ranges.iter();
        let (mut current, mut before) = (ranges.next(), 0usize);
        for wanted in local.iter() {
            while let Some(range) = current {
                let length = (range.end - range.start) as usize;
                if wanted < before + length {
                    picked.push(range.start as usize + wanted - before);
                    break;
                }
                before += length;
                current = ranges.next();
            }
            if current.is_none() {
                break; // past the part's end: nothing of the whole
            }
        }
        picked
    }

    /// Adds every position of `other`.
    pub fn union(&mut self, other: &Positions) {
        if other.is_empty() {
            return;
        }
        if self
            .ranges
            .last()
            .is_none_or(|last| other.ranges[0].start >= last.start)
        {
            for range in other.ranges() {
                self.push_range(range);
            }
            return;
        }
        let mut all: Vec<Range<u32>> = self.ranges.drain(..).collect();
        all.extend(other.ranges.iter().cloned());
        all.sort_by_key(|range| range.start);
        self.len = 0;
        for range in all {
            self.push_range(usize_range(&range));
        }
    }
}

impl FromIterator<usize> for Positions {
    /// Positions given in any order.
    fn from_iter<T: IntoIterator<Item = usize>>(positions: T) -> Self {
        let mut all: Vec<usize> = positions.into_iter().collect();
        all.sort_unstable();
        let mut collected = Positions::new();
        for position in all {
            collected.push(position);
        }
        collected
    }
}

/// Blocks hold far fewer than 2³² events; a position past that is kept at
/// the largest one (it cannot name an event).
fn narrow(position: usize) -> u32 {
    u32::try_from(position).unwrap_or(u32::MAX)
}

fn usize_range(range: &Range<u32>) -> Range<usize> {
    range.start as usize..range.end as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_join_into_ranges_and_count() {
        let mut positions = Positions::new();
        positions.push(0);
        positions.push(1);
        positions.push_range(4..6);
        positions.push(6);
        assert_eq!(positions.ranges().collect::<Vec<_>>(), [0..2, 4..7]);
        assert_eq!(positions.len(), 5);
        assert!(positions.contains(5) && !positions.contains(3) && !positions.contains(7));
        positions.push(2);
        assert_eq!(positions.ranges().collect::<Vec<_>>(), [0..3, 4..7]);
        assert_eq!(positions.len(), 6);
        positions.push(3);
        assert_eq!(positions, Positions::range(0..7));
        assert_eq!(positions.len(), 7);
    }

    #[test]
    fn a_part_picks_its_positions_in_the_whole() {
        // A part carrying the whole's events 1, 3, 5 and 7..9.
        let part: Positions = [1, 3, 5, 7, 8].into_iter().collect();
        let local: Positions = [0, 2, 4].into_iter().collect();
        assert_eq!(part.pick(&local).iter().collect::<Vec<_>>(), [1, 5, 8]);
        assert!(part.pick(&Positions::range(5..9)).is_empty());
        assert_eq!(
            Positions::range(10..20).pick(&Positions::range(2..4)),
            Positions::range(12..14)
        );
    }

    #[test]
    fn union_merges_in_any_order() {
        let mut failed = Positions::range(10..12);
        failed.union(&Positions::range(0..2));
        failed.union(&[11, 12, 5].into_iter().collect());
        assert_eq!(failed.ranges().collect::<Vec<_>>(), [0..2, 5..6, 10..13]);
        assert_eq!(failed.len(), 6);
    }
}
