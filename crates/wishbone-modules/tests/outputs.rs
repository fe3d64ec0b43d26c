//! The tcp and websocket outputs on their own, through
//! `ModuleContext::detached`, against peers on 127.0.0.1: a peer that dies
//! gets nothing acknowledged sent again, and what it never acknowledged
//! goes to the next connection (or to `failed`); a peer that stops reading
//! is routed around.

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use bytes::Bytes;
use wishbone_runtime::queue::{self, Receiver, Sender};
use wishbone_runtime::{Arguments, Event, Lines, ModuleContext, Parcel, RuntimeOptions};

mod support;

const LINES: usize = 50_000;
const LINE: usize = 100;
const LIMIT: Duration = Duration::from_secs(60);

/// Line `number` of the stream, 100 bytes with its newline.
fn line(number: usize) -> String {
    format!("{number:010} {:.<88}", "")
}

/// A listener whose connections have a small receive buffer, so a peer
/// that does not read stops acknowledging soon.
fn small_listener() -> TcpListener {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    socket
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    socket.listen(8).unwrap();
    socket.into()
}

/// Bytes received on the socket that its owner has not read: what the
/// peer's kernel acknowledged, when nothing was read.
fn unread(stream: &TcpStream) -> usize {
    let mut count: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through a pointer to a live local.
    unsafe { libc::ioctl(stream.as_raw_fd(), libc::FIONREAD, &mut count) };
    count as usize
}

/// Waits until the peer's unread count holds still (the sender's window
/// is full), then resets the connection as a killed process would. Returns
/// what the peer's kernel had acknowledged, read without consuming it.
fn die_without_reading(stream: TcpStream) -> Vec<u8> {
    let mut last = 0;
    let mut still_since = Instant::now();
    let deadline = Instant::now() + LIMIT;
    while last == 0 || still_since.elapsed() < Duration::from_millis(300) {
        assert!(
            Instant::now() < deadline,
            "the output never filled the window"
        );
        std::thread::sleep(Duration::from_millis(10));
        let now = unread(&stream);
        if now != last {
            last = now;
            still_since = Instant::now();
        }
    }
    let mut acknowledged = vec![0u8; last];
    let peeked = stream.peek(&mut acknowledged).unwrap();
    acknowledged.truncate(peeked);
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(stream);
    acknowledged
}

/// The numbers of the whole lines in `data`.
fn whole_lines(data: &[u8]) -> Vec<usize> {
    numbers(&String::from_utf8_lossy(
        &data[..data.len() - data.len() % LINE],
    ))
}

/// How the numbered lines reach the output: as separate events (from a
/// module that handles events one by one), or as lines still in their wire
/// form (from a tcp input, through a round robin).
#[derive(Clone, Copy)]
enum Feed {
    Events,
    Lines,
}

/// Runs the module of `kind` on a current-thread runtime, feeding it
/// `LINES` numbered lines, until its inbox closes and it returns.
fn run_output(
    kind: &wishbone_runtime::ModuleKind,
    arguments: &str,
    failed: Option<Sender>,
    watch: impl FnOnce(Sender) + Send + 'static,
) {
    run_output_fed(kind, arguments, failed, watch, Feed::Events);
}

fn run_output_fed(
    kind: &wishbone_runtime::ModuleKind,
    arguments: &str,
    failed: Option<Sender>,
    watch: impl FnOnce(Sender) + Send + 'static,
    feed: Feed,
) {
    let module = (kind.build)(&Arguments::from_yaml(arguments).unwrap()).unwrap();
    let mut context = ModuleContext::detached("output", RuntimeOptions::default());
    let (to_module, inbox) = queue::channel(1000);
    context.connect_incoming("inbox", inbox);
    if let Some(failed) = failed {
        context.connect_outgoing("failed", failed);
    }
    let feeder = to_module.clone();
    std::thread::spawn(move || watch(feeder));
    support::on_one_thread(async move {
        let task = tokio::task::spawn_local(module.run(context));
        for start in (0..LINES).step_by(1000) {
            let batch: Vec<Event> = (start..start + 1000).map(|n| Event::new(line(n))).collect();
            let parcel = match feed {
                Feed::Events => Parcel::Events(batch),
                Feed::Lines => Parcel::Lines(Lines::encode(&batch, &Bytes::from_static(b"\n"))),
            };
            to_module.send(parcel).await.unwrap();
        }
        drop(to_module);
        tokio::time::timeout(LIMIT, task)
            .await
            .expect("the output drains")
            .unwrap()
            .unwrap();
    });
}

fn numbers(text: &str) -> Vec<usize> {
    text.lines()
        .map(|line| line[..10].parse().unwrap())
        .collect()
}

#[test]
fn tcp_output_sends_what_a_dead_peer_never_acknowledged_to_the_next_one() {
    let listener = small_listener();
    let port = listener.local_addr().unwrap().port();
    let peers = std::thread::spawn(move || {
        let (first, _) = listener.accept().unwrap();
        let acknowledged = die_without_reading(first);
        let (second, _) = listener.accept().unwrap();
        let mut received = String::new();
        BufReader::new(second)
            .read_to_string(&mut received)
            .unwrap();
        (acknowledged, received)
    });
    run_output(
        &wishbone_modules::output::tcp::KIND,
        &format!("{{host: 127.0.0.1, port: {port}, reconnect_initial: 0.01, reconnect_max: 0.05}}"),
        None,
        drop,
    );
    let (acknowledged, received) = peers.join().unwrap();
    let first = whole_lines(&acknowledged).len();
    assert!(first > 0, "the dead peer's kernel acknowledged something");
    assert_eq!(whole_lines(&acknowledged), (0..first).collect::<Vec<_>>());
    assert_eq!(
        numbers(&received),
        (first..LINES).collect::<Vec<_>>(),
        "the next peer gets exactly what the dead one never acknowledged, then the rest"
    );
}

