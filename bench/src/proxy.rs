//! The programs measured: wishbone on a bootstrap, or a socat hop.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running proxy: where to send, and the process to measure.
pub struct Proxy {
    pub child: Child,
    /// A second process the first one sends to (a hop between two), stopped after it.
    pub next: Option<Box<Proxy>>,
    pub input_port: u16,
    /// What runs, for messages.
    program: &'static str,
}

impl Proxy {
    /// `wishbone start` on the bootstrap; the input's port comes from its log.
    pub fn wishbone(
        binary: &Path,
        dir: &Path,
        bootstrap: &str,
        extra: &[&str],
    ) -> anyhow::Result<Proxy> {
        Self::start_wishbone(binary, dir, bootstrap, extra, |line| {
            // `listening module=input address=…`, not the graph page's address.
            let address = line
                .split("listening module=")
                .nth(1)?
                .split("address=")
                .nth(1)?;
            address
                .split_whitespace()
                .next()?
                .rsplit(':')
                .next()?
                .parse()
                .ok()
        })
    }

    /// `wishbone start` on a bootstrap without a tcp input (one that
    /// consumes from elsewhere); started once it logs that it is starting.
    pub fn wishbone_without_input(
        binary: &Path,
        dir: &Path,
        bootstrap: &str,
    ) -> anyhow::Result<Proxy> {
        Self::start_wishbone(binary, dir, bootstrap, &[], |line| {
            line.contains("starting").then_some(0)
        })
    }

    /// Starts `wishbone start` and reads its log (on standard error) until
    /// `ready` finds the input's port in a line.
    fn start_wishbone(
        binary: &Path,
        dir: &Path,
        bootstrap: &str,
        extra: &[&str],
        ready: impl Fn(&str) -> Option<u16>,
    ) -> anyhow::Result<Proxy> {
        let config = dir.join("bench.yaml");
        std::fs::write(&config, bootstrap)?;
        let mut child = Command::new(binary)
            .arg("start")
            .arg("--config")
            .arg(&config)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut lines = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        let port = loop {
            let line = lines
                .next()
                .ok_or_else(|| anyhow::anyhow!("wishbone ended before it was ready"))??;
            if let Some(port) = ready(&line) {
                break port;
            }
        };
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Proxy {
            child,
            next: None,
            input_port: port,
            program: "wishbone",
        })
    }

    /// A program that reads its input itself (a file) and sends it on:
    /// nothing listens, nothing is sent to it.
    pub fn reader(mut command: Command, program: &'static str) -> anyhow::Result<Proxy> {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|error| anyhow::anyhow!("cannot run {program}: {error}"))?;
        Ok(Proxy {
            child,
            next: None,
            input_port: 0,
            program,
        })
    }

    /// `socat -u -b BLOCK TCP-LISTEN:… TCP:…`: one hop, the baseline.
    pub fn socat(block: usize, target_port: u16) -> anyhow::Result<Proxy> {
        let port = free_port()?;
        let mut command = Command::new("socat");
        command
            .args(["-u", "-b", &block.to_string()])
            .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr"))
            .arg(format!("TCP:127.0.0.1:{target_port}"));
        Self::listening_on(command, port, "socat", "socat")
    }

    /// Runs `command` and waits until it listens on `port`; `package` is
    /// what to install when it is missing.
    pub(crate) fn listening_on(
        mut command: Command,
        port: u16,
        program: &'static str,
        package: &str,
    ) -> anyhow::Result<Proxy> {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|error| {
                anyhow::anyhow!("cannot run {program} (apt-get install {package}): {error}")
            })?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !listening(port) {
            anyhow::ensure!(Instant::now() < deadline, "{program} did not listen");
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(Proxy {
            child,
            next: None,
            input_port: port,
            program,
        })
    }

    /// `rsyslogd -n` on a configuration from [`crate::scenarios::rsyslog`]
    /// with `queue`, in a directory of its own.
    pub fn rsyslog(dir: &Path, target_port: u16, queue: &str) -> anyhow::Result<Proxy> {
        let port = free_port()?;
        let config = crate::scenarios::rsyslog(dir, port, target_port, queue);
        Self::rsyslog_with(dir, port, &config)
    }

    /// `rsyslogd -n` on `config`, which listens on `port`, in a directory
    /// of its own.
    pub fn rsyslog_with(dir: &Path, port: u16, config: &str) -> anyhow::Result<Proxy> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir)?;
        let path = dir.join("rsyslog.conf");
        std::fs::write(&path, config)?;
        let mut command = Command::new("rsyslogd");
        command
            .arg("-n")
            .arg("-f")
            .arg(&path)
            .arg("-i")
            .arg(dir.join("rsyslog.pid"));
        Self::listening_on(command, port, "rsyslogd", "rsyslog")
    }

    /// Two proxies in a row: `first` sends to `then`; data goes to
    /// `first`, and both are measured and stopped.
    pub fn hop(first: Proxy, then: Proxy) -> Proxy {
        Proxy {
            next: Some(Box::new(then)),
            ..first
        }
    }

    /// Every process of the proxy.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids = vec![self.child.id()];
        if let Some(next) = &self.next {
            pids.extend(next.pids());
        }
        pids
    }

    /// SIGKILL, for a proxy whose drain could never finish (its backends are down).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(next) = self.next.take() {
            next.kill();
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then wait; SIGKILL after 10 s (socat has been seen to sit
    /// in poll after SIGTERM once its peer had closed).
    pub fn stop(mut self) {
        let next = self.next.take();
        self.stop_own();
        if let Some(next) = next {
            next.stop();
        }
    }

    fn stop_own(mut self) {
        // SAFETY: kill(2) on our child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!(
            "{} (pid {}) ignored SIGTERM for 10 s; killing it",
            self.program,
            self.child.id()
        );
        self.kill();
    }
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Whether something listens on the loopback port (read from /proc, so the
/// check does not take socat's one connection).
fn listening(port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let local = fields.get(1).and_then(|address| address.rsplit(':').next());
        local.and_then(|hex| u16::from_str_radix(hex, 16).ok()) == Some(port)
            && fields.get(3) == Some(&"0A")
    })
}
