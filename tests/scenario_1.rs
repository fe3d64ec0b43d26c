//! Scenario I of the article: a TCP input wired to a TCP output; what the
//! backend receives hashes to what was sent, through outages and stops.

use std::time::Duration;

use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);

fn proxy_delivers_unchanged(test: &str, data: &[u8]) {
    let dir = scratch_dir(test);
    let sink = Sink::start(&dir, "backend");
    let mut wishbone = Wishbone::start(&dir, &proxy_bootstrap(sink.port), &[]);
    send(wishbone.input_port("input"), data);
    let lines = data.iter().filter(|byte| **byte == b'\n').count();
    sink.wait_for_lines(lines, MINUTE);
    assert_eq!(sha256(&sink.received()), sha256(data));
    assert!(wishbone.stop().success());
    assert_eq!(
        wishbone.queue_total("input.outbox", "in_total"),
        lines as u64
    );
    assert_eq!(
        wishbone.queue_total("output.inbox", "out_total"),
        lines as u64
    );
}

#[test]
fn ten_thousand_lines_arrive_unchanged() {
    proxy_delivers_unchanged("ten-thousand", &b"hello\n".repeat(10_000));
}

#[test]
fn a_million_lines_arrive_unchanged() {
    proxy_delivers_unchanged("million", &numbered_lines(1_000_000));
}

#[test]
fn lines_change_delimiter_between_input_and_output() {
    let dir = scratch_dir("delimiters");
    let sink = Sink::start(&dir, "backend");
    let bootstrap = proxy_bootstrap(sink.port)
        .replace("port: 0}", "port: 0, delimiter: \"\\r\\n\"}")
        .replace(
            "reconnect_max: 0.2}",
            "reconnect_max: 0.2, delimiter: \"|\\n\"}",
        );
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    let lines = numbered_lines(50_000);
    let crlf = String::from_utf8(lines.clone())
        .unwrap()
        .replace('\n', "\r\n");
    send(wishbone.input_port("input"), crlf.as_bytes());
    sink.wait_for_lines(50_000, MINUTE);
    assert!(wishbone.stop().success());
    let expected = String::from_utf8(lines).unwrap().replace('\n', "|\n");
    assert_eq!(sink.received(), expected.as_bytes());
}

#[test]
fn stdout_prints_what_a_tcp_input_read_with_its_own_delimiter() {
    let dir = scratch_dir("stdout");
    let bootstrap = "modules:\n  input: {module: wishbone.input.tcp, arguments: {address: 127.0.0.1, port: 0}}\n  \
                     stdout: {module: wishbone.output.stdout, arguments: {delimiter: \" <end>\\n\"}}\n\
                     routingtable:\n  - input.outbox -> stdout.inbox\n";
    let mut wishbone = Wishbone::start(&dir, bootstrap, &[]);
    send(
        wishbone.input_port("input"),
        b"first line\nsecond line\nlast",
    );
    wishbone.output.wait_for("last <end>", MINUTE);
    assert!(wishbone.stop().success());
    let printed = wishbone.output.text();
    let first = printed
        .find("first line <end>")
        .expect("first line printed");
    let second = printed
        .find("second line <end>")
        .expect("second line printed");
    assert!(first < second, "in order: {printed}");
}

#[test]
fn acknowledged_lines_go_on_to_the_success_queue_in_order() {
    let dir = scratch_dir("success");
    let backend = Sink::start(&dir, "backend");
    let confirmed = Sink::start(&dir, "confirmed");
    let bootstrap = proxy_bootstrap(backend.port)
        .replace("reconnect_max: 0.2}", "reconnect_max: 0.2, success: true}")
        .replace(
            "routingtable:\n",
            &format!(
                "  confirmed:\n    module: wishbone.output.tcp\n    arguments: {{host: 127.0.0.1, port: {}}}\n\
                 routingtable:\n  - output.success -> confirmed.inbox\n",
                confirmed.port
            ),
        );
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    let data = numbered_lines(100_000);
    send(wishbone.input_port("input"), &data);
    confirmed.wait_for_lines(100_000, MINUTE);
    assert!(wishbone.stop().success());
    assert_eq!(backend.received(), data);
    assert_eq!(
        confirmed.received(),
        data,
        "each line once, after the backend had it"
    );
}

