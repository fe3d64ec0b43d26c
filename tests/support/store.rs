//! An HTTP store in the test process, for `wishbone.output.http`: it reads
//! each request (HTTP/1.1, keep-alive), asks the test what to answer, and
//! keeps the lines of the requests it accepted.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What the test answers to a request: `None` accepts it (200), `Some`
/// is the status line's rest and what follows (`"503 ...\r\n..."`), and
/// an empty `Some` closes the connection without a word.
pub type Answering = dyn Fn(usize, &[u8]) -> Option<String> + Send + Sync;

/// What the store saw.
#[derive(Default)]
pub struct Seen {
    /// The lines of accepted requests, in the order they were accepted.
    pub accepted: Vec<Vec<u8>>,
    /// Requests read, answered or not.
    pub requests: usize,
    /// The lines of each accepted request, by request.
    pub batches: Vec<usize>,
}

/// A store on a free loopback port; clones share what it saw.
#[derive(Clone)]
pub struct Store {
    pub port: u16,
    pub seen: Arc<Mutex<Seen>>,
    /// Requests being answered now, and the most at once.
    in_flight: Arc<AtomicUsize>,
    pub most_in_flight: Arc<AtomicUsize>,
}

impl Store {
    /// Starts the store; `answering` decides each request's fate from its
    /// number (from 1) and its body.
    pub fn start(
        answering: impl Fn(usize, &[u8]) -> Option<String> + Send + Sync + 'static,
    ) -> Store {
        Self::start_on(0, answering)
    }

    /// The same on a given port (a store that comes up where an output
    /// has been failing to connect).
    pub fn start_on(
        port: u16,
        answering: impl Fn(usize, &[u8]) -> Option<String> + Send + Sync + 'static,
    ) -> Store {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let store = Store {
            port,
            seen: Arc::default(),
            in_flight: Arc::default(),
            most_in_flight: Arc::default(),
        };
        let answering: Arc<Answering> = Arc::new(answering);
        let shared = store.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (shared, answering) = (shared.clone(), answering.clone());
                std::thread::spawn(move || shared.serve(stream, &*answering));
            }
        });
        store
    }

    fn serve(&self, stream: TcpStream, answering: &Answering) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        while let Some(body) = read_request(&mut reader) {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_in_flight.fetch_max(now, Ordering::SeqCst);
            let number = {
                let mut seen = self.seen.lock().unwrap();
                seen.requests += 1;
                seen.requests
            };
            let answer = answering(number, &body);
            if answer.is_none() {
                let lines: Vec<Vec<u8>> = body
                    .split(|byte| *byte == b'\n')
                    .filter(|line| !line.is_empty())
                    .map(<[u8]>::to_vec)
                    .collect();
                let mut seen = self.seen.lock().unwrap();
                seen.batches.push(lines.len());
                seen.accepted.extend(lines);
            }
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            let answer = answer.unwrap_or_else(|| "200 OK\r\nContent-Length: 2\r\n\r\nok".into());
            if answer.is_empty() {
                return;
            }
            if writer
                .write_all(format!("HTTP/1.1 {answer}").as_bytes())
                .is_err()
            {
                return;
            }
        }
    }
}

/// The body of the next request on a connection; none once it closed.
fn read_request(reader: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut length = 0;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    Some(body)
}
