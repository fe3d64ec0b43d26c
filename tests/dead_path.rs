//! A dead path must neither spin nor stall: the article's scenario III with
//! output_1's peer down, behind a write-ahead buffer on disk and without
//! one, and a file input whose batches a selector splits between a healthy
//! output and one whose store is down. Every line reaches the healthy
//! peer once, and what the dead path failed is sent again only after a
//! pause, only the failed part, until its peer comes back.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use wishbone_e2e::store::Store;
use wishbone_e2e::*;

const LINES: usize = 10_000;
const MINUTE: Duration = Duration::from_secs(60);
/// How long output_2's peer may take to have every line.
const DEGRADED: Duration = Duration::from_secs(10);

/// Scenario III of the article, its input feeding a write-ahead buffer on
/// disk first when `wal` is given.
fn scenario_3(port_1: u16, port_2: u16, wal: Option<&std::path::Path>) -> String {
    let (buffer, head) = match wal {
        Some(path) => (
            format!(
                "  wal: {{module: wishbone.flow.wal, arguments: {{path: {}, max_elements: 100000, max_bytes: 104857600, read_count: 100}}}}\n",
                path.display()
            ),
            "  - input.outbox -> wal.inbox\n  - wal.outbox -> roundrobin.inbox\n",
        ),
        None => (String::new(), "  - input.outbox -> roundrobin.inbox\n"),
    };
    format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n{buffer}  \
         roundrobin: {{module: wishbone.flow.roundrobin}}\n  \
         funnel: {{module: wishbone.flow.funnel}}\n  \
         output_1: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {port_1}, reconnect_max: 0.2}}}}\n  \
         output_2: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {port_2}, reconnect_max: 0.2, failed: true}}}}\n\
         routingtable:\n{head}  - roundrobin.one -> funnel.one\n  - roundrobin.two -> output_2.inbox\n  \
         - output_2.failed -> funnel.two\n  - funnel.outbox -> output_1.inbox\n"
    )
}

/// How often each numbered line arrived at the sinks.
fn counts(sinks: &[&Sink]) -> BTreeMap<usize, usize> {
    let mut seen = BTreeMap::new();
    for sink in sinks {
        for number in line_numbers(&sink.received()) {
            *seen.entry(number).or_insert(0) += 1;
        }
    }
    seen
}

/// Output_1's peer is down from the start: every line goes to output_2's
/// peer within [`DEGRADED`], with few copies; once output_1's peer is up,
/// nothing is missing and copies stay few.
fn output_1_down(name: &str, with_wal: bool) {
    let dir = scratch_dir(name);
    let wal = dir.join("wal");
    let port_1 = free_port();
    let two = Sink::start(&dir, "two");
    let bootstrap = scenario_3(port_1, two.port, with_wal.then_some(wal.as_path()));
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    let input = wishbone.input_port("input");
    let started = Instant::now();
    send(input, &numbered_lines(LINES));
    wait_until(DEGRADED, "every line at output_2's peer", || {
        counts(&[&two]).len() == LINES
    });
    let degraded = started.elapsed();
    // A moment more: a storm would show now.
    std::thread::sleep(Duration::from_millis(500));
    let at_two = two.line_count();
    assert!(
        at_two <= LINES + LINES / 20,
        "{at_two} lines at output_2's peer for {LINES} sent: more than 5% copies\n{}",
        wishbone.output.text()
    );
    let one = Sink::start_on(&dir, "one", port_1, &[]);
    wishbone
        .output
        .wait_for("connected module=output_1", MINUTE);
    let status = wishbone.stop();
    assert!(
        status.success(),
        "exit {status:?}\n{}",
        wishbone.output.text()
    );
    let seen = counts(&[&one, &two]);
    assert_eq!(seen.len(), LINES, "every line delivered");
    let total: usize = seen.values().sum();
    assert!(
        total <= LINES + LINES / 10,
        "{total} lines in all for {LINES} sent: more than 10% copies"
    );
    println!(
        "{name}: all {LINES} lines at output_2's peer after {degraded:?}, {at_two} lines there; {} at output_1's peer once up; {total} in all",
        one.line_count()
    );
}

#[test]
fn behind_a_wal_on_disk_a_dead_output_1_sends_everything_to_output_2_once() {
    output_1_down("dead-one-wal", true);
}

