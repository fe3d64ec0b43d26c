//! The writer thread against a journal whose fsyncs fail or whose disk
//! is full (both injected, which no disk does on demand).

use super::*;
use bytes::Bytes;
use wishbone_runtime::{Event, Lines};

/// A writer with `sync: batch` on `journal`.
fn batch_writer(journal: Journal) -> Writer {
    Writer::start(
        journal,
        SyncMode::Batch,
        Duration::from_secs(1),
        "wal".into(),
    )
    .unwrap()
}

fn block(text: &str) -> Parcel {
    Parcel::Lines(Lines::encode(
        &[Event::new(text.to_string())],
        &Bytes::from_static(b"\n"),
    ))
}

#[test]
fn after_a_failed_fsync_the_turn_is_written_again_to_a_new_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = Journal::open(dir.path(), 1 << 20).unwrap();
    journal.failing_syncs = 1;
    let mut writer = batch_writer(journal);
    let blocks: Vec<(u64, Parcel)> = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(id, text)| (id as u64, block(text)))
        .collect();
    assert!(writer.send(Command::Keep(blocks.clone())));
    let mut seen = Vec::new();
    let mut kept = None;
    while kept.is_none() || seen.len() < 2 {
        match writer.reports.blocking_recv().expect("a report") {
            Report::Kept(blocks) => kept = Some(blocks),
            Report::Failing(failing) => seen.push(failing),
            _ => {}
        }
    }
    let kept = kept.expect("kept");
    assert_eq!(seen, [true, false], "the failure is reported, then its end");
    assert!(
        kept.iter().all(|(_, _, location)| location.sequence == 2),
        "kept where they were written again: {kept:?}"
    );
    let kept: Vec<(u64, Parcel)> = kept
        .into_iter()
        .map(|(id, parcel, _)| (id, parcel))
        .collect();
    assert_eq!(kept, blocks, "kept only once an fsync worked");
    writer.finish();

    // The first segment's copy went through the failed fsync: the
    // second must hold the whole turn by itself.
    std::fs::remove_file(dir.path().join(super::super::journal::segment_name(1))).unwrap();
    let (journal, recovered) = Journal::open(dir.path(), 1 << 20).unwrap();
    let places: Vec<(u64, Location)> = recovered
        .blocks
        .iter()
        .map(|stored| (stored.id, stored.location))
        .collect();
    assert_eq!(journal.read_all(&places), blocks);
}

/// Reports until `wanted` says it has what it waits for.
fn reports_until(writer: &mut Writer, mut wanted: impl FnMut(&Report) -> bool) -> Vec<Report> {
    let mut seen = Vec::new();
    loop {
        let report = writer.reports.blocking_recv().expect("a report");
        let done = wanted(&report);
        seen.push(report);
        if done {
            return seen;
        }
    }
}

#[test]
fn a_full_disk_gives_its_room_back_as_blocks_are_settled() {
    let dir = tempfile::tempdir().unwrap();
    let big = "x".repeat(1000);
    let (mut journal, _) = Journal::open(dir.path(), 1 << 20).unwrap();
    journal
        .append(&[(0, block(&big)), (1, block(&big))])
        .unwrap();
    journal.sync().unwrap();
    // Full to the byte: not even a settlement's record fits.
    journal.disk_size = Some(journal.disk_bytes());
    let mut writer = batch_writer(journal);
    assert!(writer.send(Command::Keep(vec![(2, block("new"))])));
    reports_until(&mut writer, |report| {
        matches!(report, Report::Failing(true))
    });
    // Blocks 0 and 1 are delivered: their settlement cannot be
    // written, but the log holds nothing else and is emptied, which
    // settles them, and block 2 then fits.
    assert!(writer.send(Command::Settle(vec![0, 1])));
    let seen = reports_until(&mut writer, |report| {
        matches!(report, Report::Failing(false))
    });
    let settled: Vec<u64> = seen
        .iter()
        .filter_map(|report| match report {
            Report::Settled(ids) => Some(ids.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(settled, [0, 1]);
    let kept: Vec<u64> = seen
        .iter()
        .filter_map(|report| match report {
            Report::Kept(blocks) => Some(blocks.iter().map(|(id, _, _)| *id).collect::<Vec<_>>()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(kept, [2]);
    writer.finish();
    let (_, recovered) = Journal::open(dir.path(), 1 << 20).unwrap();
    let ids: Vec<u64> = recovered.blocks.iter().map(|stored| stored.id).collect();
    assert_eq!(ids, [2], "what was delivered does not come back");
}

#[test]
fn settlements_go_on_while_a_block_cannot_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = Journal::open(dir.path(), 1 << 20).unwrap();
    journal.append(&[(0, block("a")), (1, block("b"))]).unwrap();
    journal.disk_size = Some(journal.disk_bytes() + 64);
    let mut writer = batch_writer(journal);
    assert!(writer.send(Command::Keep(vec![(2, block(&"y".repeat(500)))])));
    reports_until(&mut writer, |report| {
        matches!(report, Report::Failing(true))
    });
    // Block 1 is still unsettled, so the log cannot be emptied; block
    // 0's settlement fits and is written all the same.
    assert!(writer.send(Command::Settle(vec![0])));
    reports_until(
        &mut writer,
        |report| matches!(report, Report::Settled(ids) if ids == &[0]),
    );
    writer.finish();
    let reports: Vec<Report> = std::iter::from_fn(|| writer.reports.try_recv().ok()).collect();
    assert!(
        reports
            .iter()
            .any(|report| matches!(report, Report::Unwritten(1))),
        "the unwritten block is reported: {reports:?}"
    );
    let (_, recovered) = Journal::open(dir.path(), 1 << 20).unwrap();
    let ids: Vec<u64> = recovered.blocks.iter().map(|stored| stored.id).collect();
    assert_eq!(ids, [1]);
}

#[test]
fn a_writer_that_cannot_write_ends_soon_once_the_module_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = Journal::open(dir.path(), 1 << 20).unwrap();
    journal.disk_size = Some(0);
    let mut writer = batch_writer(journal);
    let blocks = vec![(0, block("a")), (1, block("b"))];
    assert!(writer.send(Command::Keep(blocks)));
    reports_until(&mut writer, |report| {
        matches!(report, Report::Failing(true))
    });
    let started = Instant::now();
    writer.finish();
    assert!(
        started.elapsed() < FINAL_TRIES + Duration::from_secs(2),
        "ended after {:?}",
        started.elapsed()
    );
    let unwritten: usize = std::iter::from_fn(|| writer.reports.try_recv().ok())
        .map(|report| match report {
            Report::Unwritten(events) => events,
            _ => 0,
        })
        .sum();
    assert_eq!(unwritten, 2);
}
