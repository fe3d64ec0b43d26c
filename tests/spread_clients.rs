//! A tcp input with several clients at `--threads 2` reads them on both
//! threads (each client on one), and every client's lines arrive once and
//! in its order. Real processes on loopback.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);
const CLIENTS: usize = 4;
const LINES: usize = 1_000_000;

/// Client `client`'s lines: `c<client> <number> ` and padding.
fn lines_of(client: usize) -> Vec<u8> {
    let mut data = Vec::with_capacity(LINES * 100);
    for number in 0..LINES {
        writeln!(data, "c{client} {number} {}", ".".repeat(80)).unwrap();
    }
    data
}

#[test]
fn several_clients_are_read_on_both_threads_each_in_its_order() {
    let dir = scratch_dir("spread-clients");
    let sink = Sink::start(&dir, "backend");
    let mut wishbone = Wishbone::start(&dir, &proxy_bootstrap(sink.port), &["--threads", "2"]);
    let port = wishbone.input_port("input");
    let data: Vec<Vec<u8>> = (0..CLIENTS).map(lines_of).collect();
    // All connected before any sends, so that each is placed while the
    // others are open.
    let streams: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::scope(|scope| {
        for (mut stream, data) in streams.into_iter().zip(&data) {
            scope.spawn(move || stream.write_all(data).unwrap());
        }
    });
    sink.wait_for_lines(CLIENTS * LINES, MINUTE);
    let threads = thread_cpu_seconds(wishbone.pid());
    assert!(wishbone.stop().success());

    let received = sink.received();
    let mut next = [0usize; CLIENTS];
    for line in received
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.is_empty())
    {
        let line = std::str::from_utf8(line).unwrap();
        let mut words = line.split(' ');
        let client: usize = words.next().unwrap()[1..].parse().unwrap();
        let number: usize = words.next().unwrap().parse().unwrap();
        assert_eq!(
            number, next[client],
            "client {client}'s lines in order, once"
        );
        next[client] += 1;
    }
    assert_eq!(next, [LINES; CLIENTS]);

    // The busiest thread holds one pipeline (the input's queue and the
    // output) and the clients placed with it; the next holds the others.
    // Read on one thread, the second would have next to nothing.
    let total: f64 = threads.iter().sum();
    assert!(
        threads[1] >= total * 0.1,
        "CPU seconds by thread, busiest first: {threads:?}"
    );
}
