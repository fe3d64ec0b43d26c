//! Bad input does not panic, does not grow memory without bound, and loses
//! nothing that was accepted; what was cut is counted.

use std::io::Write;
use std::time::Duration;

use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn garbage_bytes_pass_through_unchanged() {
    let dir = scratch_dir("garbage");
    let sink = Sink::start(&dir, "backend");
    let mut wishbone = Wishbone::start(&dir, &proxy_bootstrap(sink.port), &[]);
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut data: Vec<u8> = (0..8_000_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    data.push(b'\n');
    let lines = data.iter().filter(|byte| **byte == b'\n').count();
    send(wishbone.input_port("input"), &data);
    sink.wait_for_lines(lines, MINUTE);
    assert!(wishbone.stop().success());
    assert_eq!(sha256(&sink.received()), sha256(&data));
}

#[test]
fn a_100_megabyte_line_is_truncated_counted_and_memory_stays_bounded() {
    let dir = scratch_dir("huge-line");
    let sink = Sink::start(&dir, "backend");
    let mut wishbone = Wishbone::start(&dir, &proxy_bootstrap(sink.port), &[]);
    let input = wishbone.input_port("input");
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", input)).unwrap();
    stream.write_all(b"before\n").unwrap();
    let block = vec![b'x'; 1 << 20];
    for _ in 0..100 {
        stream.write_all(&block).unwrap();
    }
    stream.write_all(b"\nafter\n").unwrap();
    drop(stream);
    sink.wait_for_lines(3, MINUTE);
    let peak = peak_rss_kib(wishbone.pid());
    assert!(wishbone.stop().success());
    let received = sink.received();
    let mut expected = b"before\n".to_vec();
    expected.extend(std::iter::repeat_n(b'x', 1 << 20));
    expected.extend(b"\nafter\n");
    assert_eq!(received.len(), expected.len());
    assert!(
        received == expected,
        "the first MiB of the long line, then the next line"
    );
    let totals = wishbone.output.wait_for("input totals", MINUTE);
    assert_eq!(field(&totals, "truncated"), Some("1"), "{totals}");
    assert!(
        wishbone
            .output
            .text()
            .contains("longer than max_line_length")
    );
    assert!(
        peak < 64 * 1024,
        "peak resident memory {peak} KiB while a 100 MB line passed"
    );
}

#[test]
fn five_hundred_concurrent_clients_each_keep_their_order() {
    let dir = scratch_dir("many-clients");
    let sink = Sink::start(&dir, "backend");
    let mut wishbone = Wishbone::start(&dir, &proxy_bootstrap(sink.port), &[]);
    let input = wishbone.input_port("input");
    let clients: Vec<_> = (0..500)
        .map(|client| {
            std::thread::spawn(move || {
                let mut data = Vec::new();
                for line in 0..1000 {
                    writeln!(data, "client {client:03} line {line:04}").unwrap();
                }
                send(input, &data);
                data
            })
        })
        .collect();
    let sent: Vec<Vec<u8>> = clients
        .into_iter()
        .map(|client| client.join().unwrap())
        .collect();
    sink.wait_for_lines(500_000, MINUTE);
    assert!(wishbone.stop().success());
    let received = sink.received();
    let all_sent = sent.concat();
    assert_eq!(
        sorted_lines(&received),
        sorted_lines(&all_sent),
        "every line once"
    );
    let mut next = vec![0usize; 500];
    for line in received
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.is_empty())
    {
        let text = std::str::from_utf8(line).unwrap();
        let client: usize = text[7..10].parse().unwrap();
        let number: usize = text[16..20].parse().unwrap();
        assert_eq!(number, next[client], "client {client} out of order");
        next[client] += 1;
    }
    let totals = wishbone.output.wait_for("input totals", MINUTE);
    assert!(totals.contains("connections=500"), "{totals}");
}