#[test]
fn a_backend_that_starts_late_still_gets_every_line_once() {
    let dir = scratch_dir("late-backend");
    let port = free_port();
    let mut wishbone = Wishbone::start(&dir, &proxy_bootstrap(port), &[]);
    let data = numbered_lines(20_000);
    send(wishbone.input_port("input"), &data);
    wishbone.output.wait_for("cannot connect", MINUTE);
    std::thread::sleep(Duration::from_secs(2)); // the scenario: the backend comes up two seconds later
    let sink = Sink::start_on(&dir, "backend", port, &[]);
    sink.wait_for_lines(20_000, MINUTE);
    assert!(wishbone.stop().success());
    assert_eq!(sink.received(), data, "every line, once, in order");
}

#[test]
fn a_backend_killed_and_restarted_between_two_sends_gets_the_second_send() {
    let dir = scratch_dir("killed-backend");
    let mut first = Sink::start(&dir, "first");
    let mut wishbone = Wishbone::start(&dir, &proxy_bootstrap(first.port), &[]);
    let input = wishbone.input_port("input");
    let data = numbered_lines(20_000);
    let (before, after) = data.split_at(data.len() / 2);
    send(input, before);
    first.wait_for_lines(10_000, MINUTE);
    first.kill();
    let second = Sink::start_on(&dir, "second", first.port, &[]);
    send(input, after);
    second.wait_for_lines(10_000, MINUTE);
    assert!(wishbone.stop().success());
    assert_eq!(first.received(), before);
    assert_eq!(second.received(), after);
}

#[test]
fn sigterm_while_streaming_loses_nothing_that_was_read() {
    stop_while_streaming(libc::SIGTERM, "sigterm");
}

/// SIGHUP reloads the file: unchanged, every module runs on, the stream is
/// not broken, and a stop afterwards loses nothing either.
#[test]
fn sighup_while_streaming_reloads_and_the_stream_goes_on() {
    let wishbone = stop_while_streaming(libc::SIGTERM, "sighup");
    wishbone
        .output
        .wait_for("signal received signal=\"SIGHUP\"", MINUTE);
    wishbone
        .output
        .wait_for("reloaded: kept 2, started 0, replaced 0, stopped 0", MINUTE);
}

fn stop_while_streaming(signal: i32, name: &str) -> Wishbone {
    let dir = scratch_dir(name);
    let sink = Sink::start(&dir, "backend");
    let mut wishbone = Wishbone::start(&dir, &proxy_bootstrap(sink.port), &[]);
    let input = wishbone.input_port("input");
    let data = numbered_lines(1_000_000);
    let sender = {
        let data = data.clone();
        std::thread::spawn(move || {
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", input)).unwrap();
            let _ = std::io::Write::write_all(&mut stream, &data); // cut short by the stop
        })
    };
    sink.wait_for_lines(100_000, MINUTE);
    if name == "sighup" {
        wishbone.signal(libc::SIGHUP);
        wishbone.output.wait_for("reloaded:", MINUTE);
        sink.wait_for_lines((sink.line_count() + 100_000).min(1_000_000), MINUTE);
    }
    wishbone.signal(signal);
    let status = wishbone.wait(MINUTE);
    let _ = sender.join();
    assert!(status.success(), "exit status {status:?}");
    let read = wishbone.queue_total("input.outbox", "in_total") as usize;
    let received = sink.received();
    let lines = received.iter().filter(|byte| **byte == b'\n').count();
    assert_eq!(lines, read, "every line read reached the backend");
    assert!(lines >= 100_000);
    assert_eq!(
        &received[..],
        &data[..received.len()],
        "in order, unchanged"
    );
    wishbone
}
