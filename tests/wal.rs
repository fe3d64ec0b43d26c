//! The round-robin demo with a write-ahead buffer, against three real
//! websocket servers (separate processes the tests stop and restart): a
//! metronome every millisecond, enrichment with the host name, a bounded
//! buffer, round robin.

use std::time::Duration;

use serde_json::Value;
use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);

fn bootstrap(ports: [u16; 3], max_elements: usize, when_full: &str) -> String {
    let mut text = format!(
        "modules:\n  metronome: {{module: wishbone.input.metronome, arguments: {{interval: 1}}}}\n  \
         enrich: {{module: wishbone.process.modify, arguments: {{merge: {{hostname: \"${{hostname}}\"}}}}}}\n  \
         wal: {{module: wishbone.flow.wal, arguments: {{read_count: 20, max_elements: {max_elements}, when_full: {when_full}}}}}\n  \
         roundrobin: {{module: wishbone.flow.roundrobin}}\n"
    );
    for (index, port) in ports.iter().enumerate() {
        text += &format!(
            "  ws{index}: {{module: wishbone.output.websocket, arguments: {{url: \"ws://127.0.0.1:{port}/\", reconnect_initial: 0.02, reconnect_max: 0.05}}}}\n"
        );
    }
    text += "routingtable:\n  - metronome.outbox -> enrich.inbox\n  - enrich.outbox -> wal.inbox\n  - wal.outbox -> roundrobin.inbox\n";
    for index in 0..3 {
        text += &format!("  - roundrobin.ws{index} -> ws{index}.inbox\n");
    }
    text
}

/// The events a server received, as parsed JSON.
fn events(sink: &Sink) -> Vec<Value> {
    let received = sink.received();
    // Whole lines only: the sink may be writing the last one as it is read.
    let whole = received
        .iter()
        .rposition(|byte| *byte == b'\n')
        .map_or(0, |end| end + 1);
    String::from_utf8(received[..whole].to_vec())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("each frame is a JSON event"))
        .collect()
}

fn ids(sink: &Sink) -> Vec<u64> {
    events(sink)
        .iter()
        .map(|event| event["id"].as_u64().unwrap())
        .collect()
}

fn total(sinks: &[&Sink]) -> usize {
    sinks.iter().map(|sink| sink.line_count()).sum()
}

/// No id at two servers (or twice at one).
fn every_id_once_where(sinks: &[&Sink]) {
    let mut places = std::collections::BTreeMap::<u64, Vec<usize>>::new();
    for (server, sink) in sinks.iter().enumerate() {
        for id in ids(sink) {
            places.entry(id).or_default().push(server);
        }
    }
    let twice: Vec<_> = places
        .iter()
        .filter(|(_, at)| at.len() > 1)
        .take(10)
        .collect();
    assert!(
        twice.is_empty(),
        "ids received more than once (id, servers): {twice:?}"
    );
}

/// Every id from 0 to the highest, once, across the servers; returns how many.
fn every_id_once(all: &[Vec<u64>]) -> usize {
    let mut places = std::collections::BTreeMap::<u64, Vec<usize>>::new();
    for (server, received) in all.iter().enumerate() {
        for id in received {
            places.entry(*id).or_default().push(server);
        }
    }
    let twice: Vec<_> = places
        .iter()
        .filter(|(_, at)| at.len() > 1)
        .take(10)
        .collect();
    assert!(
        twice.is_empty(),
        "ids received more than once (id, servers): {twice:?}"
    );
    let mut seen: Vec<u64> = all.concat();
    seen.sort_unstable();
    let count = seen.len();
    assert!(
        seen.iter()
            .enumerate()
            .all(|(index, id)| *id == index as u64),
        "ids lost or duplicated: {count} ids, highest {:?}",
        seen.last()
    );
    count
}

fn increasing(ids: &[u64]) -> bool {
    ids.windows(2).all(|pair| pair[0] < pair[1])
}

fn servers(dir: &std::path::Path, round: &str) -> [Sink; 3] {
    [0, 1, 2].map(|index| Sink::start_websocket(dir, &format!("{round}{index}"), 0))
}

