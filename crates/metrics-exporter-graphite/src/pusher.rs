//! The thread that writes lines to carbon: one connection, reconnect with
//! backoff, a bounded buffer in between. It runs beside the program and
//! never makes recording wait.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::GraphiteHandle;
use crate::buffer::LineBuffer;

const FIRST_WAIT: Duration = Duration::from_millis(100);
const LONGEST_WAIT: Duration = Duration::from_secs(30);
const IO_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) fn spawn(
    handle: GraphiteHandle,
    address: String,
    interval: Duration,
    buffer_lines: usize,
) {
    let spawned = std::thread::Builder::new()
        .name("graphite-exporter".into())
        .spawn(move || push(handle, address, interval, buffer_lines));
    if let Err(error) = spawned {
        eprintln!("metrics-exporter-graphite: cannot start its thread: {error}");
    }
}

fn push(handle: GraphiteHandle, address: String, interval: Duration, buffer_lines: usize) {
    let mut buffer = LineBuffer::new(buffer_lines);
    let mut stream: Option<TcpStream> = None;
    let mut wait = FIRST_WAIT;
    let mut next_attempt = Instant::now();
    let mut next_tick = Instant::now() + interval;
    loop {
        std::thread::sleep(next_tick.saturating_duration_since(Instant::now()));
        next_tick += interval;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|since| since.as_secs())
            .unwrap_or(0);
        buffer.extend(handle.render(now));
        handle.record_dropped(buffer.dropped());
        if stream.is_none() && Instant::now() >= next_attempt {
            match connect(&address) {
                Ok(connected) => {
                    stream = Some(connected);
                    wait = FIRST_WAIT;
                }
                Err(_) => {
                    next_attempt = Instant::now() + wait;
                    wait = (wait * 2).min(LONGEST_WAIT);
                }
            }
        }
        if let Some(connected) = &mut stream {
            match connected.write_all(buffer.joined().as_bytes()) {
                Ok(()) => buffer.clear(),
                Err(_) => stream = None,
            }
        }
    }
}

fn connect(address: &str) -> std::io::Result<TcpStream> {
    let mut last = std::io::Error::new(
        std::io::ErrorKind::AddrNotAvailable,
        "the address resolves to nothing",
    );
    for candidate in address.to_socket_addrs()? {
        match TcpStream::connect_timeout(&candidate, IO_TIMEOUT) {
            Ok(stream) => {
                stream.set_write_timeout(Some(IO_TIMEOUT))?;
                return Ok(stream);
            }
            Err(error) => last = error,
        }
    }
    Err(last)
}
