//! The thread that writes lines to carbon: one connection, reconnect with
//! backoff, a bounded buffer in between. It runs beside the program and
//! never makes recording wait.
//!
//! An outage (carbon refuses, does not answer, or stops reading) is logged
//! once when it starts and once when it ends, with the lines dropped
//! meanwhile. A connection given up on is reset, not merely closed, so the
//! kernel does not keep trying to deliver what was queued on it.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::GraphiteHandle;
use crate::buffer::LineBuffer;

const FIRST_WAIT: Duration = Duration::from_millis(100);
const LONGEST_WAIT: Duration = Duration::from_secs(30);
/// What the kernel may hold for carbon on one connection: a few seconds of
/// any realistic report, and a bound on what a stuck carbon can pin.
const SEND_BUFFER: usize = 256 * 1024;

/// Where and how to push.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) address: String,
    pub(crate) interval: Duration,
    pub(crate) buffer_lines: usize,
    /// How long a connect or a write may take before carbon counts as down.
    pub(crate) timeout: Duration,
}

pub(crate) fn spawn(handle: GraphiteHandle, settings: Settings) {
    let spawned = std::thread::Builder::new()
        .name("graphite-exporter".into())
        .spawn(move || push(handle, settings));
    if let Err(error) = spawned {
        tracing::error!(%error, "metrics-exporter-graphite cannot start its thread");
    }
}

/// Whether carbon is reachable, so each change is logged once.
struct Outage {
    /// Lines dropped when the outage began; `None` while carbon is up.
    began_with_dropped: Option<u64>,
}

impl Outage {
    fn failed(&mut self, address: &str, error: &std::io::Error, dropped: u64) {
        if self.began_with_dropped.is_none() {
            tracing::warn!(%address, %error, "carbon unreachable; metrics wait in a bounded buffer");
            self.began_with_dropped = Some(dropped);
        }
    }

    fn delivered(&mut self, address: &str, dropped: u64) {
        if let Some(before) = self.began_with_dropped.take() {
            tracing::info!(%address, dropped_lines = dropped - before, "carbon reachable again");
        }
    }
}

fn push(handle: GraphiteHandle, settings: Settings) {
    let mut buffer = LineBuffer::new(settings.buffer_lines);
    let mut stream: Option<TcpStream> = None;
    let mut wait = FIRST_WAIT;
    let mut next_attempt = Instant::now();
    let mut next_tick = Instant::now() + settings.interval;
    let mut outage = Outage {
        began_with_dropped: None,
    };
    loop {
        std::thread::sleep(next_tick.saturating_duration_since(Instant::now()));
        next_tick += settings.interval;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|since| since.as_secs())
            .unwrap_or(0);
        buffer.extend(handle.render(now));
        handle.record_dropped(buffer.dropped());
        if stream.is_none() && Instant::now() >= next_attempt {
            match connect(&settings.address, settings.timeout) {
                Ok(connected) => stream = Some(connected),
                Err(error) => {
                    outage.failed(&settings.address, &error, buffer.dropped());
                    next_attempt = Instant::now() + wait;
                    wait = (wait * 2).min(LONGEST_WAIT);
                }
            }
        }
        if let Some(connected) = stream.take() {
            match (&connected).write_all(buffer.joined().as_bytes()) {
                Ok(()) => {
                    buffer.clear();
                    wait = FIRST_WAIT;
                    outage.delivered(&settings.address, buffer.dropped());
                    stream = Some(connected);
                }
                Err(error) => {
                    outage.failed(&settings.address, &error, buffer.dropped());
                    abandon(connected);
                    next_attempt = Instant::now() + wait;
                    wait = (wait * 2).min(LONGEST_WAIT);
                }
            }
        }
    }
}

fn connect(address: &str, timeout: Duration) -> std::io::Result<TcpStream> {
    let mut last = std::io::Error::new(
        std::io::ErrorKind::AddrNotAvailable,
        "the address resolves to nothing",
    );
    for candidate in address.to_socket_addrs()? {
        match TcpStream::connect_timeout(&candidate, timeout) {
            Ok(stream) => {
                stream.set_write_timeout(Some(timeout))?;
                socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER)?;
                return Ok(stream);
            }
            Err(error) => last = error,
        }
    }
    Err(last)
}

/// Closes a connection to a carbon that stopped reading with a reset
/// (`SO_LINGER` 0): the lines queued on it are given up now instead of
/// lingering in the kernel. A partial line never gets its newline, so
/// carbon cannot take it for a whole one.
fn abandon(stream: TcpStream) {
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}
