//! Randomized crashes: a log is written, settled and synced at random,
//! then "crashes": every file loses a random part of what was written
//! since its last fsync (a file created since then may vanish whole), and
//! what survives past the fsynced length may be garbage. After each
//! recovery the log must hold every block that was fsynced and not
//! settled, none whose settlement was fsynced, each exactly as written,
//! oldest first.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use bytes::Bytes;
use wishbone_runtime::{Event, Lines, Parcel};

use super::Journal;
use crate::Location;
use crate::Retention;
use crate::config::{Config, SyncMode, WhenFull};
use wishbone_runtime::random::Random;

/// Each segment file's length, as of the last fsync.
fn lengths(dir: &Path) -> BTreeMap<String, u64> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".wal"))
        .map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, entry.metadata().unwrap().len())
        })
        .collect()
}

/// A block of 1 to 4 events of random bytes (newlines included), as
/// separate events or as lines.
fn random_block(random: &mut Random) -> Parcel {
    let count = 1 + random.below(4) as usize;
    let events: Vec<Event> = (0..count)
        .map(|_| {
            let length = random.below(40) as usize;
            let data: Vec<u8> = (0..length).map(|_| random.below(256) as u8).collect();
            Event::new(data)
        })
        .collect();
    if random.below(2) == 0 {
        Parcel::Events(events)
    } else {
        // Lines need payloads free of their delimiter.
        let events: Vec<Event> = events
            .iter()
            .map(|event| Event::new(event.data().iter().map(|b| b | 1).collect::<Vec<u8>>()))
            .collect();
        Parcel::Lines(Lines::encode(&events, &Bytes::from_static(b"\n")))
    }
}

/// Loses a random part of each file's unsynced tail, and may damage what is left of it.
fn crash(dir: &Path, synced: &BTreeMap<String, u64>, random: &mut Random) {
    for (name, length) in lengths(dir) {
        let path = dir.join(&name);
        let floor = match synced.get(&name) {
            Some(floor) => *floor,
            None if random.below(3) == 0 => {
                std::fs::remove_file(&path).unwrap();
                continue;
            }
            None => 0,
        };
        if length <= floor {
            continue;
        }
        let cut = floor + random.below(length - floor + 1);
        let mut data = std::fs::read(&path).unwrap();
        data.truncate(cut as usize);
        if cut > floor && random.below(2) == 0 {
            let at = (floor + random.below(cut - floor)) as usize;
            data[at] = data[at].wrapping_add(1 + random.below(255) as u8);
        }
        std::fs::write(&path, data).unwrap();
    }
}