#[test]
fn with_all_up_ids_rotate_strictly_and_carry_the_host_name() {
    let dir = scratch_dir("wal-all-up");
    let [a, b, c] = servers(&dir, "ws");
    let mut wishbone = Wishbone::start(
        &dir,
        &bootstrap([a.port, b.port, c.port], 1000, "drop_oldest"),
        &[],
    );
    wait_until(MINUTE, "600 events", || total(&[&a, &b, &c]) >= 600);
    assert!(wishbone.stop().success());
    let all = [ids(&a), ids(&b), ids(&c)];
    every_id_once(&all);
    let mut server_of = std::collections::BTreeMap::new();
    for (server, received) in all.iter().enumerate() {
        assert!(increasing(received), "server {server} got ids out of order");
        for id in received {
            server_of.insert(*id, server);
        }
    }
    // Once every output is connected (the first 200 ms), each id goes to the next server.
    let settled: Vec<usize> = server_of.range(200..).map(|(_, server)| *server).collect();
    assert!(
        settled.windows(2).all(|pair| pair[1] == (pair[0] + 1) % 3),
        "strict rotation"
    );
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    for event in events(&a).iter().chain(&events(&b)).chain(&events(&c)) {
        assert_eq!(event["hostname"], hostname.trim(), "{event}");
        assert_eq!(event["onramp"], "metronome");
    }
}

#[test]
fn with_one_server_stopped_the_rest_share_the_events_and_none_is_lost() {
    let dir = scratch_dir("wal-one-down");
    let [a, mut b, c] = servers(&dir, "ws");
    let mut wishbone = Wishbone::start(
        &dir,
        &bootstrap([a.port, b.port, c.port], 1000, "drop_oldest"),
        &[],
    );
    wait_until(MINUTE, "300 events", || total(&[&a, &b, &c]) >= 300);
    b.terminate();
    let before = total(&[&a, &c]);
    wait_until(MINUTE, "600 more events on the other two", || {
        total(&[&a, &c]) >= before + 600
    });
    assert!(wishbone.stop().success());
    every_id_once(&[ids(&a), ids(&b), ids(&c)]);
}

/// The wall clock in nanoseconds, to compare with the events' `ingest_ns`.
fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// (id, ingest_ns) of every event the servers received, sorted by id.
fn stamps(sinks: &[&Sink]) -> Vec<(u64, u64)> {
    let mut all: Vec<(u64, u64)> = sinks
        .iter()
        .flat_map(|sink| events(sink))
        .map(|event| {
            (
                event["id"].as_u64().unwrap(),
                event["ingest_ns"].as_u64().unwrap(),
            )
        })
        .collect();
    all.sort_unstable();
    all
}

/// What three servers received around an outage of all of them.
struct Outage {
    stopped_ns: u64,
    restarted_ns: u64,
    received: Vec<(u64, u64)>,
    dropped: u64,
}

/// Three servers up, then all stopped for 700 ms (about 700 events) and
/// the time new ones on the same ports take to start, until events emitted
/// after the outage arrive.
fn outage(name: &str, max_elements: usize, when_full: &str) -> Outage {
    let dir = scratch_dir(name);
    let [mut a, mut b, mut c] = servers(&dir, "first");
    let ports = [a.port, b.port, c.port];
    let mut wishbone = Wishbone::start(&dir, &bootstrap(ports, max_elements, when_full), &[]);
    wait_until(MINUTE, "100 events", || total(&[&a, &b, &c]) >= 100);
    for server in [&mut a, &mut b, &mut c] {
        server.terminate();
    }
    let stopped_ns = now_ns();
    std::thread::sleep(Duration::from_millis(700)); // the outage itself
    let again =
        [0, 1, 2].map(|index| Sink::start_websocket(&dir, &format!("again{index}"), ports[index]));
    // The outage ends once all three listen again (starting them takes a
    // while on a busy machine); the outputs then reconnect within 50 ms.
    let restarted_ns = now_ns();
    wait_until(MINUTE, "events from after the outage", || {
        stamps(&[&again[0], &again[1], &again[2]])
            .iter()
            .any(|(_, ingest)| *ingest > restarted_ns + 200_000_000)
    });
    assert!(wishbone.stop().success());
    // Blocks that failed on different outputs are due again in the order
    // their failures came back (docs/wal.md, "Order"); what was emitted
    // once the outputs were back (they reconnect within 50 ms) was sent
    // once, and keeps its order at each server.
    for server in &again {
        let after: Vec<u64> = events(server)
            .iter()
            .filter(|event| event["ingest_ns"].as_u64().unwrap() > restarted_ns + 200_000_000)
            .map(|event| event["id"].as_u64().unwrap())
            .collect();
        let backwards: Vec<_> = after
            .windows(2)
            .filter(|pair| pair[0] >= pair[1])
            .take(10)
            .collect();
        assert!(
            backwards.is_empty(),
            "each server gets what was emitted after the outage in order; backwards steps: {backwards:?} of {}",
            after.len()
        );
    }
    every_id_once_where(&[&a, &b, &c, &again[0], &again[1], &again[2]]);
    let received = stamps(&[&a, &b, &c, &again[0], &again[1], &again[2]]);
    let unique: std::collections::BTreeSet<u64> = received.iter().map(|(id, _)| *id).collect();
    assert_eq!(unique.len(), received.len(), "no duplicates");
    Outage {
        stopped_ns,
        restarted_ns,
        received,
        dropped: wishbone.queue_total("wal.inbox", "dropped_total"),
    }
}

