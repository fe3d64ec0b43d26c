//! The queue's behaviour, end to end within one process.

use super::*;
use crate::Event;
use std::time::Duration;

fn batch(events: usize) -> Batch {
    (0..events).map(|i| Event::new(i.to_string())).collect()
}

#[tokio::test]
async fn a_full_queue_makes_the_sender_wait_until_the_receiver_takes() {
    let (sender, mut receiver) = channel(10);
    sender.send(batch(10)).await.unwrap();
    assert!(matches!(
        sender.try_send(batch(1)),
        Err(TrySendError::Full(_))
    ));
    let waiting = tokio::spawn({
        let sender = sender.clone();
        async move { sender.send(batch(5)).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        !waiting.is_finished(),
        "send must wait while the queue is full"
    );
    assert_eq!(receiver.recv().await.unwrap().len(), 10);
    waiting.await.unwrap().unwrap();
    assert_eq!(receiver.stats().snapshot().size, 5);
    assert_eq!(receiver.stats().snapshot().in_total, 15);
    assert_eq!(receiver.stats().snapshot().out_total, 10);
}

#[tokio::test]
async fn a_receiver_handed_over_ends_for_its_module_and_the_rest_goes_on() {
    let (sender, mut receiver) = channel(10);
    let weak = sender.downgrade();
    sender.send(batch(2)).await.unwrap();
    let answer = sender.hand_over().expect("a connected queue");
    sender.send(batch(3)).await.unwrap();
    assert_eq!(receiver.recv().await.unwrap().len(), 2, "what came before");
    assert!(
        receiver.recv().await.is_none(),
        "then the queue ends for it"
    );
    assert!(receiver.try_recv().is_none());
    receiver.lock();
    drop(receiver);
    let mut next = answer.await.expect("the rest, handed over");
    assert!(next.is_locked(), "the locked state goes along");
    assert_eq!(next.recv().await.unwrap().len(), 3);
    sender.send(batch(1)).await.unwrap();
    assert_eq!(next.recv().await.unwrap().len(), 1, "the same queue");
    assert_eq!(next.stats().snapshot().out_total, 6);
    drop(sender);
    assert!(weak.upgrade().is_none(), "a weak sender keeps nothing open");
    assert!(next.recv().await.is_none());
}

#[tokio::test]
async fn lines_stay_lines_for_recv_parcel_and_become_events_for_recv() {
    let (sender, mut receiver) = channel(10);
    let lines = crate::Lines::encode(&batch(3), &bytes::Bytes::from_static(b"\n"));
    sender.send(lines.clone()).await.unwrap();
    sender.send(lines.clone()).await.unwrap();
    assert_eq!(receiver.stats().snapshot().size, 6);
    assert_eq!(receiver.recv_parcel().await, Some(Parcel::Lines(lines)));
    assert_eq!(receiver.recv().await, Some(batch(3)));
}

#[tokio::test]
async fn an_unconnected_queue_drops_and_counts() {
    let sender = unconnected();
    sender.send(batch(7)).await.unwrap();
    sender.try_send(batch(3)).unwrap();
    let snapshot = sender.stats().snapshot();
    assert_eq!(snapshot.dropped_total, 10);
    assert_eq!(snapshot.in_total, 0);
}

#[tokio::test]
async fn recv_ends_once_every_sender_is_gone_and_the_queue_is_empty() {
    let (sender, mut receiver) = channel(10);
    sender.send(batch(2)).await.unwrap();
    drop(sender);
    assert_eq!(receiver.recv().await.map(|b| b.len()), Some(2));
    assert!(receiver.recv().await.is_none());
}

#[tokio::test]
async fn a_gone_receiver_gives_the_batch_back_even_to_a_waiting_sender() {
    let (sender, receiver) = channel(1);
    sender.send(batch(1)).await.unwrap();
    let waiting = tokio::spawn({
        let sender = sender.clone();
        async move { sender.send(batch(3)).await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    drop(receiver);
    let Closed(returned) = waiting.await.unwrap().unwrap_err();
    assert_eq!(returned.len(), 3);
}

#[tokio::test]
async fn a_batch_larger_than_the_queue_waits_for_an_empty_queue() {
    let (sender, mut receiver) = channel(4);
    sender.send(batch(9)).await.unwrap();
    assert!(matches!(
        sender.try_send(batch(1)),
        Err(TrySendError::Full(_))
    ));
    assert_eq!(receiver.recv().await.unwrap().len(), 9);
    sender.try_send(batch(4)).unwrap();
}

#[tokio::test]
async fn lock_changes_reach_every_sender() {
    let (sender, receiver) = channel(4);
    let mut watch = sender.lock_watch();
    assert!(!sender.is_locked());
    receiver.lock();
    tokio::time::timeout(Duration::from_secs(1), watch.changed())
        .await
        .unwrap();
    assert!(watch.is_locked() && sender.is_locked());
    receiver.unlock();
    tokio::time::timeout(Duration::from_secs(1), watch.changed())
        .await
        .unwrap();
    assert!(!sender.is_locked());
}

#[tokio::test]
async fn abandoning_a_reservation_loses_nothing() {
    let (sender, mut receiver) = channel(2);
    sender.send(batch(2)).await.unwrap();
    let gave_up = tokio::time::timeout(Duration::from_millis(10), sender.reserve(1)).await;
    assert!(gave_up.is_err());
    assert_eq!(receiver.recv().await.unwrap().len(), 2);
    sender.reserve(2).await.unwrap().send(batch(2)).unwrap();
    assert_eq!(receiver.stats().snapshot().in_total, 4);
}

#[tokio::test]
async fn what_a_module_gives_back_goes_first_and_along_with_a_hand_over() {
    let (sender, mut receiver) = channel(10);
    sender.send(batch(2)).await.unwrap();
    let taken = receiver.recv_parcel().await.unwrap();
    receiver.give_back(taken.clone());
    sender.send(batch(1)).await.unwrap();
    assert_eq!(receiver.recv_parcel().await, Some(taken.clone()), "first");
    assert_eq!(receiver.recv().await.unwrap().len(), 1);
    let answer = sender.hand_over().unwrap();
    sender.send(batch(3)).await.unwrap();
    assert!(receiver.recv().await.is_none() && receiver.is_handed_over());
    // Replaced: what it still held goes to the next module, first.
    receiver.give_back(taken);
    drop(receiver);
    let mut next = answer.await.unwrap();
    assert_eq!(next.recv().await.unwrap().len(), 2, "given back, handed on");
    assert_eq!(next.recv().await.unwrap().len(), 3);
    let snapshot = next.stats().snapshot();
    assert_eq!((snapshot.in_total, snapshot.out_total), (10, 10));
}

#[tokio::test]
async fn a_receiver_dropped_before_it_reached_the_request_hands_on_what_came_before() {
    let (sender, mut receiver) = channel(10);
    sender.send(batch(1)).await.unwrap();
    let held = receiver.recv_parcel().await.unwrap();
    sender.send(batch(2)).await.unwrap();
    let answer = sender.hand_over().unwrap();
    sender.send(batch(3)).await.unwrap();
    assert!(
        receiver.is_handed_over(),
        "known before the request is reached"
    );
    receiver.give_back(held);
    drop(receiver);
    let mut next = answer.await.unwrap();
    assert!(!next.is_handed_over());
    let sizes: Vec<usize> = [
        next.recv().await.unwrap().len(),
        next.recv().await.unwrap().len(),
        next.recv().await.unwrap().len(),
    ]
    .into();
    assert_eq!(sizes, [1, 2, 3], "given back, then the queue in order");
    assert_eq!(next.stats().snapshot().size, 0);
}

#[tokio::test]
async fn a_rewired_sender_and_its_clones_send_to_the_new_queue_from_then_on() {
    let (sender, mut old) = channel(10);
    let clone = sender.clone();
    let (to_new, mut new) = channel(10);
    sender.send(batch(2)).await.unwrap();
    let rewiring = sender.rewiring();
    assert!(!rewiring.sends_like(&to_new));
    assert!(rewiring.to(&to_new));
    assert!(rewiring.sends_like(&to_new) && clone.same_queue(&to_new));
    clone.send(batch(3)).await.unwrap();
    assert_eq!(old.recv().await.unwrap().len(), 2, "sent before stays");
    assert!(
        old.recv().await.is_none(),
        "the old queue ends: its only sender moved"
    );
    drop(to_new);
    assert_eq!(new.recv().await.unwrap().len(), 3);
    assert_eq!(new.stats().snapshot().in_total, 3);
    drop((sender, clone));
    assert!(new.recv().await.is_none(), "the moved sender was the last");
    assert!(!rewiring.to(&unconnected()), "every clone is gone");
}

#[tokio::test]
async fn a_lock_watch_follows_its_sender_to_the_new_queue() {
    let (sender, old) = channel(4);
    let (to_new, new) = channel(4);
    let mut watch = sender.lock_watch();
    new.lock();
    sender.rewiring().to(&to_new);
    tokio::time::timeout(Duration::from_secs(1), watch.changed())
        .await
        .unwrap();
    assert!(
        watch.is_locked() && sender.is_locked(),
        "the new queue's state"
    );
    old.lock();
    new.unlock();
    tokio::time::timeout(Duration::from_secs(1), watch.changed())
        .await
        .unwrap();
    assert!(!watch.is_locked(), "the old queue no longer counts");
}
