//! Clients that take a slot and do nothing with it (connect and stay
//! silent, or send a byte a second and never finish a frame) against the
//! tcp input, the RELP input and the `--graph` page: a good client is
//! served within seconds while they come back as soon as they are closed,
//! a quiet RELP sender that completes its frames keeps its session, and
//! memory comes back after thousands of sessions closed. Real processes on
//! loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);
/// Slots of the inputs under test.
const SLOTS: usize = 20;
/// A good client must be served within this, however the slots churn.
const SERVED_WITHIN: Duration = Duration::from_secs(4);

/// How the bad clients behave.
#[derive(Clone, Copy)]
enum Bad {
    /// Connect, send nothing.
    Silent,
    /// Send one byte every 300 ms and never finish a frame.
    Slow,
}

/// `count` bad clients on `port`, each coming back at once when closed,
/// until the returned flag is cleared.
fn bad_clients(port: u16, count: usize, bad: Bad) -> (Arc<AtomicBool>, Vec<JoinHandle<usize>>) {
    let running = Arc::new(AtomicBool::new(true));
    let threads = (0..count)
        .map(|_| {
            let running = running.clone();
            std::thread::spawn(move || {
                let mut connections = 0;
                while running.load(Ordering::Relaxed) {
                    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    };
                    connections += 1;
                    stream
                        .set_read_timeout(Some(Duration::from_millis(300)))
                        .unwrap();
                    // Until the server closes it (a read of 0 or an error
                    // other than the timeout), or the test ends.
                    while running.load(Ordering::Relaxed) {
                        if let Bad::Slow = bad
                            && stream.write_all(b"x").is_err()
                        {
                            break;
                        }
                        let mut byte = [0u8; 64];
                        match stream.read(&mut byte) {
                            Ok(0) => break,
                            Ok(_) => {}
                            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                            Err(_) => break,
                        }
                    }
                }
                connections
            })
        })
        .collect();
    (running, threads)
}

fn stop_bad_clients((running, threads): (Arc<AtomicBool>, Vec<JoinHandle<usize>>)) -> usize {
    running.store(false, Ordering::Relaxed);
    threads
        .into_iter()
        .map(|thread| thread.join().unwrap())
        .sum()
}

/// A total from the input's totals line at exit.
fn input_total(wishbone: &Wishbone, name: &str) -> u64 {
    let line = wishbone.output.wait_for("input totals", MINUTE);
    field(&line, name).unwrap().parse().unwrap()
}

#[test]
fn a_good_tcp_client_is_served_while_slow_and_silent_ones_take_every_slot() {
    let dir = scratch_dir("idle-tcp");
    let sink = Sink::start(&dir, "backend");
    let bootstrap = format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0, max_connections: {SLOTS}, frame_timeout: 3}}}}\n  \
         output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {}}}}}\n\
         routingtable:\n  - input.outbox -> output.inbox\n",
        sink.port
    );
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    let port = wishbone.input_port("input");
    // Alone, a client that never finishes its line is closed after
    // frame_timeout.
    let mut lone = TcpStream::connect(("127.0.0.1", port)).unwrap();
    lone.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let connected = Instant::now();
    let closed = loop {
        if lone.write_all(b"x").is_err() || matches!(lone.read(&mut [0u8; 8]), Ok(0)) {
            break connected.elapsed();
        }
        assert!(connected.elapsed() < MINUTE, "never closed");
    };
    eprintln!("a client sending a byte every 200 ms was closed after {closed:?}");
    assert!(closed >= Duration::from_secs(3) && closed < Duration::from_secs(6));
    let slow = bad_clients(port, SLOTS / 2, Bad::Slow);
    let silent = bad_clients(port, SLOTS, Bad::Silent);
    std::thread::sleep(Duration::from_secs(2));
    for round in 0..3 {
        let asked = Instant::now();
        send(port, format!("good {round}\n").as_bytes());
        sink.wait_for_lines(round + 1, MINUTE);
        let took = asked.elapsed();
        eprintln!("good client {round} served in {took:?}");
        assert!(took < SERVED_WITHIN, "round {round}: {took:?}");
    }
    let connections = stop_bad_clients(slow) + stop_bad_clients(silent);
    assert!(wishbone.stop().success());
    // (A slow client's unfinished line is delivered when the client itself
    // hangs up, as any client's last line is.)
    let received = sink.received();
    let good: Vec<&[u8]> = received
        .split(|b| *b == b'\n')
        .filter(|line| line.starts_with(b"good"))
        .collect();
    assert_eq!(good, [&b"good 0"[..], b"good 1", b"good 2"]);
    let (evicted, timed_out) = (
        input_total(&wishbone, "evicted"),
        input_total(&wishbone, "timed_out"),
    );
    eprintln!("{connections} bad connections; {evicted} evicted, {timed_out} timed out");
    assert!(evicted > 0 && connections > SLOTS + SLOTS / 2);
    assert_eq!(timed_out, 1, "the lone one");
}

