use super::*;
use bytes::Bytes;
use wishbone_runtime::ack;

fn lines(texts: &[&str]) -> Lines {
    let events: Batch = texts
        .iter()
        .map(|text| Event::new(text.to_string()))
        .collect();
    Lines::encode(&events, &Bytes::from_static(b"\n"))
}

fn texts(batch: &Batch) -> Vec<String> {
    batch
        .iter()
        .map(|event| String::from_utf8_lossy(event.data()).into_owned())
        .collect()
}

#[test]
fn only_events_whose_last_byte_was_acknowledged_are_released() {
    let now = Instant::now();
    let mut delivery = Delivery::new(false, true);
    delivery.record_lines(lines(&["aaa", "bb"]), None, now); // ends at 4, 7
    delivery.record_lines(lines(&["c"]), None, now); // ends at 9
    let first = delivery.acknowledge(6, now);
    assert_eq!((first.events, first.bytes), (1, 6));
    assert_eq!(texts(&first.success), ["aaa"]);
    assert_eq!(texts(&delivery.acknowledge(8, now).success), ["bb"]);
    assert_eq!(
        delivery.acknowledge(8, now),
        Released::default(),
        "no progress"
    );
    assert_eq!(delivery.in_flight(), 1);
    assert_eq!(delivery.acknowledge(9, now).events, 1);
    assert!(delivery.is_settled());
}

#[test]
fn events_with_known_ends_are_released_by_position() {
    let now = Instant::now();
    let mut delivery = Delivery::new(false, false);
    delivery.record_event(Event::new("one"), 10, now);
    delivery.record_event(Event::new("two"), 25, now);
    let released = delivery.acknowledge(24, now);
    assert_eq!((released.events, released.success.len()), (1, 0));
    assert_eq!(delivery.in_flight(), 1);
}

#[test]
fn framed_lines_are_released_by_where_each_frame_ends_and_resolve_their_block_once() {
    let now = Instant::now();
    let (issuer, mut replies) = ack::issuer();
    let mut delivery = Delivery::new(false, true);
    delivery.begin(now);
    let frame = |payload: usize| payload + 6;
    // Frames of 9, 8 and 7 bytes, the last ending at 30: something else
    // (a control frame) was written in the first 6 bytes.
    let block = lines(&["aaa", "bb", "c"]).with_ack(issuer.issue(1));
    delivery.record_frames(block, None, frame, 30, now);
    assert_eq!(
        delivery.acknowledge(14, now).events,
        0,
        "the first ends at 15"
    );
    assert_eq!(texts(&delivery.acknowledge(22, now).success), ["aaa"]);
    assert_eq!(texts(&delivery.acknowledge(23, now).success), ["bb"]);
    assert!(
        replies.try_recv().is_err(),
        "the block is resolved once, whole"
    );
    // Frames recorded next end after these, even when told an earlier end.
    delivery.record_frames(lines(&["dddd"]), None, frame, 31, now);
    assert_eq!(delivery.acknowledge(31, now).events, 1, "only c");
    assert_eq!(
        replies.try_recv().ok(),
        Some((1, ack::Outcome::Acknowledged))
    );
    assert_eq!(texts(&delivery.acknowledge(40, now).success), ["dddd"]);
    assert!(delivery.is_settled());
}

#[test]
fn a_dead_connection_leaves_the_rest_to_send_first_and_counts_them_as_resends() {
    let now = Instant::now();
    let mut delivery = Delivery::new(false, false);
    assert!(delivery.set_aside(vec![Event::new("waiting")]).is_empty());
    let (first, resent) = delivery.begin(now);
    assert_eq!((texts(&first), resent), (vec!["waiting".to_string()], 0));
    delivery.record_lines(lines(&["one", "two", "three"]), None, now);
    delivery.acknowledge(4, now);
    assert!(delivery.set_aside(vec![Event::new("newer")]).is_empty());
    let lost = delivery.end();
    assert_eq!((lost.held, lost.returned), (2, 0));
    assert_eq!(delivery.undelivered(), 3);
    let (again, resent) = delivery.begin(now);
    assert_eq!(texts(&again), ["two", "three", "newer"]);
    assert_eq!(resent, 2, "newer was never sent");
}

