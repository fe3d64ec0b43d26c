//! A real ClickHouse (Debian's `clickhouse-server`) on loopback ports, its
//! data in a scratch directory, as in `../shared/reference/clickhouse.md`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::http::{encode, request};
use crate::{free_port, wait_until};

pub struct ClickHouse {
    child: Child,
    /// Its HTTP port.
    pub port: u16,
    config: PathBuf,
}

impl ClickHouse {
    /// Starts one with its data under `dir`, and waits until it answers.
    pub fn start(dir: &Path) -> ClickHouse {
        crate::require_installed(
            "command -v clickhouse-server",
            "clickhouse-server is missing: `apt-get install clickhouse-server`, which scripts/test does",
        );
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let port = free_port();
        let config = dir.join("config.xml");
        std::fs::write(
            &config,
            format!(
                "<yandex>\n  <logger><level>warning</level><console>1</console></logger>\n  \
                 <http_port>{port}</http_port><tcp_port>{}</tcp_port><listen_host>127.0.0.1</listen_host>\n  \
                 <path>{}/data/</path><tmp_path>{}/tmp/</tmp_path>\n  \
                 <users_config>/etc/clickhouse-server/users.xml</users_config>\n  \
                 <default_profile>default</default_profile><default_database>default</default_database>\n  \
                 <mark_cache_size>536870912</mark_cache_size>\n</yandex>\n",
                free_port(),
                dir.display(),
                dir.display()
            ),
        )
        .unwrap();
        let clickhouse = ClickHouse {
            child: Self::spawn(&config),
            port,
            config,
        };
        clickhouse.wait_ready();
        clickhouse
    }

    fn spawn(config: &Path) -> Child {
        Command::new("clickhouse-server")
            .arg(format!("--config-file={}", config.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start clickhouse-server")
    }

    fn wait_ready(&self) {
        wait_until(Duration::from_secs(60), "ClickHouse to answer", || {
            request(self.port, "GET", "/ping", None).is_ok_and(|answer| answer.status == 200)
        });
    }

    /// Runs a statement; its answer's text.
    pub fn query(&self, statement: &str) -> String {
        let answer = request(
            self.port,
            "POST",
            &format!("/?query={}", encode(statement)),
            None,
        )
        .unwrap_or_else(|error| panic!("{statement}: {error}"));
        assert_eq!(answer.status, 200, "{statement}: {}", answer.text());
        answer.text()
    }

    pub fn signal(&self, signal: i32) {
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// SIGKILL, then the same server on the same data and port.
    pub fn restart_after_kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Self::spawn(&self.config);
        self.wait_ready();
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
