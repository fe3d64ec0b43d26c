//! Scenario III with websocket outputs: output_2's `failed` queue feeds a
//! funnel in front of output_1, and output_2's server is SIGKILLed
//! mid-stream. With the server's unread window empty at the kill (wishbone
//! is paused until the server has read everything it was sent), no line
//! may be missing: what output_2 had not delivered goes through `failed`.

use std::time::Duration;

use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);
const LINES: usize = 200_000;

fn bootstrap(port_1: u16, port_2: u16) -> String {
    format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         roundrobin: {{module: wishbone.flow.roundrobin}}\n  \
         funnel: {{module: wishbone.flow.funnel}}\n  \
         output_1: {{module: wishbone.output.websocket, arguments: {{url: \"ws://127.0.0.1:{port_1}/\", reconnect_max: 0.2}}}}\n  \
         output_2: {{module: wishbone.output.websocket, arguments: {{url: \"ws://127.0.0.1:{port_2}/\", reconnect_max: 0.2, failed: true}}}}\n\
         routingtable:\n  - input.outbox -> roundrobin.inbox\n  - roundrobin.one -> funnel.one\n  - roundrobin.two -> output_2.inbox\n  \
         - output_2.failed -> funnel.two\n  - funnel.outbox -> output_1.inbox\n"
    )
}

#[test]
fn a_websocket_server_killed_mid_stream_fails_over_and_loses_nothing() {
    let mut runs_with_failover = 0;
    for run in 0..3 {
        let dir = scratch_dir(&format!("ws-failover-{run}"));
        let one = Sink::start_websocket(&dir, "one", 0);
        let mut two = Sink::start_websocket(&dir, "two", 0);
        let mut wishbone = Wishbone::start(&dir, &bootstrap(one.port, two.port), &[]);
        let input = wishbone.input_port("input");
        let data = numbered_lines(LINES);
        let sender = {
            let data = data.clone();
            std::thread::spawn(move || send(input, &data))
        };
        let kill_after = 20_000 + run * 15_000;
        wait_until(MINUTE, "the second server to get its first lines", || {
            two.line_count() >= kill_after
        });
        wishbone.signal(libc::SIGSTOP);
        wait_until(MINUTE, "the second server to read everything", || {
            unread_bytes(two.port) == 0
        });
        std::thread::sleep(Duration::from_millis(50)); // its last read reaches the file
        two.kill();
        wishbone.signal(libc::SIGCONT);
        sender.join().unwrap();
        let mut seen = vec![0u32; LINES];
        wait_until(MINUTE, "every line at one server or the other", || {
            seen.iter_mut().for_each(|count| *count = 0);
            for number in line_numbers(&one.received()).chain(line_numbers(&two.received())) {
                seen[number] += 1;
            }
            seen.iter().all(|count| *count > 0)
        });
        let status = wishbone.stop();
        assert!(status.success(), "run {run}: {status:?}");
        let totals = wishbone
            .output
            .wait_for("output totals module=output_2", MINUTE);
        let count = |name: &str| -> u64 { field(&totals, name).unwrap().parse().unwrap() };
        let (delivered, failed_over) = (count("delivered"), count("failed_over"));
        let dealt = wishbone.queue_total("output_2.inbox", "in_total");
        let second = line_numbers(&two.received()).count();
        assert!(
            second < LINES / 2,
            "run {run}: the kill came after the stream"
        );
        assert_eq!(
            delivered + failed_over,
            dealt,
            "run {run}: each event dealt to output_2 was delivered or went through failed"
        );
        // Whether output_2 still held events at the kill depends on timing:
        // a round robin that learns first that it is down deals it nothing more.
        runs_with_failover += usize::from(failed_over > 0);
        let duplicates: u32 = seen.iter().map(|count| count - 1).sum();
        eprintln!(
            "run {run}: killed after {second} lines, {failed_over} failed over, {duplicates} duplicates, 0 missing"
        );
    }
    assert!(
        runs_with_failover > 0,
        "output_2's share went through failed in some run"
    );
}