#[test]
fn without_a_wal_a_dead_output_1_does_not_stall_output_2() {
    output_1_down("dead-one", false);
}

#[test]
fn behind_a_wal_a_dead_output_2_fails_over_to_output_1() {
    let dir = scratch_dir("dead-two-wal");
    let wal = dir.join("wal");
    let one = Sink::start(&dir, "one");
    let port_2 = free_port();
    let mut wishbone = Wishbone::start(&dir, &scenario_3(one.port, port_2, Some(&wal)), &[]);
    send(wishbone.input_port("input"), &numbered_lines(LINES));
    wait_until(DEGRADED, "every line at output_1's peer", || {
        counts(&[&one]).len() == LINES
    });
    let status = wishbone.stop();
    assert!(
        status.success(),
        "exit {status:?}\n{}",
        wishbone.output.text()
    );
    assert!(one.line_count() <= LINES + LINES / 20, "few copies");
}

/// A file input's batches split by a selector: errors to a tcp output,
/// the rest to an HTTP output whose store is down. The tcp peer gets each
/// error line once; the rest is sent again after growing pauses and
/// reaches the store once it is up.
#[test]
fn a_file_batch_split_between_a_healthy_and_a_dead_output_resends_only_the_dead_part() {
    let dir = scratch_dir("dead-http-part");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let lines: String = (0..100)
        .map(|n| match n % 10 {
            0 => format!("{{\"n\":{n},\"level\":\"error\"}}\n"),
            _ => format!("{{\"n\":{n},\"level\":\"info\"}}\n"),
        })
        .collect();
    std::fs::write(logs.join("app.log"), &lines).unwrap();
    let tcp = Sink::start(&dir, "errors");
    let store_port = free_port();
    let bootstrap = format!(
        "modules:\n  \
         app: {{module: wishbone.input.file, arguments: {{paths: [\"{logs}/*.log\"], checkpoints: {dir}}}}}\n  \
         select:\n    module: wishbone.flow.queueselect\n    arguments:\n      \
         rules: [{{queue: errors, condition: '.level == \"error\"'}}]\n  \
         errors: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {tcp}}}}}\n  \
         store: {{module: wishbone.output.http, arguments: {{url: \"http://127.0.0.1:{store_port}/\", reconnect_max: 0.2}}}}\n\
         routingtable:\n  - app.outbox -> select.inbox\n  - select.errors -> errors.inbox\n  - select.nomatch -> store.inbox\n",
        logs = logs.display(),
        dir = dir.display(),
        tcp = tcp.port,
    );
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    tcp.wait_for_lines(10, MINUTE);
    // Three seconds of the store being down: pauses of 0.1, 0.2, 0.4,
    // 0.8 and then 1 s allow a handful of resends, never a loop.
    std::thread::sleep(Duration::from_secs(3));
    let errors = counts_of(&tcp.received());
    assert_eq!(errors.len(), 10, "the ten error lines");
    assert!(
        errors.values().all(|count| *count == 1),
        "each error line once at the tcp peer: {errors:?}"
    );
    wishbone.output.wait_for("lines failed downstream", MINUTE);
    let store = Store::start_on(store_port, |_, _| None);
    wait_until(MINUTE, "the 90 other lines at the store", || {
        store.seen.lock().unwrap().accepted.len() >= 90
    });
    wishbone
        .output
        .wait_for("lines failed downstream are delivered again", MINUTE);
    let status = wishbone.stop();
    assert!(
        status.success(),
        "exit {status:?}\n{}",
        wishbone.output.text()
    );
    let totals = wishbone.output.wait_for("input totals module=app", MINUTE);
    let resent: usize = field(&totals, "resent").unwrap().parse().unwrap();
    assert!(
        resent.is_multiple_of(90) && (90..=90 * 10).contains(&resent),
        "only the 90 lines of the dead path are sent again, a handful of times: {resent}"
    );
    assert_eq!(store.seen.lock().unwrap().accepted.len(), 90);
    assert_eq!(counts_of(&tcp.received()).len(), 10);
    assert_eq!(tcp.line_count(), 10, "still each error line once");
    println!("resent {resent} lines while the store was down");
}

/// How often each line arrived.
fn counts_of(data: &[u8]) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for line in data
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.is_empty())
    {
        let line = String::from_utf8_lossy(line).into_owned();
        *seen.entry(line).or_insert(0) += 1;
    }
    seen
}
