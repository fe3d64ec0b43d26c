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
