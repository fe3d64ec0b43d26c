//! `wishbone.input.http`: what each answer means, checked against what
//! reached the next peer; and a chain `wishbone.output.http` →
//! `wishbone.input.http` → tcp whose middle process is SIGKILLed and
//! restarted mid-stream, losing nothing.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use wishbone_e2e::http::request;
use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);

/// An http input on `port` (0: any) before a tcp output to `sink`, with
/// the output's extra arguments.
fn middle_bootstrap(port: u16, sink: u16, output: &str) -> String {
    format!(
        "modules:\n  input: {{module: wishbone.input.http, arguments: {{address: 127.0.0.1, port: {port}, path: /events, max_body_bytes: 100000}}}}\n  \
         output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {sink}, reconnect_initial: 0.05, reconnect_max: 0.2{output}}}}}\n\
         routingtable:\n  - input.outbox -> output.inbox\n"
    )
}

fn post(port: u16, body: &str) -> (u16, Option<String>, String) {
    let answer = request(port, "POST", "/events", Some(body)).expect("an answer");
    let retry = answer.header("retry-after").map(String::from);
    (answer.status, retry, answer.text())
}

#[test]
fn answers_say_what_reached_the_next_peer() {
    let dir = scratch_dir("http-input-answers");
    let sink = Sink::start(&dir, "sink");
    let mut wishbone = Wishbone::start(&dir, &middle_bootstrap(0, sink.port, ""), &[]);
    let port = wishbone.input_port("input");
    let (status, _, text) = post(port, "one\r\ntwo\n\nthree");
    assert_eq!((status, text.as_str()), (200, "3 events\n"));
    // 200 means the peer's kernel has them; its program writes them out a
    // moment later.
    sink.wait_for_lines(3, MINUTE);
    assert_eq!(
        sink.received(),
        b"one\ntwo\nthree\n",
        "200 after the peer has them"
    );
    let wrong_path = request(port, "POST", "/other", Some("x\n")).unwrap();
    assert_eq!(wrong_path.status, 404);
    let wrong_method = request(port, "GET", "/events", None).unwrap();
    assert_eq!(wrong_method.status, 405);
    let large = "y".repeat(100_001);
    assert_eq!(post(port, &large).0, 413);
    assert_eq!(post(port, "").0, 200, "an empty body holds no event");
    // A client that sends half a request and stops gets the connection closed
    // after frame_timeout; the others are served meanwhile.
    let mut slow = TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.write_all(b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        .unwrap();
    assert_eq!(post(port, "four\n").0, 200);
    sink.wait_for_lines(4, MINUTE);
    assert!(wishbone.stop().success());
    assert_eq!(sink.received(), b"one\ntwo\nthree\nfour\n", "nothing else");
    let log = wishbone.output.text();
    let totals = log
        .lines()
        .find(|line| line.contains("input totals"))
        .expect("input totals");
    for expected in ["events=4", "accepted=4", "too_large=1", "bad=2"] {
        assert!(totals.contains(expected), "{expected} in {totals}");
    }
}

#[test]
fn events_that_cannot_be_delivered_are_answered_503_and_sent_again_later() {
    let dir = scratch_dir("http-input-refused");
    let sink_port = free_port();
    let mut wishbone = Wishbone::start(&dir, &middle_bootstrap(0, sink_port, ""), &[]);
    let port = wishbone.input_port("input");
    // Nothing listens at the output's peer: the events come back failed.
    let (status, retry, text) = post(port, "first try\n");
    assert_eq!((status, retry.as_deref()), (503, Some("1")), "{text}");
    let sink = Sink::start_on(&dir, "sink", sink_port, &[]);
    let mut attempts = 1;
    loop {
        attempts += 1;
        let (status, _, text) = post(port, "second try\n");
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "{text}");
        assert!(attempts < 60, "the peer is back: 200 at last");
    }
    sink.wait_for_lines(1, MINUTE);
    assert!(wishbone.stop().success());
    assert_eq!(
        sink.received(),
        b"second try\n",
        "a refused event is not delivered behind the client's back"
    );
    let totals = wishbone.output.text();
    assert!(
        totals.contains(&format!("refused={}", attempts - 1)),
        "{totals}"
    );
}

#[test]
fn http_out_to_http_in_with_the_middle_killed_every_line_arrives() {
    let dir = scratch_dir("http-chain");
    let (front_dir, middle_dir) = (dir.join("front"), dir.join("middle"));
    std::fs::create_dir_all(&front_dir).unwrap();
    std::fs::create_dir_all(&middle_dir).unwrap();
    let sink = Sink::start(&dir, "sink");
    let middle_port = free_port();
    let middle = middle_bootstrap(middle_port, sink.port, "");
    let mut middle_process = Wishbone::start(&middle_dir, &middle, &[]);
    middle_process.input_port("input");
    let front = format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         http: {{module: wishbone.output.http, arguments: {{url: \"http://127.0.0.1:{middle_port}/events\", batch_max_events: 500, timeout: 2, reconnect_initial: 0.05, reconnect_max: 0.2}}}}\n\
         routingtable:\n  - input.outbox -> http.inbox\n"
    );
    let mut front_process = Wishbone::start(&front_dir, &front, &[]);
    const LINES: usize = 200_000;
    let data = numbered_lines(LINES);
    let input = front_process.input_port("input");
    let sender = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", input)).unwrap();
        for chunk in data.chunks(data.len() / 20 + 1) {
            stream.write_all(chunk).unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    wait_until(MINUTE, "lines through the middle", || {
        sink.line_count() > LINES / 4
    });
    middle_process.signal(libc::SIGKILL);
    middle_process.wait(MINUTE);
    std::thread::sleep(Duration::from_millis(500));
    middle_process = Wishbone::start(&middle_dir, &middle, &[]);
    middle_process.input_port("input");
    sender.join().unwrap();
    let numbers = || {
        let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
        for number in line_numbers(&sink.received()) {
            *counts.entry(number).or_default() += 1;
        }
        counts
    };
    wait_until(MINUTE, "every line at the sink", || {
        numbers().len() >= LINES
    });
    assert!(front_process.stop().success());
    assert!(middle_process.stop().success());
    let front_log = front_process.output.text();
    assert!(
        front_log.contains("peer unavailable"),
        "the kill was seen by the sender: {front_log}"
    );
    let counts = numbers();
    assert_eq!(counts.len(), LINES);
    assert!(counts.keys().all(|number| *number < LINES));
    let duplicates: usize = counts.values().map(|times| times - 1).sum();
    eprintln!("{LINES} lines through a middle killed once: {duplicates} arrived twice");
}
