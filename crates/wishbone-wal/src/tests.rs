//! The retention's decisions, without sockets or an actix system.

use super::*;
use std::time::{Duration, Instant};

use crate::running::with_token;
use wishbone_runtime::ack::Outcome;
use wishbone_runtime::{Event, Lines, Parcel, ack};

fn config(when_full: WhenFull) -> Config {
    Config {
        read_count: 2,
        max_elements: 4,
        max_bytes: 1000,
        when_full,
        path: None,
        sync: SyncMode::Batch,
        sync_interval_ms: 1000,
        max_memory_bytes: 1 << 20,
        resend_initial: 0.1,
        resend_max: 1.0,
    }
}

/// Settles block `id`; a failed block's pause is over at once.
fn settle(retention: &mut Retention, id: u64, outcome: Outcome) {
    let now = Instant::now();
    retention.resolve(id, outcome, now);
    retention.release_due(now + Duration::from_secs(3600));
}

/// Keeps one event (a block of its own), applying `when_full`.
fn push(retention: &mut Retention, event: Event) -> Result<Pushed, Parcel> {
    retention.push_block(Parcel::Events(vec![event]))
}

fn ids(taken: &[(u64, Parcel)]) -> Vec<u64> {
    taken.iter().map(|(id, _)| *id).collect()
}

fn filled(when_full: WhenFull, events: usize) -> Retention {
    let mut retention = Retention::new(config(when_full));
    for index in 0..events {
        let _ = push(&mut retention, Event::new(format!("e{index}")));
    }
    retention
}

#[test]
fn at_most_most_sharing_kept_blocks_hold_on_to_the_buffer_they_were_read_into() {
    let read = bytes::Bytes::from(vec![b'x'; 256 * 1024]);
    let inside = |data: &[u8]| read.as_ptr_range().contains(&data.as_ptr());
    let mut retention = Retention::new(Config {
        max_elements: 1000,
        max_bytes: 1_000_000,
        ..config(WhenFull::Block)
    });
    let lines = Lines::new(read.slice(0..4), vec![3], bytes::Bytes::from_static(b"x"));
    retention.push_block(Parcel::Lines(lines)).unwrap();
    for index in 0..retention::MOST_SHARING {
        push(&mut retention, Event::new(read.slice(index..index + 10))).unwrap();
    }
    let taken = retention.take(1000);
    assert_eq!(taken.len(), retention::MOST_SHARING + 1);
    let Parcel::Lines(oldest) = &taken[0].1 else {
        panic!("lines stay lines");
    };
    assert_eq!(&oldest.data()[..], b"xxxx");
    assert!(
        !inside(oldest.data()),
        "the oldest got a copy of its own once {} newer shared the buffer",
        retention::MOST_SHARING
    );
    for (id, block) in &taken[1..] {
        let event = block.clone().into_events().pop().unwrap();
        assert_eq!(event.len(), 10);
        assert!(inside(event.data()), "block {id} still shares, uncopied");
    }
    push(&mut retention, Event::new(read.slice(0..1))).unwrap();
    settle(&mut retention, 1, Outcome::Failed);
    let (id, resent) = retention.take(1).pop().unwrap();
    assert_eq!(id, 1, "the failed block goes first");
    let resent = resent.into_events().pop().unwrap();
    assert!(
        !inside(resent.data()),
        "one more block: the oldest sharing one (1, in flight) got its copy"
    );
}

#[test]
fn lines_are_kept_in_blocks_of_at_most_read_count() {
    let retention = Retention::new(config(WhenFull::Block));
    let events: Vec<Event> = (0..5).map(|i| Event::new(format!("e{i}"))).collect();
    let lines = Lines::encode(&events, &bytes::Bytes::from_static(b"\n"));
    let blocks = retention.cut(Parcel::Lines(lines));
    let sizes: Vec<usize> = blocks.iter().map(Parcel::len).collect();
    assert_eq!(sizes, [2, 2, 1], "read_count 2");
    assert!(blocks.iter().all(|block| matches!(block, Parcel::Lines(_))));
    let tight = Retention::new(Config {
        max_bytes: 3,
        ..config(WhenFull::Block)
    });
    let sizes: Vec<usize> = tight
        .cut(Parcel::Events(events))
        .iter()
        .map(Parcel::len)
        .collect();
    assert_eq!(
        sizes,
        [1, 1, 1, 1, 1],
        "two events of 2 bytes exceed max_bytes 3"
    );
}

