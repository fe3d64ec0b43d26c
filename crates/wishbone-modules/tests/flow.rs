//! The round robin and the write-ahead buffer on their own, through
//! `ModuleContext::detached`: how a locked destination reaches back
//! upstream.

use std::future::Future;
use std::time::Duration;

use wishbone_runtime::queue::{self, Receiver};
use wishbone_runtime::{Arguments, Event, ModuleContext, ModuleKind, RuntimeOptions};

mod support;

const LIMIT: Duration = Duration::from_secs(10);

/// Runs `test` beside the module of `kind`, whose queues `connect` wires.
fn beside_module<F: Future<Output = ()>>(
    kind: &ModuleKind,
    arguments: &str,
    connect: impl FnOnce(&mut ModuleContext),
    test: F,
) {
    let module = (kind.build)(&Arguments::from_yaml(arguments).unwrap()).unwrap();
    let mut context = ModuleContext::detached("module", RuntimeOptions::default());
    connect(&mut context);
    support::on_one_thread(async move {
        let _running = tokio::task::spawn_local(module.run(context));
        tokio::time::timeout(LIMIT, test)
            .await
            .expect("the test ends in time");
    });
}

/// Waits until `condition` holds, letting the module run meanwhile.
async fn until(condition: impl Fn() -> bool) {
    while !condition() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The texts of the events in `receiver` now.
fn texts(receiver: &mut Receiver) -> Vec<String> {
    let mut texts = Vec::new();
    while let Some(batch) = receiver.try_recv() {
        texts.extend(
            batch
                .iter()
                .map(|event| String::from_utf8_lossy(event.data()).into_owned()),
        );
    }
    texts
}

#[test]
fn a_round_robin_locks_its_inbox_while_every_destination_is_locked() {
    let (to_module, inbox) = queue::channel(100);
    let (one_sender, mut one) = queue::channel(100);
    let (two_sender, two) = queue::channel(100);
    let watched = to_module.clone();
    beside_module(
        &wishbone_modules::flow::roundrobin::KIND,
        "{}",
        |context| {
            context.connect_incoming("inbox", inbox);
            context.connect_outgoing("one", one_sender);
            context.connect_outgoing("two", two_sender);
        },
        async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(!watched.is_locked(), "both destinations are up");
            one.lock();
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(!watched.is_locked(), "two is still up");
            two.lock();
            until(|| watched.is_locked()).await;
            one.unlock();
            until(|| !watched.is_locked()).await;
            to_module
                .send(vec![Event::new("a"), Event::new("b")])
                .await
                .unwrap();
            until(|| one.stats().snapshot().size == 2).await;
            assert_eq!(texts(&mut one), ["a", "b"], "all to the one up");
        },
    );
}

#[test]
fn a_write_ahead_buffer_holds_its_events_while_its_outbox_is_locked() {
    let (to_module, inbox) = queue::channel(100);
    let (outbox_sender, mut outbox) = queue::channel(100);
    let inbox_stats = to_module.stats().clone();
    outbox.lock();
    beside_module(
        &wishbone_wal::KIND,
        "{read_count: 2, max_elements: 4, when_full: drop_oldest}",
        |context| {
            context.connect_incoming("inbox", inbox);
            context.connect_outgoing("outbox", outbox_sender);
        },
        async move {
            for index in 0..6 {
                to_module
                    .send(vec![Event::new(format!("e{index}"))])
                    .await
                    .unwrap();
            }
            until(|| inbox_stats.snapshot().dropped_total == 2).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(
                texts(&mut outbox),
                Vec::<String>::new(),
                "nothing sent while locked"
            );
            outbox.unlock();
            until(|| outbox.stats().snapshot().size == 4).await;
            assert_eq!(
                texts(&mut outbox),
                ["e2", "e3", "e4", "e5"],
                "the oldest made room, the newest were kept"
            );
        },
    );
}

#[test]
fn a_funnel_is_down_while_its_outbox_is_and_up_again_after() {
    let (into_one, one) = queue::channel(100);
    let (into_two, two) = queue::channel(100);
    let (outbox_sender, outbox) = queue::channel(100);
    outbox.lock();
    let (watch_one, watch_two) = (into_one.clone(), into_two.clone());
    beside_module(
        &wishbone_modules::flow::funnel::KIND,
        "{}",
        |context| {
            context.connect_incoming("one", one);
            context.connect_incoming("two", two);
            context.connect_outgoing("outbox", outbox_sender);
        },
        async move {
            assert!(
                watch_one.is_locked() && watch_two.is_locked(),
                "down from the start: a round robin in front routes around it at once"
            );
            outbox.unlock();
            until(|| !watch_one.is_locked() && !watch_two.is_locked()).await;
            outbox.lock();
            until(|| watch_one.is_locked() && watch_two.is_locked()).await;
            drop((into_one, into_two));
        },
    );
}

#[test]
fn a_fanout_is_down_while_any_destination_is() {
    let (to_module, inbox) = queue::channel(100);
    let (a_sender, a) = queue::channel(100);
    let (b_sender, b) = queue::channel(100);
    let watched = to_module.clone();
    beside_module(
        &wishbone_modules::flow::fanout::KIND,
        "{}",
        |context| {
            context.connect_incoming("inbox", inbox);
            context.connect_outgoing("a", a_sender);
            context.connect_outgoing("b", b_sender);
        },
        async move {
            assert!(!watched.is_locked());
            b.lock();
            until(|| watched.is_locked()).await;
            b.unlock();
            until(|| !watched.is_locked()).await;
            a.lock();
            until(|| watched.is_locked()).await;
            drop(to_module);
        },
    );
}
