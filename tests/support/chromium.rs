//! Real headless Chromium driven over the DevTools protocol: open a page,
//! evaluate expressions in it, take screenshots, the page staying loaded
//! between looks (which a `--dump-dom` per look could not show).

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::stream::MaybeTlsStream;
use tokio_tungstenite::tungstenite::{self, Message, WebSocket};

use crate::http;

pub struct Chromium {
    child: Child,
    page: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Chromium {
    /// Starts Chromium on `url` with a profile in `dir`; fails loudly when
    /// it is not installed.
    pub fn open(dir: &Path, url: &str) -> Chromium {
        crate::require_installed(
            "command -v chromium",
            "chromium is missing: this test needs a real browser (`apt-get install chromium`, which scripts/test does)",
        );
        // Its own process group: `chromium` is a script starting the browser,
        // which starts more processes; all of them end with the test.
        let mut child = Command::new("chromium")
            .process_group(0)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1400,760",
            ])
            .arg(format!(
                "--user-data-dir={}",
                dir.join("chromium").display()
            ))
            .arg(url)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        let (found, listening) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(address) = line.strip_prefix("DevTools listening on ") {
                    let _ = found.send(address.to_string());
                }
            }
        });
        let browser = listening
            .recv_timeout(Duration::from_secs(60))
            .expect("chromium to print its DevTools address");
        let port: u16 = browser
            .trim_start_matches("ws://127.0.0.1:")
            .split('/')
            .next()
            .and_then(|port| port.parse().ok())
            .expect("a port in the DevTools address");
        let mut target = None;
        crate::wait_until(Duration::from_secs(30), "chromium's page target", || {
            let Ok(answer) = http::request(port, "GET", "/json/list", None) else {
                return false;
            };
            target = answer.json().as_array().and_then(|targets| {
                targets
                    .iter()
                    .find(|t| t["type"] == "page")
                    .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(str::to_string))
            });
            target.is_some()
        });
        let (page, _) = tungstenite::connect(target.unwrap()).expect("connect to the page");
        Chromium {
            child,
            page,
            next_id: 0,
        }
    }

    /// Calls a DevTools method and returns its result.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let request = json!({"id": id, "method": method, "params": params});
        self.page
            .send(Message::text(request.to_string()))
            .expect("send to chromium");
        loop {
            let message = self.page.read().expect("read from chromium");
            let Message::Text(text) = message else {
                continue;
            };
            let answer: Value = serde_json::from_str(&text).unwrap();
            if answer["id"] == id {
                assert!(answer["error"].is_null(), "{method}: {answer}");
                return answer["result"].clone();
            }
        }
    }

    /// The value of a JavaScript expression in the page.
    pub fn evaluate(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        assert!(
            result["exceptionDetails"].is_null(),
            "{expression}: {result}"
        );
        result["result"]["value"].clone()
    }

    /// A PNG of what the page shows now.
    pub fn screenshot(&mut self, file: &Path) {
        let result = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let data = base64::engine::general_purpose::STANDARD
            .decode(result["data"].as_str().expect("image data"))
            .expect("base64");
        std::fs::write(file, data).expect("write the screenshot");
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // SAFETY: signals the process group this test started; no Rust state.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}
