//! Which blocks of a wal on disk are also held in memory. Every kept block
//! is in the log; at most `max_memory_bytes` of payload are held in memory
//! besides, the oldest waiting blocks first, so that a backlog larger than
//! memory waits on disk. A block only on disk is read back before it is
//! sent. Ids and byte counts only: the events themselves stay with
//! [`super::Retention`], which drops or fills them as this decides.

use std::collections::BTreeMap;

use super::block::Location;

/// Blocks asked of the log in one read, at most.
const MOST_LOADED: usize = 1024;

/// A block's payload bytes and where its record lies.
type Place = (usize, Location);

/// The bookkeeping.
#[derive(Debug)]
pub struct Residency {
    memory: usize,
    /// Payload bytes held in memory: waiting or in flight.
    held: usize,
    /// Payload bytes being read back.
    loading_bytes: usize,
    /// Waiting, held in memory.
    waiting: BTreeMap<u64, Place>,
    /// Sent, held in memory (a failed one waits again without a read).
    flying: BTreeMap<u64, Place>,
    /// Waiting, only on disk.
    evicted: BTreeMap<u64, Place>,
    /// Being read back.
    loading: BTreeMap<u64, Place>,
}

impl Residency {
    /// Holds at most `memory` bytes of waiting blocks in memory.
    pub fn new(memory: usize) -> Self {
        Self {
            memory,
            held: 0,
            loading_bytes: 0,
            waiting: BTreeMap::new(),
            flying: BTreeMap::new(),
            evicted: BTreeMap::new(),
            loading: BTreeMap::new(),
        }
    }

    /// Block `id` is kept, held in memory, and waits.
    pub fn kept(&mut self, id: u64, bytes: usize, location: Location) {
        self.held += bytes;
        self.waiting.insert(id, (bytes, location));
    }

    /// Block `id`, found in the log at start, waits on disk.
    pub fn recovered(&mut self, id: u64, bytes: usize, location: Location) {
        self.evicted.insert(id, (bytes, location));
    }

    /// Block `id` was sent: it stays held until it is settled.
    pub fn sent(&mut self, id: u64) {
        if let Some(place) = self.waiting.remove(&id) {
            self.flying.insert(id, place);
        }
    }

    /// Block `id` failed on its way: it waits again, still held.
    pub fn failed(&mut self, id: u64) {
        if let Some(place) = self.flying.remove(&id) {
            self.waiting.insert(id, place);
        }
    }

    /// Block `id` is delivered or dropped: nothing of it is held any more.
    pub fn forget(&mut self, id: u64) {
        if let Some((bytes, _)) = self.waiting.remove(&id).or_else(|| self.flying.remove(&id)) {
            self.held -= bytes;
        }
        self.evicted.remove(&id);
        if let Some((bytes, _)) = self.loading.remove(&id) {
            self.loading_bytes -= bytes;
        }
    }

    /// The oldest block waiting, wherever it is.
    fn oldest_waiting(&self) -> Option<u64> {
        [
            self.waiting.first_key_value(),
            self.evicted.first_key_value(),
            self.loading.first_key_value(),
        ]
        .into_iter()
        .flatten()
        .map(|(id, _)| *id)
        .min()
    }

    /// The blocks to let go of in memory, newest first, until what is held
    /// fits in `memory` again; never the oldest waiting one, which goes
    /// next. They wait on disk.
    pub fn take_evictions(&mut self) -> Vec<u64> {
        let oldest = self.oldest_waiting();
        let mut evicted = Vec::new();
        while self.held > self.memory {
            let Some((&id, _)) = self.waiting.last_key_value() else {
                break;
            };
            if Some(id) == oldest {
                break;
            }
            if let Some(place) = self.waiting.remove(&id) {
                self.held -= place.0;
                self.evicted.insert(id, place);
                evicted.push(id);
            }
        }
        evicted
    }

    /// The blocks to read back now, oldest first, as many as fit in
    /// `memory` with what is held; always the oldest waiting one when it
    /// is only on disk and nothing is being read. None while a read is
    /// under way.
    pub fn take_loads(&mut self) -> Vec<(u64, Location)> {
        if !self.loading.is_empty() {
            return Vec::new();
        }
        let oldest = self.oldest_waiting();
        let mut wanted = Vec::new();
        for (&id, &(bytes, location)) in &self.evicted {
            let fits = self.held + self.loading_bytes + bytes <= self.memory;
            let forced = wanted.is_empty() && Some(id) == oldest;
            if !(fits || forced) || wanted.len() == MOST_LOADED {
                break;
            }
            self.loading_bytes += bytes;
            wanted.push((id, location));
        }
        for (id, _) in &wanted {
            if let Some(place) = self.evicted.remove(id) {
                self.loading.insert(*id, place);
            }
        }
        wanted
    }

    /// Block `id` was read back: true when it still waits for it (it is
    /// then held), false when it was forgotten meanwhile.
    pub fn loaded(&mut self, id: u64) -> bool {
        let Some(place) = self.loading.remove(&id) else {
            return false;
        };
        self.loading_bytes -= place.0;
        self.held += place.0;
        self.waiting.insert(id, place);
        true
    }

    /// Payload bytes held in memory.
    pub fn held(&self) -> usize {
        self.held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(offset: u64) -> Location {
        Location {
            sequence: 1,
            offset,
            len: 10,
        }
    }

    fn ids(places: &[(u64, Location)]) -> Vec<u64> {
        places.iter().map(|(id, _)| *id).collect()
    }

    #[test]
    fn past_the_budget_the_newest_wait_on_disk_and_come_back_oldest_first() {
        let mut residency = Residency::new(30);
        for id in 0..5 {
            residency.kept(id, 10, at(id));
        }
        assert_eq!(residency.take_evictions(), [4, 3]);
        assert_eq!(residency.held(), 30);
        assert!(residency.take_loads().is_empty(), "no room to read back");
        residency.sent(0);
        residency.sent(1);
        residency.forget(0);
        residency.forget(1);
        assert_eq!(residency.held(), 10);
        assert_eq!(ids(&residency.take_loads()), [3, 4]);
        assert!(residency.take_loads().is_empty(), "one read at a time");
        assert!(residency.loaded(3) && residency.loaded(4));
        assert_eq!(residency.held(), 30);
    }

    #[test]
    fn the_oldest_waiting_is_never_evicted_and_always_read_back() {
        let mut residency = Residency::new(5);
        residency.recovered(0, 10, at(0));
        residency.recovered(1, 10, at(10));
        assert_eq!(
            ids(&residency.take_loads()),
            [0],
            "larger than the budget, but next"
        );
        assert!(residency.loaded(0));
        assert!(
            residency.take_evictions().is_empty(),
            "the next to go stays"
        );
        residency.sent(0);
        residency.failed(0);
        assert!(
            residency.take_evictions().is_empty(),
            "failed back, next again"
        );
        residency.forget(0);
        assert_eq!(ids(&residency.take_loads()), [1]);
        residency.forget(1);
        assert!(!residency.loaded(1), "dropped while read back");
        assert_eq!(residency.held(), 0);
    }
}
