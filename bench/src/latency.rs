//! Latency at a fixed send rate: each line carries the time it was sent,
//! the receiver subtracts it from the time it arrived.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::proxy::Proxy;

#[derive(Clone, Debug, serde::Serialize)]
pub struct Latency {
    pub name: String,
    pub rate_per_second: u64,
    pub events: usize,
    pub p50_microseconds: f64,
    pub p99_microseconds: f64,
    pub max_microseconds: f64,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_nanos() as u64)
        .unwrap_or(0)
}

/// Sends `rate` lines a second for `seconds` through the proxy `start`
/// builds (given the receiver's port) and measures each line's trip.
pub fn measure(
    name: &str,
    rate: u64,
    seconds: u64,
    start: impl FnOnce(u16) -> anyhow::Result<Proxy>,
) -> anyhow::Result<Latency> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let proxy = start(listener.local_addr()?.port())?;
    let expected = (rate * seconds) as usize;
    let receiver = std::thread::spawn(move || -> Vec<u64> {
        let Ok((mut stream, _)) = listener.accept() else {
            return Vec::new();
        };
        let mut delays = Vec::with_capacity(expected);
        let (mut buffer, mut carried) = (vec![0u8; 1 << 16], 0);
        while delays.len() < expected {
            let Ok(read) = stream.read(&mut buffer[carried..]) else {
                break;
            };
            if read == 0 {
                break;
            }
            let arrived = now_ns();
            let filled = carried + read;
            let mut start = 0;
            while let Some(end) = buffer[start..filled].iter().position(|byte| *byte == b'\n') {
                let line = &buffer[start..start + end];
                if let Some(sent) = std::str::from_utf8(line)
                    .ok()
                    .and_then(|text| text.split(' ').next()?.parse::<u64>().ok())
                {
                    delays.push(arrived.saturating_sub(sent));
                }
                start += end + 1;
            }
            buffer.copy_within(start..filled, 0);
            carried = filled - start;
        }
        delays
    });
    let mut stream = TcpStream::connect(("127.0.0.1", proxy.input_port))?;
    stream.set_nodelay(true)?;
    let per_tick = (rate / 1000).max(1);
    let tick = Duration::from_secs_f64(per_tick as f64 / rate as f64);
    let begun = Instant::now();
    let mut sent = 0u64;
    let mut line = Vec::with_capacity(100);
    while sent < rate * seconds {
        let due = begun + tick * (sent / per_tick) as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let mut chunk = Vec::with_capacity(per_tick as usize * 100);
        for _ in 0..per_tick {
            line.clear();
            write!(line, "{} {:.<78}", now_ns(), "latency probe")?;
            line.push(b'\n');
            chunk.extend_from_slice(&line);
        }
        stream.write_all(&chunk)?;
        sent += per_tick;
    }
    let mut delays = receiver
        .join()
        .map_err(|_| anyhow::anyhow!("the latency receiver failed"))?;
    proxy.stop();
    anyhow::ensure!(
        delays.len() == expected,
        "{} of {expected} latency probes arrived",
        delays.len()
    );
    delays.sort_unstable();
    let percentile =
        |p: f64| delays[((delays.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0;
    Ok(Latency {
        name: name.to_string(),
        rate_per_second: rate,
        events: delays.len(),
        p50_microseconds: percentile(0.50),
        p99_microseconds: percentile(0.99),
        max_microseconds: percentile(1.0),
    })
}