fn relp_frame(txnr: usize, command: &str, data: &str) -> Vec<u8> {
    format!("{txnr} {command} {} {data}\n", data.len()).into_bytes()
}

/// A RELP session that opened; its answers are read a line at a time.
struct Relp {
    stream: TcpStream,
    answers: BufReader<TcpStream>,
    txnr: usize,
}

impl Relp {
    fn open(port: u16) -> Relp {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(MINUTE)).unwrap();
        let mut relp = Relp {
            answers: BufReader::new(stream.try_clone().unwrap()),
            stream,
            txnr: 1,
        };
        relp.stream
            .write_all(&relp_frame(1, "open", "relp_version=0\ncommands=syslog"))
            .unwrap();
        let mut line = String::new();
        while !line.starts_with("commands=") {
            line.clear();
            relp.answers.read_line(&mut line).unwrap();
        }
        relp
    }

    /// Sends one syslog frame and reads its answer.
    fn syslog(&mut self, message: &str) -> String {
        self.txnr += 1;
        self.stream
            .write_all(&relp_frame(self.txnr, "syslog", message))
            .unwrap();
        let mut line = String::new();
        self.answers.read_line(&mut line).unwrap();
        line
    }
}

#[test]
fn a_quiet_relp_sender_keeps_its_session_and_a_good_one_gets_in_while_idle_ones_churn() {
    let dir = scratch_dir("idle-relp");
    let relp_port = free_port();
    let bootstrap = format!(
        "modules:\n  input: {{module: wishbone.input.relp, arguments: {{address: 127.0.0.1, port: {relp_port}, max_connections: {SLOTS}, frame_timeout: 3}}}}\n  \
         output: {{module: wishbone.output.null}}\n\
         routingtable:\n  - input.outbox -> output.inbox\n"
    );
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    wait_until(MINUTE, "the input to listen", || {
        TcpStream::connect(("127.0.0.1", relp_port)).is_ok()
    });
    // Like an rsyslog with little to say: a frame now and then, whole.
    let mut quiet = Relp::open(relp_port);
    assert_eq!(quiet.syslog("first"), "2 rsp 6 200 OK\n");
    let slow = bad_clients(relp_port, SLOTS / 2, Bad::Slow);
    let silent = bad_clients(relp_port, SLOTS, Bad::Silent);
    std::thread::sleep(Duration::from_secs(2));
    for round in 0..3 {
        let asked = Instant::now();
        let mut good = Relp::open(relp_port);
        assert_eq!(good.syslog(&format!("good {round}")), "2 rsp 6 200 OK\n");
        let took = asked.elapsed();
        eprintln!("good session {round} served in {took:?}");
        assert!(took < SERVED_WITHIN, "round {round}: {took:?}");
        std::thread::sleep(Duration::from_millis(1500));
    }
    assert_eq!(
        quiet.syslog("still here"),
        "3 rsp 6 200 OK\n",
        "the quiet session was kept"
    );
    stop_bad_clients(slow);
    stop_bad_clients(silent);
    assert!(wishbone.stop().success());
    assert!(input_total(&wishbone, "evicted") > 0);
}

#[test]
fn the_graph_page_answers_while_clients_hold_every_connection() {
    let dir = scratch_dir("idle-graph");
    let bootstrap = "modules:\n  generator: {module: wishbone.input.generator, arguments: {interval: 1}}\n  output: {module: wishbone.output.null}\nroutingtable:\n  - generator.outbox -> output.inbox\n";
    let mut wishbone = Wishbone::start(&dir, bootstrap, &["--graph", "127.0.0.1:0"]);
    let port = wishbone.logged_port("graph page");
    let silent = bad_clients(port, 64, Bad::Silent);
    let slow = bad_clients(port, 64, Bad::Slow);
    std::thread::sleep(Duration::from_secs(2));
    for round in 0..2 {
        let asked = Instant::now();
        let answer = wishbone_e2e::http::get(port, "/api/pipeline");
        let took = asked.elapsed();
        eprintln!("page answered in {took:?}");
        assert!(answer.json()["modules"].is_array() || answer.json().is_object());
        assert!(took < Duration::from_secs(8), "round {round}: {took:?}");
    }
    stop_bad_clients(silent);
    stop_bad_clients(slow);
    assert!(wishbone.stop().success());
    assert!(
        wishbone
            .output
            .text()
            .contains("sent no whole request in time"),
        "closed and counted"
    );
}

/// The resident memory of process `pid` now, in KiB (`VmRSS`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

