//! Peers that accept a connection and then fail it: every failure, before
//! or after a handshake, waits its turn in the backoff, and the log says so
//! once per outage.

use std::io::Write;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio_tungstenite::tungstenite;
use wishbone_e2e::*;

const WINDOW: Duration = Duration::from_secs(3);

/// A server that runs `serve` on every connection it accepts, counting them.
fn counting_server(serve: fn(std::net::TcpStream)) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            counted.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || serve(stream));
        }
    });
    (port, connections)
}

fn generator_to(output: &str) -> String {
    format!(
        "modules:\n  generator: {{module: wishbone.input.generator, arguments: {{interval: 0.01}}}}\n  {output}\n\
         routingtable:\n  - generator.outbox -> output.inbox\n"
    )
}

/// Runs the server for the window and returns (connections, warnings).
fn measure(dir: &str, output: &str, connections: &AtomicUsize) -> (usize, usize) {
    let dir = scratch_dir(dir);
    let wishbone = Wishbone::start(&dir, &generator_to(output), &[]);
    wait_until(Duration::from_secs(30), "a first connection", || {
        connections.load(Ordering::SeqCst) > 0
    });
    let before = connections.load(Ordering::SeqCst);
    std::thread::sleep(WINDOW); // the window measured
    let made = connections.load(Ordering::SeqCst) - before;
    (made, wishbone.output.count("WARN"))
}

#[test]
fn a_websocket_server_that_sends_garbage_after_the_handshake_is_retried_with_backoff() {
    let (port, connections) = counting_server(|stream| {
        let Ok(mut socket) = tungstenite::accept(stream) else {
            return;
        };
        // Reserved opcode 0x3 and nonsense: a protocol error for the client.
        let _ = socket.get_mut().write_all(&[0x83, 0x7f, 0xff, 0xff, 0xff]);
        std::thread::sleep(Duration::from_millis(200));
    });
    let (made, warnings) = measure(
        "ws-garbage",
        &format!(
            "output: {{module: wishbone.output.websocket, arguments: {{url: \"ws://127.0.0.1:{port}/\"}}}}"
        ),
        &connections,
    );
    // Waits of 0.1, 0.2, 0.4, 0.8, then 1 s: a handful of attempts in 3 s.
    assert!(made <= 10, "{made} connections in {WINDOW:?}");
    assert!(warnings <= 2, "{warnings} warnings");
}

#[test]
fn a_tcp_peer_that_drops_every_connection_is_retried_with_backoff() {
    let (port, connections) = counting_server(drop);
    let (made, warnings) = measure(
        "tcp-drop",
        &format!(
            "output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {port}}}}}"
        ),
        &connections,
    );
    assert!(made <= 10, "{made} connections in {WINDOW:?}");
    assert!(warnings <= 2, "{warnings} warnings");
}
