//! A server that runs out of file descriptors: `ulimit -n 64` and 200
//! clients. It must not spin or flood its log, must keep serving the
//! clients it has, and must accept again once descriptors are free.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);
const OPEN_FILES: u64 = 64;

fn bootstrap(sink_port: u16, input_arguments: &str) -> String {
    format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0{input_arguments}}}}}\n  \
         output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {sink_port}}}}}\n\
         routingtable:\n  - input.outbox -> output.inbox\n"
    )
}

/// Sends one line on an open connection and waits until the sink has it.
fn served(client: &mut TcpStream, sink: &Sink, line: &str) {
    client.write_all(format!("{line}\n").as_bytes()).unwrap();
    wait_until(MINUTE, &format!("`{line}` at the sink"), || {
        String::from_utf8_lossy(&sink.received()).contains(line)
    });
}

/// 200 clients connect to a server that may hold at most 64 descriptors;
/// returns them so they stay open.
fn crowd(port: u16) -> Vec<TcpStream> {
    (0..200)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("the listen backlog takes it"))
        .collect()
}

#[test]
fn out_of_descriptors_the_input_pauses_quietly_and_recovers() {
    let dir = scratch_dir("emfile");
    let sink = Sink::start(&dir, "backend");
    // A limit far above what the descriptors allow: accepts do fail.
    let wishbone = Wishbone::start_limited(
        &dir,
        &bootstrap(sink.port, ", max_connections: 1000"),
        &[],
        Some(OPEN_FILES),
    );
    let port = wishbone.input_port("input");
    let mut first = TcpStream::connect(("127.0.0.1", port)).unwrap();
    served(&mut first, &sink, "before the crowd");

    let crowd = crowd(port);
    wishbone
        .output
        .wait_for("cannot accept connections", MINUTE);
    let cpu_before = wishbone.cpu_seconds();
    std::thread::sleep(Duration::from_secs(3)); // the window measured, not a synchronisation
    let cpu = wishbone.cpu_seconds() - cpu_before;
    let warnings = wishbone.output.count("WARN");
    assert!(cpu < 0.3, "{cpu:.2} CPU s in 3 s while out of descriptors");
    assert!(
        warnings <= 24,
        "{warnings} warnings in 3 s:\n{}",
        wishbone.output.text()
    );
    served(&mut first, &sink, "during the crowd");

    drop(crowd);
    let mut late = TcpStream::connect(("127.0.0.1", port)).unwrap();
    served(&mut late, &sink, "after the crowd");
    wishbone
        .output
        .wait_for("accepting connections again", MINUTE);
}

#[test]
fn by_default_connections_are_limited_below_the_descriptor_limit() {
    let dir = scratch_dir("emfile-default");
    let sink = Sink::start(&dir, "backend");
    let wishbone = Wishbone::start_limited(&dir, &bootstrap(sink.port, ""), &[], Some(OPEN_FILES));
    let port = wishbone.input_port("input");
    let limit: u64 = field(
        &wishbone.output.wait_for("listening module=input", MINUTE),
        "max_connections",
    )
    .unwrap()
    .parse()
    .unwrap();
    assert_eq!(limit, OPEN_FILES / 2, "half the open-file limit");
    let mut first = TcpStream::connect(("127.0.0.1", port)).unwrap();
    served(&mut first, &sink, "before the crowd");
    let crowd = crowd(port);
    let cpu_before = wishbone.cpu_seconds();
    std::thread::sleep(Duration::from_secs(1)); // the window measured
    assert!(wishbone.cpu_seconds() - cpu_before < 0.3);
    served(&mut first, &sink, "during the crowd");
    assert_eq!(
        wishbone.output.count("cannot accept"),
        0,
        "the limit keeps accepts from failing:\n{}",
        wishbone.output.text()
    );
    drop(crowd);
    let mut late = TcpStream::connect(("127.0.0.1", port)).unwrap();
    served(&mut late, &sink, "after the crowd");
}