impl Outage {
    fn missing(&self) -> Vec<u64> {
        let highest = self.received.last().map(|(id, _)| *id).unwrap_or(0);
        (0..=highest)
            .filter(|id| {
                self.received
                    .binary_search_by_key(id, |(id, _)| *id)
                    .is_err()
            })
            .collect()
    }

    /// The missing ids, after checking the outage outlasted the buffer and
    /// that exactly the events counted as dropped are missing.
    fn missing_exactly_the_dropped(&self) -> Vec<u64> {
        let missing = self.missing();
        assert!(
            self.dropped > 300,
            "the outage outlasted the buffer: {} dropped",
            self.dropped
        );
        assert_eq!(
            missing.len() as u64,
            self.dropped,
            "exactly the dropped are missing: {:?}",
            runs(&missing)
        );
        missing
    }

    /// Received events emitted while every server was down.
    fn during(&self) -> Vec<u64> {
        let window = self.stopped_ns..self.restarted_ns;
        self.received
            .iter()
            .filter(|(_, ingest)| window.contains(ingest))
            .map(|(id, _)| *id)
            .collect()
    }
}

#[test]
fn with_all_servers_stopped_every_event_arrives_once_they_are_back() {
    let outage = outage("wal-all-down", 1000, "drop_oldest");
    assert_eq!(outage.missing(), Vec::<u64>::new(), "every event arrives");
    assert_eq!(outage.dropped, 0);
    assert!(
        outage.during().len() >= 500,
        "{} events were emitted during the outage",
        outage.during().len()
    );
}

#[test]
fn past_the_retention_limit_the_oldest_are_dropped_and_counted() {
    let outage = outage("wal-drop-oldest", 100, "drop_oldest");
    let missing = outage.missing_exactly_the_dropped();
    // Drops took the oldest waiting events: one long run from the outage's
    // start, and while the backlog drains after it a few more, each the
    // oldest not yet sent; the last event of the outage was kept
    // (drop_newest would have lost it).
    let first_after = outage
        .received
        .iter()
        .filter(|(_, ingest)| *ingest >= outage.restarted_ns)
        .map(|(id, _)| *id)
        .min()
        .unwrap();
    let last_of_outage = first_after - 1;
    let longest = runs(&missing)
        .iter()
        .map(|(first, last)| last - first + 1)
        .max()
        .unwrap_or(0);
    assert!(
        longest * 10 >= outage.dropped * 9,
        "the oldest went first: {:?}",
        runs(&missing)
    );
    assert!(
        !missing.contains(&last_of_outage),
        "the last event of the outage, {last_of_outage}, was kept: {:?}",
        runs(&missing)
    );
}

#[test]
fn past_the_retention_limit_drop_newest_keeps_the_first() {
    let outage = outage("wal-drop-newest", 100, "drop_newest");
    let missing = outage.missing_exactly_the_dropped();
    // The first events of the outage were kept: drops took the newest.
    let first = *outage.during().first().unwrap();
    assert!(
        missing.iter().all(|id| *id > first + 50),
        "the first 50 of the outage were kept: {:?}",
        runs(&missing)
    );
}

/// Consecutive ids as (first, last) ranges, for messages.
fn runs(ids: &[u64]) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for id in ids {
        match runs.last_mut() {
            Some((_, last)) if *last + 1 == *id => *last = *id,
            _ => runs.push((*id, *id)),
        }
    }
    runs
}
