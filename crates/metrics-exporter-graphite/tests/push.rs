//! The exporter against a real TCP listener: lines arrive, a listener that
//! goes away and comes back is reconnected to, and a missing carbon costs
//! dropped lines, never unbounded memory.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use metrics::{Key, Metadata, Recorder};
use metrics_exporter_graphite::GraphiteBuilder;

fn metadata() -> Metadata<'static> {
    Metadata::new("test", metrics::Level::INFO, None)
}

/// Reads lines from the next connection until one contains `needle`.
fn read_until(listener: &TcpListener, needle: &str) -> String {
    let (stream, _) = listener.accept().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for line in BufReader::new(stream).lines() {
        let line = line.expect("a line before the timeout");
        if line.contains(needle) {
            return line;
        }
    }
    panic!("the connection ended without `{needle}`");
}

#[test]
fn lines_arrive_and_a_returning_carbon_is_reconnected_to() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let (recorder, _handle) = GraphiteBuilder::new()
        .with_address(address.to_string())
        .with_prefix("test.host")
        .with_interval(Duration::from_millis(20))
        .build_and_push();
    let counter = recorder.register_counter(&Key::from_name("requests"), &metadata());
    counter.increment(5);
    let line = read_until(&listener, "test.host.requests 5 ");
    assert_eq!(line.split(' ').count(), 3, "path value timestamp: {line}");
    drop(listener); // carbon goes away, and its connection with it

    let again = TcpListener::bind(address).unwrap();
    counter.increment(1);
    read_until(&again, "test.host.requests 6 ");
}

#[test]
fn without_carbon_the_buffer_stays_bounded_and_counts_what_it_drops() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (recorder, handle) = GraphiteBuilder::new()
        .with_address(format!("127.0.0.1:{port}"))
        .with_interval(Duration::from_millis(5))
        .with_buffer_lines(50)
        .build_and_push();
    for index in 0..20 {
        recorder
            .register_gauge(&Key::from_name(format!("gauge{index}")), &metadata())
            .set(1.0);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while handle.dropped_lines() == 0 {
        assert!(
            Instant::now() < deadline,
            "lines should be dropped once 50 wait"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_snapshot_renders_without_any_socket() {
    let (recorder, handle) = GraphiteBuilder::new().with_prefix("p").build();
    recorder
        .register_histogram(&Key::from_name("latency"), &metadata())
        .record(2.0);
    let lines = handle.render(10);
    assert!(
        lines.contains(&"p.latency.count 1 10".to_string()),
        "{lines:?}"
    );
    assert!(
        handle.render(11).is_empty(),
        "a histogram is summarised once"
    );
}

/// Client-side sockets on this machine connected to `port`, in any state:
/// an abandoned connection still holding data would show here.
fn sockets_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let port_of =
        |address: &str| u16::from_str_radix(address.rsplit(':').next().unwrap(), 16).unwrap();
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            port_of(fields[2]) == port && port_of(fields[1]) != port
        })
        .count()
}

#[test]
fn a_carbon_that_stops_reading_is_reset_each_time_not_left_holding_data() {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    socket.listen(16).unwrap();
    let listener: TcpListener = socket.into();
    let port = listener.local_addr().unwrap().port();
    // A carbon that accepts and never reads.
    let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let held = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            held.lock().unwrap().push(stream);
        }
    });
    let (recorder, handle) = GraphiteBuilder::new()
        .with_address(format!("127.0.0.1:{port}"))
        .with_interval(Duration::from_millis(10))
        .with_timeout(Duration::from_millis(100))
        .with_buffer_lines(20_000)
        .build_and_push();
    for index in 0..2000 {
        recorder
            .register_gauge(
                &Key::from_name(format!("a.rather.long.gauge.name.{index}")),
                &metadata(),
            )
            .set(1.0);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while accepted.lock().unwrap().len() < 4 {
        assert!(
            Instant::now() < deadline,
            "the exporter should reconnect to a stuck carbon"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        sockets_to(port) <= 1,
        "only the current connection may remain, found {}",
        sockets_to(port)
    );
    while handle.dropped_lines() == 0 {
        assert!(
            Instant::now() < deadline,
            "lines that cannot be written are dropped and counted"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