#[test]
fn memory_comes_back_after_waves_of_relp_sessions_close() {
    const WAVES: usize = 6;
    const SESSIONS: usize = 3_000;
    let dir = scratch_dir("idle-relp-memory");
    let relp_port = free_port();
    let bootstrap = format!(
        "modules:\n  input: {{module: wishbone.input.relp, arguments: {{address: 127.0.0.1, port: {relp_port}}}}}\n  \
         output: {{module: wishbone.output.null}}\n\
         routingtable:\n  - input.outbox -> output.inbox\n"
    );
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &["--log-level", "warn"]);
    wait_until(MINUTE, "the input to listen", || {
        TcpStream::connect(("127.0.0.1", relp_port)).is_ok()
    });
    let before = rss_kib(wishbone.pid());
    let mut after = Vec::new();
    for wave in 0..WAVES {
        // Every session opened and held, each with one frame answered,
        // then all closed at once.
        let sessions: Vec<Relp> = (0..SESSIONS)
            .map(|number| {
                let mut relp = Relp::open(relp_port);
                assert_eq!(
                    relp.syslog(&format!("wave {wave} session {number}")),
                    "2 rsp 6 200 OK\n"
                );
                relp
            })
            .collect();
        let held = rss_kib(wishbone.pid());
        drop(sessions);
        // The input gives memory back within its next second.
        std::thread::sleep(Duration::from_millis(2500));
        let rss = rss_kib(wishbone.pid());
        eprintln!("wave {wave}: {SESSIONS} sessions held at {held} KiB, {rss} KiB once closed");
        after.push(rss);
    }
    assert!(wishbone.stop().success());
    eprintln!("{before} KiB before the first wave");
    for (wave, rss) in after.iter().enumerate() {
        assert!(
            *rss <= before + before / 4 + 4096,
            "wave {wave}: {rss} KiB once the sessions closed, against {before} KiB before any: {after:?}"
        );
    }
}

#[test]
fn a_good_tls_client_is_served_while_clients_that_never_shake_hands_take_every_slot() {
    let dir = scratch_dir("idle-tls");
    wishbone_e2e::tls::certificates(&dir, "a", &["server"]);
    let sink = Sink::start(&dir, "backend");
    let bootstrap = format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0, max_connections: {SLOTS}, tls: {{cert: \"{}\", key: \"{}\"}}}}}}\n  \
         output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {}}}}}\n\
         routingtable:\n  - input.outbox -> output.inbox\n",
        dir.join("a-server.pem").display(),
        dir.join("a-server.key").display(),
        sink.port
    );
    let input_dir = dir.join("input");
    std::fs::create_dir_all(&input_dir).unwrap();
    let mut wishbone = Wishbone::start(&input_dir, &bootstrap, &[]);
    let port = wishbone.input_port("input");
    let silent = bad_clients(port, SLOTS * 2, Bad::Silent);
    std::thread::sleep(Duration::from_secs(2));
    let file = dir.join("line.txt");
    std::fs::write(&file, "over tls\n").unwrap();
    let asked = Instant::now();
    let sent = wishbone_e2e::tls::send_over_tls(port, &dir.join("a-ca.pem"), &file);
    assert!(sent.success());
    sink.wait_for_lines(1, MINUTE);
    let took = asked.elapsed();
    eprintln!(
        "a TLS client among {} silent ones served in {took:?}",
        SLOTS * 2
    );
    assert!(took < SERVED_WITHIN, "{took:?}");
    stop_bad_clients(silent);
    assert!(wishbone.stop().success());
    assert_eq!(sink.received(), b"over tls\n");
    assert!(input_total(&wishbone, "evicted") > 0);
}

#[test]
fn a_scrape_among_a_thousand_silent_connections_is_answered_within_a_second() {
    let dir = scratch_dir("idle-scrape");
    let bootstrap = "modules:\n  input: {module: wishbone.input.tcp, arguments: {address: 127.0.0.1, port: 0}}\n  \
                     prometheus: {module: wishbone.metrics.prometheus, arguments: {address: 127.0.0.1, port: 0}}\n  \
                     output: {module: wishbone.output.null}\nroutingtable:\n  - input.outbox -> output.inbox\n";
    let mut wishbone = Wishbone::start(&dir, bootstrap, &[]);
    let port = wishbone.logged_port("serving metrics for Prometheus");
    let silent: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let began = std::time::Instant::now();
    let mut scrape = TcpStream::connect(("127.0.0.1", port)).unwrap();
    scrape
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    scrape
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    let _ = scrape.read_to_string(&mut answer);
    let took = began.elapsed();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:.200}");
    assert!(
        took < Duration::from_secs(1),
        "a scrape among 1,000 silent connections took {took:?}"
    );
    drop(silent);
    wishbone.stop();
    println!("scrape answered in {took:?} among 1,000 silent connections");
}
