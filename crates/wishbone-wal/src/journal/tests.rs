//! The log's files: what comes back after a reopen, the lock, deletion
//! of settled segments, a torn tail.

use super::*;
use wishbone_runtime::{Event, Lines};

fn block(texts: &[&str]) -> Parcel {
    let events: Vec<Event> = texts
        .iter()
        .map(|text| Event::new(text.to_string()))
        .collect();
    Parcel::Lines(Lines::encode(&events, &Bytes::from_static(b"\n")))
}

fn ids(recovered: &Recovered) -> Vec<u64> {
    recovered.blocks.iter().map(|stored| stored.id).collect()
}

#[test]
fn what_is_kept_and_not_settled_comes_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut journal, recovered) = Journal::open(dir.path(), 100).unwrap();
        assert!(recovered.blocks.is_empty());
        let kept = journal
            .append(
                &(0..6)
                    .map(|id| (id, block(&["a", "bb"])))
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        assert_eq!(kept[3].1, block(&["a", "bb"]));
        let read = journal.read(&[(3, kept[3].2), (5, kept[5].2)]);
        assert_eq!(read[1].1.as_ref().unwrap(), &block(&["a", "bb"]));
        let wrong = journal.read(&[(4, kept[3].2)]);
        assert!(wrong[0].1.is_err(), "block 3's record is not block 4");
        journal.settle(&[0, 2]).unwrap();
        journal.append(&[(6, block(&["c"]))]).unwrap();
        journal.sync().unwrap();
    }
    let (journal, recovered) = Journal::open(dir.path(), 100).unwrap();
    assert_eq!(ids(&recovered), [1, 3, 4, 5, 6]);
    let last = &recovered.blocks[4];
    assert_eq!((last.events, last.bytes), (1, 1));
    let read = journal.read(&[(6, last.location)]);
    assert_eq!(read[0].1.as_ref().unwrap(), &block(&["c"]));
    assert_eq!((recovered.next_id, recovered.cut_bytes), (7, 0));
}

#[test]
fn a_second_opener_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_first, _) = Journal::open(dir.path(), 100).unwrap();
    let error = Journal::open(dir.path(), 100).unwrap_err();
    assert!(matches!(error, JournalError::Locked(_)), "{error}");
    assert!(error.to_string().contains("in use by another process"));
}

#[test]
fn settled_segments_are_deleted_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = Journal::open(dir.path(), 64).unwrap();
    for id in 0..10 {
        journal.append(&[(id, block(&["0123456789"]))]).unwrap();
    }
    let files = || std::fs::read_dir(dir.path()).unwrap().count() - 1;
    let before = files();
    assert!(before >= 5, "one block of 40-odd bytes, then a new segment");
    journal.settle(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
    assert_eq!(journal.reclaim(false).unwrap(), 0, "block 0 holds them all");
    journal.settle(&[0]).unwrap();
    assert!(journal.reclaim(false).unwrap() > 0);
    assert!(files() < before);
    drop(journal);
    let (_journal, recovered) = Journal::open(dir.path(), 64).unwrap();
    assert_eq!(ids(&recovered), [9]);
}

#[test]
fn a_torn_tail_is_cut_at_the_last_whole_record() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut journal, _) = Journal::open(dir.path(), 1 << 20).unwrap();
        journal.append(&[(0, block(&["kept"]))]).unwrap();
        journal.append(&[(1, block(&["torn"]))]).unwrap();
    }
    let path = dir.path().join(segment_name(1));
    let length = std::fs::metadata(&path).unwrap().len();
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(length - 3).unwrap();
    let (mut journal, recovered) = Journal::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(ids(&recovered), [0]);
    assert!(recovered.cut_bytes > 0);
    journal.append(&[(1, block(&["again"]))]).unwrap();
    drop(journal);
    let (_journal, recovered) = Journal::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(ids(&recovered), [0, 1]);
    assert_eq!(recovered.cut_bytes, 0, "appending resumed at the cut");
}

/// Flips one byte of the segment file at `at`.
fn flip(path: &std::path::Path, at: u64) {
    let mut data = std::fs::read(path).unwrap();
    data[at as usize] ^= 0x5a;
    std::fs::write(path, data).unwrap();
}

#[test]
fn a_damaged_record_costs_itself_and_the_records_after_it_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let places = {
        let (mut journal, _) = Journal::open(dir.path(), 1 << 20).unwrap();
        let blocks: Vec<(u64, Parcel)> = (0..50)
            .map(|id| (id, block(&[&format!("event {id}"), "and another"])))
            .collect();
        let kept = journal.append(&blocks).unwrap();
        journal.settle(&[5]).unwrap();
        journal.sync().unwrap();
        kept.into_iter()
            .map(|(id, _, location)| (id, location))
            .collect::<Vec<_>>()
    };
    let path = dir.path().join(segment_name(1));
    // A byte of block 20's events, of settled block 5's, and of block 30's
    // length, which leaves nothing to say where it ends.
    flip(&path, places[20].1.offset + places[20].1.len - 2);
    flip(&path, places[5].1.offset + places[5].1.len - 2);
    flip(&path, places[30].1.offset + 1);
    let length = std::fs::metadata(&path).unwrap().len();
    let (mut journal, recovered) = Journal::open(dir.path(), 1 << 20).unwrap();
    let expected: Vec<u64> = (0..50).filter(|id| ![5, 20, 30].contains(id)).collect();
    assert_eq!(ids(&recovered), expected);
    assert_eq!(recovered.damaged_records, 3);
    assert_eq!(
        recovered.lost_events, 4,
        "two events each of blocks 20 and 30 (block 5 was settled later)"
    );
    assert_eq!(recovered.cut_bytes, 0);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), length, "not cut");
    let read = journal.read_all(
        &recovered
            .blocks
            .iter()
            .map(|stored| (stored.id, stored.location))
            .collect::<Vec<_>>(),
    );
    assert_eq!(read.last().unwrap().1, block(&["event 49", "and another"]));
    // What is appended after it reads back too.
    journal.append(&[(50, block(&["later"]))]).unwrap();
    drop(journal);
    let (_journal, recovered) = Journal::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(ids(&recovered).last(), Some(&50));
    assert_eq!(recovered.damaged_records, 3);
}

#[test]
fn resyncing_never_takes_garbage_for_a_record() {
    let mut random = wishbone_runtime::random::Random(7);
    for _ in 0..200 {
        let garbage: Vec<u8> = (0..4096).map(|_| random.below(256) as u8).collect();
        assert_eq!(record::resync(&Bytes::from(garbage)), None);
    }
}

#[test]
fn a_damaged_copy_of_a_block_read_whole_elsewhere_is_not_counted_lost() {
    let dir = tempfile::tempdir().unwrap();
    let second = {
        let (mut journal, _) = Journal::open(dir.path(), 1 << 20).unwrap();
        journal.append(&[(0, block(&["twice"]))]).unwrap();
        // As after a failed fsync: the block written again to a new segment.
        journal.start_segment().unwrap();
        let again = journal.append(&[(0, block(&["twice"]))]).unwrap();
        // A record after it, so the damage is inside the file, not a tail.
        journal.append(&[(1, block(&["after"]))]).unwrap();
        journal.sync().unwrap();
        again[0].2
    };
    flip(
        &dir.path().join(segment_name(second.sequence)),
        second.offset + second.len - 2,
    );
    let (_journal, recovered) = Journal::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(ids(&recovered), [0, 1]);
    assert_eq!((recovered.damaged_records, recovered.lost_events), (1, 0));
}