#[test]
fn what_a_connection_never_wrote_is_held_but_not_counted_as_resent() {
    let now = Instant::now();
    let mut delivery = Delivery::new(false, false);
    delivery.begin(now);
    delivery.record_lines(lines(&["one", "two"]), None, now);
    delivery.end();
    let (held, resent) = delivery.begin(now);
    assert_eq!(resent, 2, "written once, unacknowledged: sent again");
    // The next connection dies before writing them, again and again.
    for _ in 0..5 {
        delivery.record_unsent(Parcel::Events(held.clone()));
        let lost = delivery.end();
        assert_eq!(lost.held, 2);
        let (again, resent) = delivery.begin(now);
        assert_eq!(texts(&again), ["one", "two"], "held, in order");
        assert_eq!(resent, 0, "never written: not sent again");
    }
    // A buffer's block taken and never written goes back to it whole.
    let (issuer, mut replies) = wishbone_runtime::ack::issuer();
    let block = lines(&["a", "b"]).with_ack(issuer.issue(7));
    delivery.record_unsent(Parcel::Lines(block));
    assert_eq!(delivery.undelivered(), 2);
    let lost = delivery.end();
    assert_eq!((lost.returned, lost.held), (2, 0));
    assert!(matches!(
        replies.try_recv(),
        Ok((7, wishbone_runtime::ack::Outcome::Failed))
    ));
}

#[test]
fn failing_over_hands_undeliverable_events_to_failed() {
    let now = Instant::now();
    let mut delivery = Delivery::new(true, false);
    assert_eq!(texts(&delivery.set_aside(vec![Event::new("a")])), ["a"]);
    assert!(delivery.has_room(0), "failing over never fills up");
    delivery.begin(now);
    delivery.record_lines(lines(&["b", "c"]), None, now);
    delivery.acknowledge(2, now);
    let lost = delivery.end();
    assert_eq!(texts(&lost.failed), ["c"]);
    assert_eq!(delivery.held(), 0);
}

#[test]
fn a_buffers_tokens_are_resolved_one_by_one_and_failed_back_when_lost() {
    let now = Instant::now();
    let (issuer, mut replies) = ack::issuer();
    let events: Batch = (0..3)
        .map(|id| Event::new(id.to_string()).with_ack(issuer.issue(id)))
        .collect();
    let mut delivery = Delivery::new(false, false);
    let encoded = Lines::encode(&events, &Bytes::from_static(b"\n"));
    delivery.record_lines(encoded, Some(events), now);
    assert_eq!(delivery.acknowledge(2, now).events, 1);
    assert_eq!(replies.try_recv().unwrap(), (0, ack::Outcome::Acknowledged));
    let lost = delivery.end();
    assert_eq!(
        (lost.held, lost.returned),
        (0, 2),
        "the buffer resends them"
    );
    assert_eq!(replies.try_recv().unwrap(), (1, ack::Outcome::Failed));
    assert_eq!(replies.try_recv().unwrap(), (2, ack::Outcome::Failed));
    let (waiting, _) = ack::issuer();
    let buffered = vec![Event::new("x").with_ack(waiting.issue(9))];
    assert!(delivery.set_aside(buffered).is_empty());
    assert_eq!(delivery.held(), 0, "a buffer's event is never held");
}

#[test]
fn a_buffers_block_is_resolved_whole_and_failed_back_in_what_the_peer_lacks() {
    let now = Instant::now();
    let (issuer, mut replies) = ack::issuer();
    let mut delivery = Delivery::new(false, false);
    delivery.record_lines(lines(&["a", "b"]).with_ack(issuer.issue(1)), None, now);
    delivery.record_lines(lines(&["c", "d"]).with_ack(issuer.issue(2)), None, now);
    assert_eq!(delivery.acknowledge(2, now).events, 1);
    assert!(replies.try_recv().is_err(), "half a block is not the block");
    assert_eq!(delivery.acknowledge(6, now).events, 2);
    assert_eq!(replies.try_recv().unwrap(), (1, ack::Outcome::Acknowledged));
    let lost = delivery.end();
    assert_eq!(
        (lost.returned, lost.held),
        (1, 0),
        "d was never acknowledged"
    );
    assert_eq!(
        replies.try_recv().unwrap(),
        (2, ack::Outcome::Partly(Positions::range(1..2))),
        "c was: only d is sent again"
    );
    let waiting = lines(&["e"]).with_ack(issuer.issue(3));
    assert!(delivery.set_aside_parcel(Parcel::Lines(waiting)).is_empty());
    assert_eq!(replies.try_recv().unwrap(), (3, ack::Outcome::Failed));
    assert_eq!(delivery.held(), 0);
}

#[test]
fn a_peer_that_stops_acknowledging_stalls_and_resumes() {
    let start = Instant::now();
    let timeout = Duration::from_secs(10);
    let mut delivery = Delivery::new(false, false);
    assert_eq!(
        delivery.stall(start + timeout * 5, timeout),
        None,
        "idle is not stalled"
    );
    delivery.record_lines(lines(&["a", "b"]), None, start + timeout * 5);
    assert_eq!(delivery.stall(start + timeout * 5, timeout), None, "fresh");
    let later = start + timeout * 6;
    assert_eq!(delivery.stall(later, timeout), Some(Stall::Stalled));
    assert_eq!(delivery.stall(later, timeout), None, "said once");
    assert!(delivery.is_stalled());
    delivery.acknowledge(2, later);
    assert_eq!(delivery.stall(later, timeout), Some(Stall::Resumed));
}

