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
