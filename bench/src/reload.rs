//! How long a reload takes: from SIGHUP to the `reloaded` line, for a
//! scenario III-sized file whose input is unchanged and whose last output
//! changes each time (one module replaced); beside the baseline of a
//! restart with the same change (SIGTERM, exit, start, listening again).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::proxy::free_port;

/// Reload and restart times, in milliseconds.
#[derive(Debug, serde::Serialize)]
pub struct ReloadFigures {
    pub reloads: usize,
    pub reload_median_ms: f64,
    pub reload_max_ms: f64,
    pub restarts: usize,
    pub restart_median_ms: f64,
}

/// Scenario III: a primary output failing over through `failed` and a
/// funnel to a backup; `variant` changes the backup's arguments only.
fn scenario(ports: [u16; 3], variant: usize) -> String {
    format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: {}}}}}\n  \
         primary: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {}, failed: true}}}}\n  \
         funnel: {{module: wishbone.flow.funnel}}\n  \
         backup: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {}, reconnect_max: {}}}}}\n\
         routingtable:\n  - input.outbox -> primary.inbox\n  - primary.failed -> funnel.one\n  - funnel.outbox -> backup.inbox\n",
        ports[0],
        ports[1],
        ports[2],
        1 + variant % 2
    )
}

/// A server and its log lines, as they come, with when they came.
struct Server {
    child: Child,
    lines: mpsc::Receiver<(Instant, String)>,
}

impl Server {
    fn start(binary: &Path, config: &Path) -> anyhow::Result<Server> {
        let mut child = Command::new(binary)
            .args(["start", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().expect("piped stderr");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if send.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        Ok(Server { child, lines })
    }

    /// When the next line holding `needle` came.
    fn wait_for(&self, needle: &str) -> anyhow::Result<Instant> {
        loop {
            let (at, line) = self.lines.recv_timeout(Duration::from_secs(30))?;
            if line.contains(needle) {
                return Ok(at);
            }
        }
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// `reloads` reloads of one server, then `restarts` restarts.
pub fn measure(
    binary: &Path,
    scratch: &Path,
    reloads: usize,
    restarts: usize,
) -> anyhow::Result<ReloadFigures> {
    let dir = scratch.join("reload");
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("scenario-3.yaml");
    let ports = [free_port()?, free_port()?, free_port()?];
    std::fs::write(&config, scenario(ports, 0))?;
    let mut server = Server::start(binary, &config)?;
    server.wait_for("listening module=input")?;
    let mut reload_ms = Vec::new();
    for variant in 1..=reloads {
        std::fs::write(&config, scenario(ports, variant))?;
        let sent = Instant::now();
        server.signal(libc::SIGHUP);
        let done = server.wait_for("reloaded:")?;
        reload_ms.push(done.duration_since(sent).as_secs_f64() * 1000.0);
    }
    let mut restart_ms = Vec::new();
    for variant in 0..restarts {
        std::fs::write(&config, scenario(ports, variant))?;
        let sent = Instant::now();
        server.signal(libc::SIGTERM);
        server.child.wait()?;
        server = Server::start(binary, &config)?;
        let done = server.wait_for("listening module=input")?;
        restart_ms.push(done.duration_since(sent).as_secs_f64() * 1000.0);
    }
    server.signal(libc::SIGTERM);
    server.child.wait()?;
    Ok(ReloadFigures {
        reloads,
        reload_max_ms: reload_ms.iter().copied().fold(0.0, f64::max),
        reload_median_ms: median(reload_ms),
        restarts,
        restart_median_ms: median(restart_ms),
    })
}