#[test]
fn a_block_is_sent_with_one_token_and_settled_whole() {
    let (issuer, mut replies) = ack::issuer();
    let mut retention = Retention::new(Config {
        read_count: 10,
        ..config(WhenFull::Block)
    });
    let events: Vec<Event> = (0..3).map(|i| Event::new(format!("e{i}"))).collect();
    let lines = Lines::encode(&events, &bytes::Bytes::from_static(b"\n"));
    for block in retention.cut(Parcel::Lines(lines)) {
        retention.push_block(block).unwrap();
    }
    let (id, block) = retention.take(10).pop().unwrap();
    assert_eq!(retention.in_flight(), 3);
    let sent = with_token(block, issuer.issue(id));
    let Parcel::Lines(sent) = sent else {
        panic!("lines stay lines")
    };
    sent.ack().unwrap().acknowledge();
    settle(&mut retention, id, replies.try_recv().unwrap().1);
    assert!(retention.is_empty());
}

#[test]
fn blocks_go_out_without_waiting_for_earlier_acknowledgements() {
    let mut retention = filled(WhenFull::DropOldest, 4);
    assert_eq!(ids(&retention.take(1)), [0], "one block a step");
    assert_eq!(retention.sendable(), 1, "the next goes before 0 is settled");
    assert_eq!(ids(&retention.take(10)), [1, 2, 3]);
    assert_eq!(retention.in_flight(), 4, "more than read_count 2 in flight");
    assert_eq!(retention.sendable(), 0, "nothing waits");
    settle(&mut retention, 0, Outcome::Acknowledged);
    assert_eq!(retention.len(), 3);
}

#[test]
fn what_is_in_flight_is_kept_so_max_elements_bounds_it() {
    let mut retention = filled(WhenFull::Block, 4);
    assert_eq!(ids(&retention.take(10)), [0, 1, 2, 3]);
    let back = push(&mut retention, Event::new("e4")).unwrap_err();
    settle(&mut retention, 2, Outcome::Failed);
    let back = retention.push_block(back).unwrap_err();
    assert_eq!(
        retention.in_flight(),
        3,
        "a failed block waits again, still kept"
    );
    settle(&mut retention, 1, Outcome::Acknowledged);
    retention.push_block(back).unwrap();
    assert_eq!(ids(&retention.take(10)), [2, 4], "the failed block first");
}

#[test]
fn a_failed_event_is_sent_again_before_anything_newer() {
    let mut retention = filled(WhenFull::DropOldest, 4);
    retention.take(2);
    settle(&mut retention, 1, Outcome::Acknowledged);
    settle(&mut retention, 0, Outcome::Failed);
    assert_eq!(ids(&retention.take(10)), [0, 2, 3]);
}

#[test]
fn an_acknowledgement_settles_only_its_own_event() {
    let mut retention = filled(WhenFull::DropOldest, 3);
    retention.take(2);
    settle(&mut retention, 1, Outcome::Acknowledged);
    assert_eq!(
        retention.in_flight(),
        1,
        "event 0 is still in flight on another output"
    );
    settle(&mut retention, 1, Outcome::Failed);
    assert_eq!(
        retention.len(),
        2,
        "a late failure of a settled event changes nothing"
    );
}

#[test]
fn drop_oldest_drops_the_oldest_waiting_and_counts() {
    let mut retention = filled(WhenFull::DropOldest, 4);
    retention.take(1); // event 0 is in flight and may not be dropped
    push(&mut retention, Event::new("e4")).unwrap();
    push(&mut retention, Event::new("e5")).unwrap();
    assert_eq!(retention.dropped(), 2);
    settle(&mut retention, 0, Outcome::Acknowledged);
    assert_eq!(ids(&retention.take(10)), [3, 4, 5]);
}

#[test]
fn drop_newest_keeps_what_it_has() {
    let mut retention = filled(WhenFull::DropNewest, 6);
    assert_eq!(retention.dropped(), 2);
    assert_eq!(ids(&retention.take(10)), [0, 1, 2, 3]);
}

#[test]
fn block_gives_the_event_back_until_there_is_room() {
    let mut retention = filled(WhenFull::Block, 4);
    let back = push(&mut retention, Event::new("e4")).unwrap_err();
    assert_eq!(retention.dropped(), 0);
    retention.take(1);
    settle(&mut retention, 0, Outcome::Acknowledged);
    retention.push_block(back).unwrap();
    assert_eq!(retention.len(), 4);
}

