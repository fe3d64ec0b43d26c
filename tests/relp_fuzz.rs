//! The RELP input against random bytes, random and truncated frames, and
//! sessions that stop mid-frame: it never panics, its memory stays bounded,
//! each bad session is closed with a logged reason, and a good session
//! beside them is answered in full.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);

fn frame(txnr: u64, command: &str, data: &[u8]) -> Vec<u8> {
    let mut out = format!("{txnr} {command} {}", data.len()).into_bytes();
    if !data.is_empty() {
        out.push(b' ');
        out.extend_from_slice(data);
    }
    out.push(b'\n');
    out
}

/// One bad session's bytes: an open (or not), then something broken.
fn bad_session(random: &mut Random) -> Vec<u8> {
    let mut bytes = Vec::new();
    if random.below(4) > 0 {
        bytes.extend(frame(1, "open", b"relp_version=0\ncommands=syslog"));
    }
    for txnr in 2..2 + random.below(5) {
        bytes.extend(frame(txnr, "syslog", b"a good one first"));
    }
    match random.below(6) {
        0 => {
            let count = 1 + random.below(2000) as usize;
            bytes.extend(random.bytes(count));
        }
        1 => {
            // A frame cut anywhere: the session stops mid-frame.
            let count = random.below(500) as usize;
            let whole = frame(9, "syslog", &random.bytes(count));
            let cut = random.below(whole.len() as u64) as usize;
            bytes.extend(&whole[..cut]);
        }
        2 => bytes.extend(format!("9 syslog {} ", 1 + random.below(999_999_999)).as_bytes()),
        3 => bytes.extend(frame(9, "syslog", b"no trailer").split_last().unwrap().1),
        4 => {
            let mut damaged = frame(9, "syslog", b"damaged");
            let at = random.below(damaged.len() as u64) as usize;
            damaged[at] = random.below(256) as u8;
            bytes.extend(damaged);
            bytes.extend(random.bytes(10));
        }
        _ => bytes.extend(frame(9, "open", b"")),
    }
    bytes
}

/// Reads one answer: `TXNR rsp LEN DATA\n`, returns (txnr, data).
fn answer(stream: &mut TcpStream) -> (u64, Vec<u8>) {
    let mut header = Vec::new();
    let mut spaces = 0;
    let mut byte = [0u8];
    while spaces < 3 {
        stream.read_exact(&mut byte).expect("an answer");
        if byte[0] == b' ' || (spaces == 2 && byte[0] == b'\n') {
            spaces += 1;
            if byte[0] == b'\n' {
                break;
            }
        }
        header.push(byte[0]);
    }
    let text = String::from_utf8(header).unwrap();
    let fields: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(fields[1], "rsp", "{text}");
    let length: usize = fields[2].parse().unwrap();
    let mut data = vec![0u8; length];
    stream.read_exact(&mut data).unwrap();
    if length > 0 {
        stream.read_exact(&mut byte).unwrap();
        assert_eq!(byte[0], b'\n');
    }
    (fields[0].parse().unwrap(), data)
}

#[test]
fn random_and_broken_frames_close_their_session_and_nothing_else() {
    let dir = scratch_dir("relp-fuzz");
    let relp_port = free_port();
    let bootstrap = format!(
        "modules:\n  input: {{module: wishbone.input.relp, arguments: {{address: 127.0.0.1, port: {relp_port}, max_frame: 65536}}}}\n  \
         output: {{module: wishbone.output.null}}\n\
         routingtable:\n  - input.outbox -> output.inbox\n"
    );
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &["--log-level", "warn"]);
    wait_until(MINUTE, "the input to listen", || {
        TcpStream::connect(("127.0.0.1", relp_port)).is_ok()
    });
    let mut random = Random::from_clock();

    // A good session, open throughout.
    let mut good = TcpStream::connect(("127.0.0.1", relp_port)).unwrap();
    good.set_read_timeout(Some(MINUTE)).unwrap();
    good.write_all(&frame(1, "open", b"relp_version=0\ncommands=syslog"))
        .unwrap();
    let (txnr, offers) = answer(&mut good);
    assert_eq!(txnr, 1);
    assert!(
        offers.starts_with(b"200 OK\nrelp_version=0"),
        "{}",
        String::from_utf8_lossy(&offers)
    );

    const BAD: usize = 300;
    let mut held_open = Vec::new();
    for session in 0..BAD {
        let mut bad = TcpStream::connect(("127.0.0.1", relp_port)).unwrap();
        let _ = bad.write_all(&bad_session(&mut random));
        // Some stop mid-frame and stay connected; the rest hang up.
        if random.below(3) == 0 {
            held_open.push(bad);
        }
        let txnr = 2 + session as u64;
        good.write_all(&frame(txnr, "syslog", format!("good {session}").as_bytes()))
            .unwrap();
        assert_eq!(
            answer(&mut good),
            (txnr, b"200 OK".to_vec()),
            "the good session goes on"
        );
    }
    let peak = peak_rss_kib(wishbone.pid());
    eprintln!("{BAD} bad sessions; peak RSS {peak} KiB");
    assert!(peak < 128 * 1024, "memory bounded: {peak} KiB");
    drop(held_open);
    good.write_all(&frame(BAD as u64 + 2, "close", b""))
        .unwrap();
    assert_eq!(answer(&mut good), (BAD as u64 + 2, Vec::new()));
    let status = wishbone.stop();
    assert!(status.success(), "{status:?}");
    let log = wishbone.output.text();
    assert!(!log.contains("panicked"), "{log}");
    let closed = wishbone.output.count("closing a RELP session");
    assert!(
        closed > BAD / 3,
        "bad sessions closed with a reason: {closed}"
    );
    assert!(log.contains("reason="), "the reason is logged");
}
