//! The tcp input with octet counting, and syslog decoding behind it, against
//! random bytes, frames cut anywhere, huge, negative and malformed lengths,
//! and well-framed garbage: nothing panics, memory stays bounded, malformed
//! lengths close their connection with a logged reason, garbage goes to
//! `failed` counted, and a good client beside them loses nothing.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);

fn framed(message: &[u8]) -> Vec<u8> {
    let mut frame = format!("{} ", message.len()).into_bytes();
    frame.extend_from_slice(message);
    frame
}

fn good_message(n: usize) -> Vec<u8> {
    format!("<131>1 2026-12-04T10:00:00Z host app {n} ID [x@1 n=\"{n}\"] good {n}").into_bytes()
}

/// One bad client's bytes.
fn bad_session(random: &mut Random) -> Vec<u8> {
    let mut bytes = framed(&good_message(999_999));
    match random.below(7) {
        0 => {
            let count = 1 + random.below(3000) as usize;
            bytes.extend(random.bytes(count));
        }
        1 => {
            let count = random.below(500) as usize;
            let whole = framed(&random.bytes(count));
            let cut = random.below(whole.len() as u64) as usize;
            bytes.extend(&whole[..cut]);
        }
        2 => bytes.extend(format!("{} ", 1_000_000 + random.below(3_000_000_000)).as_bytes()),
        3 => bytes.extend(format!("-{} hello", random.below(1000)).as_bytes()),
        4 => bytes.extend(b"99999999999999999999 x"),
        5 => {
            for _ in 0..random.below(20) {
                let count = random.below(300) as usize;
                bytes.extend(framed(&random.bytes(count)));
            }
        }
        _ => bytes.extend(b"<13>1 a newline-framed message\n"),
    }
    bytes
}

#[test]
fn broken_frames_and_garbage_cost_their_own_connection_and_nothing_else() {
    let dir = scratch_dir("syslog-fuzz");
    let sink = Sink::start(&dir, "good");
    let port = free_port();
    let bootstrap = format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: {port}, framing: octet_counted, max_line_length: 65536}}}}\n  \
         syslog: {{module: wishbone.process.decode, arguments: {{format: syslog}}}}\n  \
         good: {{module: wishbone.flow.filter, arguments: {{condition: '.appname == \"app\" and .severity == 3'}}}}\n  \
         output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {}, reconnect_max: 0.2}}}}\n\
         routingtable:\n  - input.outbox -> syslog.inbox\n  - syslog.outbox -> good.inbox\n  - good.outbox -> output.inbox\n",
        sink.port
    );
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &["--log-level", "warn"]);
    wait_until(MINUTE, "the input to listen", || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let mut random = Random::from_clock();
    let mut good = TcpStream::connect(("127.0.0.1", port)).unwrap();
    const BAD: usize = 300;
    let mut held_open = Vec::new();
    let mut sent = 0;
    for _ in 0..BAD {
        let mut bad = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let _ = bad.write_all(&bad_session(&mut random));
        if random.below(3) == 0 {
            held_open.push(bad);
        }
        for _ in 0..10 {
            good.write_all(&framed(&good_message(sent))).unwrap();
            sent += 1;
        }
    }
    drop(good);
    // Each bad client's first frame is good too.
    sink.wait_for_lines(sent, MINUTE);
    let peak = peak_rss_kib(wishbone.pid());
    eprintln!("{BAD} bad clients; peak RSS {peak} KiB");
    assert!(peak < 128 * 1024, "memory bounded: {peak} KiB");
    drop(held_open);
    std::thread::sleep(Duration::from_millis(300));
    assert!(wishbone.stop().success());
    let received = String::from_utf8(sink.received()).unwrap();
    let good_ones: Vec<u64> = received
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("JSON"))
        .filter_map(|event| event["procid"].as_str()?.parse().ok())
        .filter(|n| *n != 999_999)
        .collect();
    assert_eq!(
        good_ones,
        (0..sent as u64).collect::<Vec<_>>(),
        "the good client's messages, in order"
    );
    let log = wishbone.output.text();
    assert!(!log.contains("panicked"), "{log}");
    assert!(
        wishbone.output.count("malformed frame") > BAD / 10,
        "malformed lengths close their client"
    );
    assert!(log.contains("reason="), "with the reason");
}