#[test]
fn the_byte_limit_counts_too() {
    let mut retention = Retention::new(Config {
        read_count: 5,
        max_elements: 100,
        max_bytes: 10,
        ..config(WhenFull::DropOldest)
    });
    for text in ["aaaa", "bbbb", "cccc"] {
        push(&mut retention, Event::new(text)).unwrap();
    }
    assert_eq!((retention.len(), retention.dropped()), (2, 1));
    push(&mut retention, Event::new("x".repeat(11))).unwrap();
    assert_eq!(
        retention.dropped(),
        2,
        "an event larger than the whole buffer is dropped"
    );
}

/// A place in the log, for blocks these tests never read back.
fn somewhere(id: u64) -> Location {
    Location {
        sequence: 1,
        offset: id * 100,
        len: 100,
    }
}

/// Writes and keeps one block per text, as the log would.
fn keep_on_disk(retention: &mut Retention, texts: &[&str]) {
    for text in texts {
        let Ok(Pushed::Write(id, written)) =
            retention.push_block(Parcel::Events(vec![Event::new(text.to_string())]))
        else {
            panic!("written first");
        };
        retention.kept(id, written, somewhere(id));
    }
}

fn on_disk(max_elements: usize, when_full: WhenFull) -> Retention {
    Retention::on_disk(
        Config {
            read_count: 10,
            max_elements,
            ..config(when_full)
        },
        Vec::new(),
        0,
    )
}

/// A block of lines carrying an upstream token.
fn acknowledging(texts: &[&str], token: ack::Ack) -> Parcel {
    let events: Vec<Event> = texts
        .iter()
        .map(|text| Event::new(text.to_string()))
        .collect();
    Parcel::Lines(Lines::encode(&events, &bytes::Bytes::from_static(b"\n")).with_ack(token))
}

#[test]
fn on_disk_upstream_hears_once_the_log_kept_the_events() {
    let (upstream, mut heard) = ack::issuer();
    let mut retention = on_disk(100, WhenFull::DropOldest);
    let Ok(Pushed::Write(id, written)) =
        retention.push_block(acknowledging(&["a", "b"], upstream.issue(5)))
    else {
        panic!("a block on disk is written first");
    };
    let Parcel::Lines(lines) = &written else {
        panic!("lines stay lines")
    };
    assert!(lines.ack().is_none(), "the log gets no tokens");
    assert_eq!(retention.sendable(), 0, "not sent before it is kept");
    assert!(
        heard.try_recv().is_err(),
        "not acknowledged before it is kept"
    );
    retention.kept(id, written, somewhere(id));
    assert_eq!(heard.try_recv().unwrap(), (5, Outcome::Acknowledged));
    assert_eq!(retention.sendable(), 2);
}

#[test]
fn in_memory_upstream_hears_once_an_output_delivered_and_a_drop_fails_it() {
    let (upstream, mut heard) = ack::issuer();
    let mut retention = Retention::new(config(WhenFull::DropNewest));
    assert!(matches!(
        retention.push_block(acknowledging(&["a"], upstream.issue(1))),
        Ok(Pushed::Done)
    ));
    let (id, _) = retention.take(10).pop().unwrap();
    assert!(heard.try_recv().is_err(), "kept in memory is not kept");
    settle(&mut retention, id, Outcome::Failed);
    assert!(
        heard.try_recv().is_err(),
        "a failure is the buffer's to retry"
    );
    let (id, _) = retention.take(10).pop().unwrap();
    settle(&mut retention, id, Outcome::Acknowledged);
    assert_eq!(heard.try_recv().unwrap(), (1, Outcome::Acknowledged));
    for index in 0..5 {
        let _ = retention.push_block(acknowledging(&["x"], upstream.issue(10 + index)));
    }
    assert_eq!(
        heard.try_recv().unwrap(),
        (14, Outcome::Failed),
        "the fifth does not fit in max_elements 4 and is dropped"
    );
}

#[test]
fn on_disk_a_delivered_block_holds_its_room_until_the_log_recorded_it() {
    let mut retention = on_disk(3, WhenFull::Block);
    keep_on_disk(&mut retention, &["a", "b", "c"]);
    assert_eq!(ids(&retention.take(10)), [0, 1, 2]);
    settle(&mut retention, 0, Outcome::Acknowledged);
    assert_eq!(retention.take_settlements(), [0]);
    let back = retention
        .push_block(Parcel::Events(vec!["d".into()]))
        .expect_err("block 0 is not recorded settled yet");
    retention.settled(&[0]);
    assert!(matches!(
        retention.push_block(back),
        Ok(Pushed::Write(3, _))
    ));
    assert_eq!(retention.len(), 3);
}

