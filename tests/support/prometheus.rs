//! A real Prometheus (Debian's `prometheus`) on loopback, scraping one
//! target every second, with its storage in a scratch directory; and its
//! query API.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, wait_until};

pub struct Prometheus {
    child: Child,
    pub port: u16,
}

impl Prometheus {
    /// Starts Prometheus scraping `127.0.0.1:target` at `path` every second.
    pub fn start(dir: &Path, target: u16, path: &str) -> Prometheus {
        crate::require_installed(
            "command -v prometheus && command -v promtool",
            "prometheus is missing: this test needs a real one \
             (`apt-get install prometheus`, which scripts/test does)",
        );
        std::fs::create_dir_all(dir).unwrap();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: wishbone\n    metrics_path: {path}\n    static_configs: [{{targets: ['127.0.0.1:{target}']}}]\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let prometheus = Prometheus { child, port };
        wait_until(Duration::from_secs(60), "prometheus to be ready", || {
            crate::http::request(port, "GET", "/-/ready", None)
                .is_ok_and(|answer| answer.status == 200)
        });
        prometheus
    }

    /// The value of an instant query's first result; none while it has none.
    pub fn query(&self, query: &str) -> Option<f64> {
        let path = format!("/api/v1/query?query={}", crate::http::encode(query));
        let answer = crate::http::request(self.port, "GET", &path, None).ok()?;
        let json = answer.json();
        json["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|value| value.parse().ok())
    }

    /// How many series an instant query returns.
    pub fn series(&self, query: &str) -> usize {
        let path = format!("/api/v1/query?query={}", crate::http::encode(query));
        crate::http::request(self.port, "GET", &path, None)
            .ok()
            .and_then(|answer| answer.json()["data"]["result"].as_array().map(Vec::len))
            .unwrap_or(0)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
