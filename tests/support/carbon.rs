//! A real Graphite carbon daemon (Debian's graphite-carbon) on loopback,
//! with every path in a scratch directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{free_port, wait_until};

pub struct Carbon {
    child: Child,
    pub port: u16,
    storage: PathBuf,
}

impl Carbon {
    /// Starts carbon-cache in the foreground; fails loudly when it is not installed.
    pub fn start(dir: &Path) -> Carbon {
        crate::require_installed(
            "command -v carbon-cache && command -v whisper-fetch",
            "carbon-cache and whisper-fetch are missing: this test needs a real Graphite carbon \
             (`apt-get install graphite-carbon python3-whisper`, which scripts/test does)",
        );
        let conf = dir.join("conf");
        let storage = dir.join("storage");
        for sub in [
            conf.clone(),
            storage.join("whisper"),
            storage.join("lists"),
            dir.join("log"),
        ] {
            std::fs::create_dir_all(sub).unwrap();
        }
        let port = free_port();
        let config = format!(
            "[cache]\nSTORAGE_DIR = {storage}\nLOCAL_DATA_DIR = {storage}/whisper\nWHITELISTS_DIR = {storage}/lists\n\
             CONF_DIR = {conf}\nLOG_DIR = {log}\nPID_DIR = {dir}\nENABLE_LOGROTATION = False\nENABLE_TAGS = False\nUSER =\n\
             MAX_CACHE_SIZE = inf\nMAX_UPDATES_PER_SECOND = inf\nMAX_CREATES_PER_MINUTE = inf\n\
             LINE_RECEIVER_INTERFACE = 127.0.0.1\nLINE_RECEIVER_PORT = {port}\nENABLE_UDP_LISTENER = False\n\
             PICKLE_RECEIVER_INTERFACE = 127.0.0.1\nPICKLE_RECEIVER_PORT = 0\nCACHE_QUERY_INTERFACE = 127.0.0.1\n\
             CACHE_QUERY_PORT = 0\nCARBON_METRIC_INTERVAL = 0\n",
            storage = storage.display(),
            conf = conf.display(),
            log = dir.join("log").display(),
            dir = dir.display(),
        );
        std::fs::write(conf.join("carbon.conf"), config).unwrap();
        std::fs::write(
            conf.join("storage-schemas.conf"),
            "[default]\npattern = .*\nretentions = 1s:1h\n",
        )
        .unwrap();
        let child = Command::new("carbon-cache")
            .arg(format!("--config={}", conf.join("carbon.conf").display()))
            .args(["--debug", "start"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start carbon-cache");
        wait_until(Duration::from_secs(60), "carbon to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Carbon {
            child,
            port,
            storage,
        }
    }

    /// The directory of carbon's whisper files, which graphite-web reads.
    pub fn whisper_dir(&self) -> PathBuf {
        self.storage.join("whisper")
    }

    /// The latest value carbon stored for a dotted metric path, if any.
    pub fn latest(&self, path: &str) -> Option<f64> {
        let file = self
            .storage
            .join("whisper")
            .join(path.replace('.', "/") + ".wsp");
        if !file.exists() {
            return None;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let output = Command::new("whisper-fetch")
            .arg(format!("--from={}", now - 600))
            .arg(&file)
            .output()
            .ok()?;
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|row| row.split_whitespace().nth(1)?.parse::<f64>().ok())
            .next_back()
    }

    /// Waits until carbon holds `value` as the latest value of `path`.
    pub fn wait_for(&self, path: &str, value: f64) {
        let mut seen = None;
        wait_until(
            Duration::from_secs(60),
            &format!("{path} = {value} in carbon"),
            || {
                seen = self.latest(path);
                seen == Some(value)
            },
        );
    }
}

impl Drop for Carbon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// This machine's name as a metric path segment.
pub fn hostname_segment() -> String {
    let name =
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "localhost".into());
    name.trim()
        .chars()
        .map(|c| {
            if c == '.' || c == '/' || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect()
}