/// A small deterministic generator, so a failure can be replayed.
/// Drives a delivery with random writes, partial acknowledgements and
/// disconnects, against a model of what the peer really received: no
/// event is lost, none is acknowledged twice or sent again once
/// acknowledged, acknowledgements follow the order of writing, and a
/// duplicate at the peer only ever comes from a resend of what a dead
/// connection had not acknowledged.
#[test]
fn random_histories_lose_nothing_and_acknowledge_nothing_twice() {
    let id_of = |event: &Event| -> u64 { String::from_utf8_lossy(event.data()).parse().unwrap() };
    for seed in 1..300u64 {
        let mut random = wishbone_runtime::random::Random(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let failover = random.below(2) == 0;
        let now = Instant::now();
        let mut delivery = Delivery::new(failover, true);
        let mut next_id = 0u64;
        let mut acknowledged: Vec<u64> = Vec::new();
        let mut failed: Vec<u64> = Vec::new();
        let mut left_unacknowledged: Vec<u64> = Vec::new();
        let mut arrived: Vec<u64> = Vec::new(); // at the peer, duplicates included
        let mut connected = false;
        // The current connection: (end position, id) in writing order,
        // and how many of them were acknowledged.
        let mut positions: Vec<(u64, u64)> = Vec::new();
        let mut acknowledged_here = 0;
        // Lines go out delimited, or (`framed`) one frame each, as a
        // websocket's do, with 3 bytes of header.
        let write = |delivery: &mut Delivery,
                     positions: &mut Vec<(u64, u64)>,
                     events: Batch,
                     framed: bool| {
            let mut end = positions.last().map_or(0, |(end, _)| *end);
            for event in &events {
                end += event.len() as u64 + if framed { 3 } else { 1 };
                positions.push((end, id_of(event)));
            }
            let encoded = Lines::encode(&events, &Bytes::from_static(b"\n"));
            match framed {
                true => delivery.record_frames(encoded, None, |n| n + 3, end, now),
                false => delivery.record_lines(encoded, None, now),
            }
        };
        let fresh = |next_id: &mut u64, count: u64| -> Batch {
            (0..count)
                .map(|_| {
                    *next_id += 1;
                    Event::new(next_id.to_string())
                })
                .collect()
        };
        for _ in 0..300 {
            assert_eq!(
                delivery.in_flight(),
                delivery.in_flight_counted(),
                "seed {seed}: the count kept drifted"
            );
            match (random.below(6), connected) {
                (0, false) => {
                    let batch = fresh(&mut next_id, random.below(4));
                    failed.extend(delivery.set_aside(batch).iter().map(id_of));
                }
                (1, false) => {
                    let (first, _) = delivery.begin(now);
                    connected = true;
                    positions.clear();
                    acknowledged_here = 0;
                    for event in &first {
                        assert!(
                            !acknowledged.contains(&id_of(event)),
                            "seed {seed}: acknowledged event sent again"
                        );
                    }
                    let framed = random.below(2) == 0;
                    write(&mut delivery, &mut positions, first, framed);
                }
                (2 | 3, true) => {
                    let batch = fresh(&mut next_id, 1 + random.below(5));
                    let framed = random.below(2) == 0;
                    write(&mut delivery, &mut positions, batch, framed);
                }
                (4, true) => {
                    let total = positions.last().map_or(0, |(end, _)| *end);
                    let position = random.below(total + 1);
                    for event in delivery.acknowledge(position, now).success {
                        let id = id_of(&event);
                        assert_eq!(
                            id, positions[acknowledged_here].1,
                            "seed {seed}: out of order"
                        );
                        acknowledged_here += 1;
                        acknowledged.push(id);
                    }
                }
                (5, true) => {
                    // The peer received a prefix at least as long as
                    // what it acknowledged; the link dies.
                    let total = positions.last().map_or(0, |(end, _)| *end);
                    let floor = acknowledged_here
                        .checked_sub(1)
                        .map_or(0, |index| positions[index].0);
                    let received = floor + random.below(total - floor + 1);
                    arrived.extend(
                        positions
                            .iter()
                            .filter(|(end, _)| *end <= received)
                            .map(|(_, id)| *id),
                    );
                    left_unacknowledged
                        .extend(positions[acknowledged_here..].iter().map(|(_, id)| *id));
                    failed.extend(delivery.end().failed.iter().map(id_of));
                    connected = false;
                }
                _ => {}
            }
        }
        let mut once = acknowledged.clone();
        once.sort_unstable();
        once.dedup();
        assert_eq!(
            once.len(),
            acknowledged.len(),
            "seed {seed}: acknowledged twice"
        );
        if connected {
            failed.extend(delivery.end().failed.iter().map(id_of));
        }
        let (rest, _) = delivery.begin(now);
        let mut all: Vec<u64> = acknowledged
            .iter()
            .chain(&failed)
            .copied()
            .chain(rest.iter().map(id_of))
            .collect();
        all.sort_unstable();
        assert_eq!(
            all,
            (1..=next_id).collect::<Vec<_>>(),
            "seed {seed}: lost or doubled"
        );
        for id in &arrived {
            if arrived.iter().filter(|other| *other == id).count() > 1 {
                assert!(
                    left_unacknowledged.contains(id),
                    "seed {seed}: {id} duplicated without a resend"
                );
            }
        }
    }
}

#[test]
fn messages_are_acknowledged_by_number_and_count_their_bytes() {
    let now = Instant::now();
    let (issuer, mut replies) = ack::issuer();
    let mut delivery = Delivery::new(false, true);
    delivery.begin(now);
    let block = lines(&["aaa", "bb"]).with_ack(issuer.issue(1));
    assert_eq!(delivery.record_messages(Parcel::Lines(block), now), 2);
    let events = vec![Event::new("cccc"), Event::new("d")];
    assert_eq!(delivery.record_messages(Parcel::Events(events), now), 4);
    let first = delivery.acknowledge(1, now);
    assert_eq!((first.events, first.bytes), (1, 3), "one message, aaa");
    assert!(replies.try_recv().is_err(), "half a block is not the block");
    let next = delivery.acknowledge(3, now);
    assert_eq!((next.events, next.bytes), (2, 6), "bb and cccc");
    assert_eq!(texts(&next.success), ["bb", "cccc"]);
    assert_eq!(replies.try_recv().unwrap(), (1, ack::Outcome::Acknowledged));
    let lost = delivery.end();
    assert_eq!(lost.held, 1, "d was never acknowledged");
    let (again, resent) = delivery.begin(now);
    assert_eq!((texts(&again), resent), (vec!["d".to_string()], 1));
    assert_eq!(
        delivery.record_messages(Parcel::Events(again), now),
        1,
        "numbers start again"
    );
}

#[test]
fn what_a_failed_write_carried_is_sent_again_as_a_resend() {
    let now = Instant::now();
    let (issuer, mut replies) = ack::issuer();
    let mut delivery = Delivery::new(false, false);
    delivery.begin(now);
    delivery.record_lines(lines(&["a"]), None, now);
    delivery.record_never_acknowledged(Parcel::Events(vec![Event::new("b")]));
    let block = lines(&["c"]).with_ack(issuer.issue(4));
    delivery.record_never_acknowledged(Parcel::Lines(block));
    assert_eq!(delivery.in_flight(), 3);
    assert!(!delivery.is_settled());
    assert_eq!(delivery.acknowledge(2, now).events, 1, "a");
    let lost = delivery.end();
    assert_eq!((lost.held, lost.returned), (1, 1));
    assert_eq!(replies.try_recv().unwrap(), (4, ack::Outcome::Failed));
    let (again, resent) = delivery.begin(now);
    assert_eq!((texts(&again), resent), (vec!["b".to_string()], 1));
}

#[test]
fn a_refused_message_is_taken_out_and_the_rest_stays_owed() {
    let now = Instant::now();
    let mut delivery = Delivery::new(false, true);
    // Messages 1-3 as lines, 4-5 as events.
    delivery.record_messages(Parcel::Lines(lines(&["a", "b", "c"])), now);
    let events: Batch = ["d", "e"].iter().map(|text| Event::new(*text)).collect();
    assert_eq!(delivery.record_messages(Parcel::Events(events), now), 5);
    assert!(delivery.refuse(2, now).is_none(), "message 1 is still owed");
    assert_eq!(texts(&delivery.acknowledge(1, now).success), ["a"]);
    let refused = delivery.refuse(2, now).expect("message 2 is next");
    assert_eq!(refused.data().as_ref(), b"b");
    assert_eq!(delivery.in_flight(), 3);
    assert_eq!(delivery.in_flight(), delivery.in_flight_counted());
    assert_eq!(texts(&delivery.acknowledge(3, now).success), ["c"]);
    assert_eq!(delivery.refuse(4, now).unwrap().data().as_ref(), b"d");
    assert!(delivery.refuse(4, now).is_none(), "refused once");
    let lost = delivery.end();
    assert_eq!(lost.held, 1, "only message 5 is sent again");
}