#[test]
fn random_crashes_lose_nothing_kept_and_bring_back_nothing_damaged() {
    let config = Config {
        read_count: usize::MAX,
        max_elements: usize::MAX,
        max_bytes: usize::MAX,
        when_full: WhenFull::Block,
        path: None,
        sync: SyncMode::Batch,
        sync_interval_ms: 1000,
        max_memory_bytes: usize::MAX,
        resend_initial: 0.1,
        resend_max: 1.0,
    };
    for seed in 1..=60u64 {
        let dir = tempfile::tempdir().unwrap();
        let mut random = Random(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let segment_bytes = 128 + random.below(2048);
        let (mut journal, _) = Journal::open(dir.path(), segment_bytes).unwrap();
        let mut written: BTreeMap<u64, Parcel> = BTreeMap::new();
        // Blocks written and not settled; of those, the ones fsynced.
        let mut live: BTreeSet<u64> = BTreeSet::new();
        let mut must_survive: BTreeSet<u64> = BTreeSet::new();
        // Settled, with the settlement fsynced or not yet.
        let mut settled_for_good: BTreeSet<u64> = BTreeSet::new();
        let mut settled_unsynced: BTreeSet<u64> = BTreeSet::new();
        let mut next_id = 0;
        let mut synced = lengths(dir.path());
        for round in 0..8 {
            for _ in 0..random.below(60) {
                match random.below(8) {
                    0..=3 => {
                        let blocks: Vec<(u64, Parcel)> = (0..1 + random.below(3))
                            .map(|_| {
                                next_id += 1;
                                (next_id - 1, random_block(&mut random))
                            })
                            .collect();
                        let kept = journal.append(&blocks).unwrap();
                        let places: Vec<(u64, Location)> = kept
                            .iter()
                            .map(|(id, _, location)| (*id, *location))
                            .collect();
                        let read = journal.read_all(&places);
                        let kept: Vec<(u64, Parcel)> = kept
                            .into_iter()
                            .map(|(id, parcel, _)| (id, parcel))
                            .collect();
                        assert_eq!(kept, blocks, "kept as given");
                        assert_eq!(read, blocks, "read back from where they lie");
                        for (id, parcel) in blocks {
                            // An id may come again once the log forgot it.
                            settled_for_good.remove(&id);
                            settled_unsynced.remove(&id);
                            live.insert(id);
                            written.insert(id, parcel);
                        }
                    }
                    4 | 5 if !live.is_empty() => {
                        let ids: Vec<u64> = live
                            .iter()
                            .copied()
                            .filter(|_| random.below(3) == 0)
                            .collect();
                        journal.settle(&ids).unwrap();
                        for id in ids {
                            live.remove(&id);
                            must_survive.remove(&id);
                            settled_unsynced.insert(id);
                        }
                    }
                    6 => {
                        if journal.reclaim(false).unwrap() == 0 {
                            continue;
                        }
                        synced = lengths(dir.path());
                        must_survive.extend(live.iter().copied());
                        settled_for_good.append(&mut settled_unsynced);
                    }
                    _ => {
                        journal.sync().unwrap();
                        synced = lengths(dir.path());
                        must_survive.extend(live.iter().copied());
                        settled_for_good.append(&mut settled_unsynced);
                    }
                }
            }
            drop(journal);
            crash(dir.path(), &synced, &mut random);
            let (reopened, recovered) = Journal::open(dir.path(), segment_bytes).unwrap();
            journal = reopened;
            let found: Vec<u64> = recovered.blocks.iter().map(|stored| stored.id).collect();
            let context = format!("seed {seed}, round {round}");
            assert!(
                found.windows(2).all(|pair| pair[0] < pair[1]),
                "{context}: oldest first"
            );
            let places: Vec<(u64, Location)> = recovered
                .blocks
                .iter()
                .map(|stored| (stored.id, stored.location))
                .collect();
            for (id, read) in journal.read(&places) {
                let parcel = read.unwrap_or_else(|error| panic!("{context}: block {id}: {error}"));
                assert_eq!(
                    Some(&parcel),
                    written.get(&id),
                    "{context}: block {id} as written"
                );
                assert!(
                    !settled_for_good.contains(&id),
                    "{context}: block {id} was settled"
                );
            }
            let missing: Vec<u64> = must_survive
                .iter()
                .filter(|id| !found.contains(id))
                .copied()
                .collect();
            assert!(
                missing.is_empty(),
                "{context}: fsynced blocks lost: {missing:?}"
            );
            assert!(recovered.next_id > found.last().copied().unwrap_or(0) || found.is_empty());
            // The buffer sends them first, in that order.
            let mut retention =
                Retention::on_disk(config.clone(), recovered.blocks, recovered.next_id);
            loop {
                let loads = retention.take_loads();
                if loads.is_empty() {
                    break;
                }
                for (id, read) in journal.read(&loads) {
                    retention.loaded(id, read.unwrap());
                }
            }
            let sent: Vec<u64> = retention
                .take(usize::MAX)
                .iter()
                .map(|(id, _)| *id)
                .collect();
            assert_eq!(sent, found, "{context}: sent again oldest first");
            // What came back is fsynced now; the rest is gone for good.
            next_id = recovered.next_id;
            live = found.iter().copied().collect();
            must_survive = live.clone();
            settled_unsynced.clear();
            written.retain(|id, _| live.contains(id) || *id < next_id);
            synced = lengths(dir.path());
        }
    }
}
