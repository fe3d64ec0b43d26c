//! One throughput run: send the data file through a proxy to receivers,
//! and measure until the last line arrived.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::data::{Fingerprint, LINE_LENGTH};
use crate::process::{cpu_seconds, peak_rss_mib};
use crate::proxy::Proxy;
use crate::receiver::Receiver;

/// The figures of one run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Figures {
    pub name: String,
    pub ok: bool,
    pub problem: Option<String>,
    pub lines_per_second: f64,
    pub megabytes_per_second: f64,
    pub wall_seconds: f64,
    pub cpu_seconds: f64,
    pub peak_rss_mib: f64,
}

/// The receivers of a run: plain TCP ones, or websocket servers.
#[derive(Clone, Copy, Debug)]
pub enum Receivers {
    Tcp(usize),
    Websocket(usize),
}

/// Runs `start` (given the receivers' ports) on the data and measures it.
pub fn run(
    name: &str,
    receivers: Receivers,
    data: &Path,
    expected: Fingerprint,
    start: impl FnOnce(&[u16]) -> anyhow::Result<Proxy>,
) -> anyhow::Result<Figures> {
    run_counting(name, receivers, data, expected.lines, expected, start)
}

/// As [`run`], for a proxy that passes on only some of the `sent` lines
/// (a filter): the rate counts the lines sent, the check those expected.
pub fn run_counting(
    name: &str,
    receivers: Receivers,
    data: &Path,
    sent: u64,
    expected: Fingerprint,
    start: impl FnOnce(&[u16]) -> anyhow::Result<Proxy>,
) -> anyhow::Result<Figures> {
    run_checked(name, receivers, data, sent, (expected, true), start)
}

/// As [`run`], for a proxy that writes a line of its own for each of the
/// `lines` sent (a peer's parser): only their number is checked.
pub fn run_counted(
    name: &str,
    data: &Path,
    lines: u64,
    start: impl FnOnce(&[u16]) -> anyhow::Result<Proxy>,
) -> anyhow::Result<Figures> {
    let expected = Fingerprint {
        lines,
        ..Fingerprint::default()
    };
    run_checked(
        name,
        Receivers::Tcp(1),
        data,
        lines,
        (expected, false),
        start,
    )
}

/// The runs of [`run_counting`] and [`run_counted`]: with `content`, the
/// lines that arrive must be the lines `expected`, else only as many.
fn run_checked(
    name: &str,
    receivers: Receivers,
    data: &Path,
    sent: u64,
    (expected, content): (Fingerprint, bool),
    start: impl FnOnce(&[u16]) -> anyhow::Result<Proxy>,
) -> anyhow::Result<Figures> {
    let (count, start_one): (usize, fn() -> anyhow::Result<Receiver>) = match receivers {
        Receivers::Tcp(count) => (count, Receiver::start),
        Receivers::Websocket(count) => (count, Receiver::start_websocket),
    };
    let receivers: Vec<Receiver> = (0..count)
        .map(|_| start_one())
        .collect::<anyhow::Result<_>>()?;
    let ports: Vec<u16> = receivers.iter().map(|receiver| receiver.port).collect();
    let proxy = start(&ports)?;
    let begun = Instant::now();
    // A proxy without an input port reads the data itself (a file input).
    let sender = (proxy.input_port != 0).then(|| {
        let (data, port) = (data.to_path_buf(), proxy.input_port);
        std::thread::spawn(move || send_file(&data, port))
    });
    let total = || {
        receivers
            .iter()
            .map(|receiver| receiver.received().fingerprint)
            .fold(Fingerprint::default(), Fingerprint::combine)
    };
    let mut last_progress = (Instant::now(), 0);
    // Sampled while running: socat exits by itself at the end of its input.
    let (mut cpu, mut rss) = (0.0f64, 0.0f64);
    let problem = loop {
        cpu = cpu.max(proxy.pids().into_iter().map(cpu_seconds).sum());
        rss = rss.max(proxy.pids().into_iter().map(peak_rss_mib).sum());
        let now = total();
        if now.lines >= expected.lines {
            let wrong = if content {
                now != expected
            } else {
                now.lines != expected.lines
            };
            break wrong.then(|| "the lines that arrived are not the lines sent".to_string());
        }
        if now.lines != last_progress.1 {
            last_progress = (Instant::now(), now.lines);
        } else if last_progress.0.elapsed() > Duration::from_secs(30) {
            break Some(format!(
                "stalled at {} of {} lines",
                now.lines, expected.lines
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let finished = receivers
        .iter()
        .filter_map(|receiver| receiver.received().last)
        .max()
        .unwrap_or_else(Instant::now);
    let wall = finished.duration_since(begun).as_secs_f64().max(1e-9);
    cpu = cpu.max(proxy.pids().into_iter().map(cpu_seconds).sum());
    rss = rss.max(proxy.pids().into_iter().map(peak_rss_mib).sum());
    proxy.stop();
    if let Some(sender) = sender {
        let _ = sender.join();
    }
    Ok(Figures::of(name, problem, sent, wall, cpu, rss))
}

impl Figures {
    /// The figures of `lines` lines of [`LINE_LENGTH`] bytes in `wall`
    /// seconds, with the CPU seconds and peak memory they took.
    pub fn of(
        name: &str,
        problem: Option<String>,
        lines: u64,
        wall: f64,
        cpu: f64,
        rss: f64,
    ) -> Figures {
        let lines = lines as f64;
        Figures {
            name: name.to_string(),
            ok: problem.is_none(),
            problem,
            lines_per_second: lines / wall,
            megabytes_per_second: lines * LINE_LENGTH as f64 / wall / 1e6,
            wall_seconds: wall,
            cpu_seconds: cpu,
            peak_rss_mib: rss,
        }
    }
}

/// Streams the file to the port in 1 MiB writes, then closes.
pub fn send_file(path: &Path, port: u16) -> std::io::Result<()> {
    let mut file = std::fs::File::open(path)?;
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        stream.write_all(&buffer[..read])?;
    }
    stream.shutdown(std::net::Shutdown::Write)
}
