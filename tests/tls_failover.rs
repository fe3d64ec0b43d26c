//! Scenario III with TLS on both outputs: a TLS backend (socat) is frozen
//! and killed with SIGKILL while a million numbered lines stream, and
//! output_2 fails over through its failed queue and a funnel to output_1.
//! Under TLS the output counts ciphertext bytes, so what may be lost is
//! still only what the backend's kernel acknowledged and its program never
//! wrote: the receive queue measured at the kill, plus what socat had read
//! and not yet written (one read, one TLS record).

use std::time::Duration;

use wishbone_e2e::tls::{certificates, tls_sink};
use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);
const LINES: usize = 1_000_000;
/// socat's read size (its default) and the largest TLS record.
const IN_SOCAT: u64 = 8192 + 16 * 1024 + 256;

#[test]
fn a_tls_backend_killed_mid_stream_loses_nothing_outside_the_kernel_window() {
    let dir = scratch_dir("tls-failover");
    certificates(&dir, "a", &["server"]);
    let (one_out, two_out) = (dir.join("one.out"), dir.join("two.out"));
    let (_one, one_port) = tls_sink(&dir, &one_out);
    let (mut two, two_port) = tls_sink(&dir, &two_out);
    let tls = format!("tls: {{ca: {}}}", dir.join("a-ca.pem").display());
    let bootstrap = scenario_3_bootstrap(one_port, two_port)
        .replace("host: 127.0.0.1", "host: localhost")
        .replace("reconnect_max: 0.2", &format!("reconnect_max: 0.2, {tls}"));
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    let input = wishbone.input_port("input");
    let data = numbered_lines(LINES);
    let sender = {
        let data = data.clone();
        std::thread::spawn(move || send(input, &data))
    };
    let written = |path: &std::path::Path| std::fs::metadata(path).map_or(0, |meta| meta.len());
    wait_until(MINUTE, "the backend to get a tenth of the lines", || {
        written(&two_out) >= (LINES as u64 / 10) * NUMBERED_LINE_LENGTH as u64
    });
    two.signal(libc::SIGSTOP);
    let last = settled_unread_bytes(two_port);
    two.kill();
    sender.join().unwrap();
    let received = || {
        let mut data = std::fs::read(&one_out).unwrap_or_default();
        data.extend(std::fs::read(&two_out).unwrap_or_default());
        data
    };
    let window = last + IN_SOCAT;
    wait_until(MINUTE, "every line outside the window", || {
        let mut seen = std::collections::BTreeSet::new();
        seen.extend(line_numbers(&received()));
        seen.len() as u64 * NUMBERED_LINE_LENGTH as u64 + window >= data.len() as u64
    });
    assert!(wishbone.stop().success(), "{}", wishbone.output.text());
    let all = received();
    let mut seen = vec![0u32; LINES];
    for number in line_numbers(&all) {
        seen[number] += 1;
    }
    let missing = seen.iter().filter(|count| **count == 0).count();
    let duplicates: usize = seen
        .iter()
        .map(|count| count.saturating_sub(1) as usize)
        .sum();
    eprintln!(
        "TLS backend killed: {missing} lines missing, its kernel held {last} unread bytes (socat up to {IN_SOCAT} more); {duplicates} twice"
    );
    assert!(
        missing as u64 * NUMBERED_LINE_LENGTH as u64 <= window,
        "{missing} lines lost outside the window of {window} bytes"
    );
}
