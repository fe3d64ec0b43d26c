//! A scraper of `wishbone.metrics.prometheus`: GET of the page every
//! [`EVERY`] on its own thread, until the page stops answering (the proxy
//! was stopped) after it first answered. A hundred times what a Prometheus
//! scraping every second asks, so that the cost of a scrape shows beside
//! the same scenario without one.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Between two scrapes.
pub const EVERY: Duration = Duration::from_millis(10);

/// Scrapes `127.0.0.1:port/metrics` until it stops answering.
pub fn start(port: u16) {
    std::thread::spawn(move || {
        let mut answered = false;
        for _ in 0..100_000 {
            match scrape(port) {
                Ok(bytes) if bytes > 0 => answered = true,
                _ if answered => return,
                _ => {}
            }
            std::thread::sleep(EVERY);
        }
    });
}

/// One GET; the bytes of the answer.
fn scrape(port: u16) -> std::io::Result<usize> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(answer.len())
}

/// Taps `queue` through the operator listener at `127.0.0.1:port`, taking
/// each event with probability `sample`: returns once the tap is attached,
/// then reads (and drops) what it sends on its own thread until the
/// server closes it.
pub fn tap(port: u16, queue: &str, sample: f64) -> anyhow::Result<()> {
    let mut stream = (0..500)
        .find_map(|_| {
            TcpStream::connect(("127.0.0.1", port))
                .inspect_err(|_| std::thread::sleep(Duration::from_millis(10)))
                .ok()
        })
        .ok_or_else(|| anyhow::anyhow!("the operator listener on {port} never answered"))?;
    write!(
        stream,
        "GET /api/tap?queue={queue}&sample={sample} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    )?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte)?;
        head.push(byte[0]);
    }
    anyhow::ensure!(
        head.starts_with(b"HTTP/1.1 200"),
        "the tap was refused: {}",
        String::from_utf8_lossy(&head)
    );
    std::thread::spawn(move || {
        let mut buffer = vec![0u8; 64 * 1024];
        while matches!(stream.read(&mut buffer), Ok(read) if read > 0) {}
    });
    Ok(())
}
