//! A TCP receiver that fingerprints what arrives, on its own thread.

use std::io::Read;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::data::Fingerprint;

/// What a receiver got so far, and when its last line came.
#[derive(Clone, Copy, Debug, Default)]
pub struct Received {
    pub fingerprint: Fingerprint,
    pub last: Option<Instant>,
}

pub struct Receiver {
    pub port: u16,
    state: Arc<Mutex<Received>>,
}

impl Receiver {
    /// Listens on a free loopback port and takes every connection.
    pub fn start() -> anyhow::Result<Receiver> {
        Self::serving(receive)
    }

    /// A websocket server on a free loopback port: each frame is a line.
    pub fn start_websocket() -> anyhow::Result<Receiver> {
        Self::serving(receive_frames)
    }

    fn serving(serve: fn(std::net::TcpStream, Arc<Mutex<Received>>)) -> anyhow::Result<Receiver> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(Mutex::new(Received::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || serve(stream, shared));
            }
        });
        Ok(Receiver { port, state })
    }

    pub fn received(&self) -> Received {
        *self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn receive(mut stream: std::net::TcpStream, state: Arc<Mutex<Received>>) {
    let mut buffer = vec![0u8; 256 * 1024];
    let mut carried = 0;
    loop {
        let read = match stream.read(&mut buffer[carried..]) {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        let filled = carried + read;
        let mut fingerprint = Fingerprint::default();
        let rest = fingerprint.add_lines(&buffer[..filled]);
        buffer.copy_within(filled - rest..filled, 0);
        carried = rest;
        if carried == buffer.len() {
            buffer.resize(buffer.len() * 2, 0);
        }
        let mut shared = state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        shared.fingerprint = shared.fingerprint.combine(fingerprint);
        if fingerprint.lines > 0 {
            shared.last = Some(Instant::now());
        }
    }
}

fn receive_frames(stream: std::net::TcpStream, state: Arc<Mutex<Received>>) {
    let Ok(mut socket) = tungstenite::accept(stream) else {
        return;
    };
    let mut line = Vec::with_capacity(256);
    while let Ok(message) = socket.read() {
        if !(message.is_text() || message.is_binary()) {
            continue;
        }
        line.clear();
        line.extend_from_slice(&message.into_data());
        line.push(b'\n');
        let mut fingerprint = Fingerprint::default();
        fingerprint.add_lines(&line);
        let mut shared = state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        shared.fingerprint = shared.fingerprint.combine(fingerprint);
        shared.last = Some(Instant::now());
    }
}