#[test]
fn tcp_output_with_failover_hands_the_unacknowledged_to_failed() {
    let listener = small_listener();
    let port = listener.local_addr().unwrap().port();
    let (failed, mut from_failed): (Sender, Receiver) = queue::channel(LINES);
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = finished.clone();
    let peers = std::thread::spawn(move || {
        let (first, _) = listener.accept().unwrap();
        let acknowledged = die_without_reading(first);
        // With failover the output may finish without connecting again.
        listener.set_nonblocking(true).unwrap();
        let mut received = String::new();
        loop {
            let over = done.load(std::sync::atomic::Ordering::SeqCst);
            if let Ok((second, _)) = listener.accept() {
                second.set_nonblocking(false).unwrap();
                BufReader::new(second)
                    .read_to_string(&mut received)
                    .unwrap();
                break;
            }
            if over {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        (acknowledged, received)
    });
    run_output(
        &wishbone_modules::output::tcp::KIND,
        &format!(
            "{{host: 127.0.0.1, port: {port}, failed: true, reconnect_initial: 0.01, reconnect_max: 0.05}}"
        ),
        Some(failed),
        drop,
    );
    finished.store(true, std::sync::atomic::Ordering::SeqCst);
    let (acknowledged, received) = peers.join().unwrap();
    let mut failed_over = Vec::new();
    while let Some(batch) = from_failed.try_recv() {
        failed_over.extend(batch.iter().map(|event| {
            String::from_utf8_lossy(&event.data()[..10])
                .parse::<usize>()
                .unwrap()
        }));
    }
    // Events taken while the first connection was being made went to
    // `failed` too: they are simply the ones the first peer never saw.
    let at_peer = whole_lines(&acknowledged);
    let next = at_peer.last().unwrap() + 1;
    assert!(
        failed_over.contains(&next),
        "what the peer did not acknowledge is failed over"
    );
    let mut all: Vec<usize> = at_peer
        .into_iter()
        .chain(failed_over)
        .chain(numbers(&received))
        .collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..LINES).collect::<Vec<_>>(),
        "each line delivered or failed over, once"
    );
}

#[test]
fn tcp_output_routes_around_a_peer_that_stops_reading() {
    let listener = small_listener();
    let port = listener.local_addr().unwrap().port();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        // Read nothing until the output has locked its inbox, then everything.
        locked_rx.recv().unwrap();
        let mut lines = 0;
        for line in BufReader::new(stream).lines() {
            line.unwrap();
            lines += 1;
        }
        assert_eq!(lines, LINES);
    });
    run_output(
        &wishbone_modules::output::tcp::KIND,
        &format!("{{host: 127.0.0.1, port: {port}, timeout: 0.3}}"),
        None,
        move |inbox| {
            let deadline = Instant::now() + LIMIT;
            while !inbox.is_locked() {
                assert!(Instant::now() < deadline, "a stalled peer locks the inbox");
                std::thread::sleep(Duration::from_millis(5));
            }
            locked_tx.send(()).unwrap();
            while inbox.is_locked() {
                assert!(
                    Instant::now() < deadline,
                    "a peer that reads again unlocks it"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        },
    );
}

/// Bytes of a masked client frame carrying one of these lines.
const FRAME: usize = LINE - 1 + 6;

#[test]
fn websocket_output_sends_what_a_dead_server_never_acknowledged_to_the_next_one() {
    websocket_output_resends_the_unacknowledged(Feed::Events);
}

#[test]
fn websocket_output_sends_lines_a_dead_server_never_acknowledged_to_the_next_one() {
    websocket_output_resends_the_unacknowledged(Feed::Lines);
}

fn websocket_output_resends_the_unacknowledged(feed: Feed) {
    let listener = small_listener();
    let port = listener.local_addr().unwrap().port();
    let peers = std::thread::spawn(move || {
        let (first, _) = listener.accept().unwrap();
        let socket = tokio_tungstenite::tungstenite::accept(first).unwrap();
        let acknowledged = die_without_reading(socket.into_inner());
        let (second, _) = listener.accept().unwrap();
        let mut socket = tokio_tungstenite::tungstenite::accept(second).unwrap();
        let mut received = Vec::new();
        while let Ok(message) = socket.read() {
            if message.is_text() {
                received.push(message.into_text().unwrap()[..10].parse::<usize>().unwrap());
            }
        }
        (acknowledged, received)
    });
    run_output_fed(
        &wishbone_modules::output::websocket::KIND,
        &format!(
            "{{url: \"ws://127.0.0.1:{port}/\", reconnect_initial: 0.01, reconnect_max: 0.05}}"
        ),
        None,
        drop,
        feed,
    );
    let (acknowledged, received) = peers.join().unwrap();
    let first = acknowledged.len() / FRAME;
    assert!(first > 0);
    assert_eq!(received, (first..LINES).collect::<Vec<_>>());
}
