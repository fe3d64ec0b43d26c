//! A stand-in for carbon's plaintext port that keeps the latest value of
//! every path it is sent: what a test reads a running server's metrics from
//! (`--graphite 127.0.0.1:PORT`), without a Graphite installation.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

pub struct PlaintextMetrics {
    pub port: u16,
    latest: Arc<Mutex<HashMap<String, f64>>>,
}

impl PlaintextMetrics {
    /// Listens on a port the system picks, accepting any number of senders.
    pub fn start() -> PlaintextMetrics {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a metrics port");
        let port = listener.local_addr().unwrap().port();
        let latest = Arc::new(Mutex::new(HashMap::new()));
        let shared = latest.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(stream).lines().map_while(Result::ok) {
                        let mut fields = line.split_whitespace();
                        if let (Some(path), Some(value)) = (fields.next(), fields.next())
                            && let Ok(value) = value.parse::<f64>()
                        {
                            shared.lock().unwrap().insert(path.to_string(), value);
                        }
                    }
                });
            }
        });
        PlaintextMetrics { port, latest }
    }

    /// The latest value of the path ending in `suffix` (such as
    /// `.module.wal.kept`), if any was sent.
    pub fn latest(&self, suffix: &str) -> Option<f64> {
        let latest = self.latest.lock().unwrap();
        latest
            .iter()
            .find(|(path, _)| path.ends_with(suffix))
            .map(|(_, value)| *value)
    }

    /// Forgets every value, so that what is read next was sent after this.
    pub fn clear(&self) {
        self.latest.lock().unwrap().clear();
    }

    /// The `--graphite` argument that sends here.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}