#[test]
fn on_disk_a_dropped_block_is_recorded_settled_and_one_being_written_is_never_dropped() {
    let mut retention = Retention::on_disk(
        Config {
            max_elements: 2,
            ..config(WhenFull::DropOldest)
        },
        vec![Stored {
            id: 7,
            location: somewhere(7),
            events: 1,
            bytes: 3,
        }],
        8,
    );
    let Ok(Pushed::Write(8, _)) = retention.push_block(Parcel::Events(vec!["new".into()])) else {
        panic!("numbered after what the log held");
    };
    let _ = retention.push_block(Parcel::Events(vec!["newer".into()]));
    assert_eq!(
        retention.take_settlements(),
        [7],
        "the oldest waiting made room"
    );
    let _ = retention.push_block(Parcel::Events(vec!["newest".into()]));
    assert_eq!(
        retention.dropped(),
        2,
        "8 and 9 are being written: the newest goes"
    );
    assert!(retention.take_settlements().is_empty());
}

#[test]
fn on_disk_past_max_memory_bytes_a_block_is_read_back_before_it_is_sent() {
    let mut retention = Retention::on_disk(
        Config {
            max_memory_bytes: 2,
            max_elements: 100,
            ..config(WhenFull::Block)
        },
        Vec::new(),
        0,
    );
    keep_on_disk(&mut retention, &["a", "b", "c"]);
    assert_eq!(retention.held_bytes(), 2, "one byte each, two held");
    assert_eq!(ids(&retention.take(10)), [0, 1], "2 waits on disk");
    assert_eq!(retention.sendable(), 0, "not sent before it is read back");
    assert_eq!(retention.take_loads(), [(2, somewhere(2))]);
    assert!(retention.take_loads().is_empty(), "one read at a time");
    retention.loaded(2, Parcel::Events(vec!["c".into()]));
    let taken = retention.take(10);
    assert_eq!(ids(&taken), [2]);
    assert_eq!(taken[0].1, Parcel::Events(vec!["c".into()]));
}

#[test]
fn a_block_failed_in_part_sends_only_its_failed_events_again_after_a_pause() {
    let mut retention = Retention::new(Config {
        read_count: 6,
        max_elements: 100,
        ..config(WhenFull::Block)
    });
    let events: Vec<Event> = (0..6).map(|n| Event::new(n.to_string())).collect();
    let newline = bytes::Bytes::from_static(b"\n");
    let _ = retention.push_block(Parcel::Lines(Lines::encode(&events, &newline)));
    let (id, _) = retention.take(100).pop().unwrap();
    let now = Instant::now();
    // A round robin's share with 1, 3 and 5 failed, the other delivered.
    retention.resolve(id, Outcome::Partly([1, 3, 5].into_iter().collect()), now);
    assert_eq!(retention.sendable(), 0, "not at once");
    assert_eq!(retention.next_due(), Some(now + Duration::from_millis(100)));
    retention.release_due(now + Duration::from_millis(100));
    assert_eq!(retention.sendable(), 3);
    let (again, parcel) = retention.take(100).pop().unwrap();
    assert_eq!(again, id, "the same block");
    let texts: Vec<_> = parcel
        .into_events()
        .iter()
        .map(|e| e.data().clone())
        .collect();
    assert_eq!(texts, ["1", "3", "5"], "only what failed");
    assert_eq!(retention.resent(), 3);
    // Of those, the middle one fails again: named in what was sent.
    retention.resolve(id, Outcome::Partly([1].into_iter().collect()), now);
    retention.release_due(now + Duration::from_millis(150));
    assert_eq!(retention.sendable(), 0, "the second pause is twice as long");
    retention.release_due(now + Duration::from_millis(200));
    let (_, parcel) = retention.take(100).pop().unwrap();
    assert_eq!(parcel.into_events(), [Event::new("3")]);
    retention.resolve(id, Outcome::Acknowledged, now);
    assert!(retention.is_empty(), "delivered whole at last");
    assert!(matches!(
        retention.take_resend_change(),
        Some(wishbone_runtime::resend::ResendChange::Ended { resent: 4, .. })
    ));
}

#[test]
fn a_paused_block_is_the_oldest_to_drop() {
    let mut retention = filled(WhenFull::DropOldest, 4);
    let taken = retention.take(1);
    let now = Instant::now();
    retention.resolve(taken[0].0, Outcome::Failed, now);
    assert_eq!(retention.len(), 4);
    let _ = push(&mut retention, Event::new("new"));
    assert_eq!(retention.dropped(), 1, "the paused block made room");
    assert_eq!(retention.next_due(), None, "and waits no more");
}
