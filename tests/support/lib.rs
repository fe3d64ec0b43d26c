//! Helpers for the end-to-end tests: run the `wishbone` binary on a
//! bootstrap, run `wishbone-sink` peers, send lines, wait for conditions with
//! deadlines (never fixed sleeps as synchronisation).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

mod carbon;
pub use carbon::{Carbon, hostname_segment};
mod metrics;
pub use metrics::PlaintextMetrics;
mod rsyslog;
pub use rsyslog::Rsyslog;
mod clickhouse;
pub mod rotation;
pub use clickhouse::ClickHouse;
pub mod nats;
pub use nats::Nats;
pub mod chromium;
pub mod tls;
pub use chromium::Chromium;
mod graphite_web;
pub mod http;
mod prometheus;
pub mod store;
pub use graphite_web::GraphiteWeb;
pub use prometheus::Prometheus;

/// Where cargo put the binaries of this workspace, found from the test's own path.
pub fn binary(name: &str) -> PathBuf {
    let test = std::env::current_exe().expect("the test's path");
    let dir = test
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace`",
        path.display()
    );
    path
}

/// A fresh directory for one test's files, removed with everything in it
/// when the test ends, passed or failed (the NATS and wal tests leave
/// hundreds of megabytes each). `WISHBONE_KEEP_SCRATCH=1` keeps it for a
/// look.
pub fn scratch_dir(test: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("wishbone-e2e-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    Scratch(dir)
}

/// See [`scratch_dir`].
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("WISHBONE_KEEP_SCRATCH").is_some() {
            eprintln!("kept {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Fails the test with `missing` unless the shell command `check` succeeds
/// (`command -v carbon-cache`): a test needing a real peer says what to install.
pub fn require_installed(check: &str, missing: &str) {
    let installed = Command::new("sh").args(["-c", check]).output();
    assert!(
        installed.is_ok_and(|output| output.status.success()),
        "{missing}"
    );
}

/// Polls `condition` until it holds or `limit` passes.
pub fn wait_until(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Bytes in each line of [`numbered_lines`], newline included.
pub const NUMBERED_LINE_LENGTH: usize = 100;

/// `count` numbered lines of exactly 100 bytes: every line is different, so
/// a loss, a duplicate or a reordering shows.
pub fn numbered_lines(count: usize) -> Vec<u8> {
    let mut data = Vec::with_capacity(count * NUMBERED_LINE_LENGTH);
    for number in 0..count {
        writeln!(
            data,
            "{number:010} {:.<88}",
            "the quick brown fox jumps over the lazy dog"
        )
        .unwrap();
    }
    debug_assert_eq!(data.len(), count * NUMBERED_LINE_LENGTH);
    data
}

pub fn sha256(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Lines as a sorted list, to compare contents whatever the order.
pub fn sorted_lines(data: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = data.split_inclusive(|byte| *byte == b'\n').collect();
    lines.sort_unstable();
    lines
}

/// Sends `data` on a new connection and closes it.
pub fn send(port: u16, data: &[u8]) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to wishbone's input");
    stream.write_all(data).expect("send to wishbone's input");
    stream.shutdown(std::net::Shutdown::Write).expect("close");
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Standard output of a child, collected line by line by a thread.
#[derive(Clone, Default)]
pub struct Output(Arc<Mutex<Vec<String>>>);

impl Output {
    /// Collects the lines of `stream` (a child's standard error, say).
    pub fn collect_from(&self, stream: impl std::io::Read + Send + 'static) {
        self.collect(stream)
    }

    fn collect(&self, stream: impl std::io::Read + Send + 'static) {
        let lines = self.0.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
    }

    pub fn text(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }

    /// How many lines so far contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|line| line.contains(needle))
            .count()
    }

    /// The first line containing `needle`, waiting for it up to `limit`.
    pub fn wait_for(&self, needle: &str, limit: Duration) -> String {
        let mut found = None;
        wait_until(
            limit,
            &format!("a line with `{needle}`, have:\n{}", self.text()),
            || {
                found = self
                    .0
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|line| line.contains(needle))
                    .cloned();
                found.is_some()
            },
        );
        found.unwrap()
    }
}

/// CPU seconds (user and system) process `pid` has used, from /proc.
pub fn cpu_seconds(pid: u32) -> f64 {
    stat_cpu_seconds(&format!("/proc/{pid}/stat"))
}

/// CPU seconds of each thread of process `pid`, busiest first.
pub fn thread_cpu_seconds(pid: u32) -> Vec<f64> {
    let mut seconds: Vec<f64> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .filter_map(|task| task.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .map(|tid| stat_cpu_seconds(&format!("/proc/{pid}/task/{tid}/stat")))
        .collect();
    seconds.sort_by(|a, b| b.total_cmp(a));
    seconds
}

/// The user and system CPU seconds of a /proc `stat` file (a process's
/// or a thread's).
fn stat_cpu_seconds(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let Some(end) = stat.rfind(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = stat[end + 1..].split_whitespace().collect();
    let ticks = |index: usize| -> f64 {
        fields
            .get(index)
            .and_then(|field| field.parse().ok())
            .unwrap_or(0.0)
    };
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / per_second
}

/// The value after `key=` in a log line.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!("{key}="))? + key.len() + 1;
    line[start..]
        .split_whitespace()
        .next()
        .map(|value| value.trim_matches('"'))
}

/// A running `wishbone debug`.
pub struct Wishbone {
    child: Child,
    pub output: Output,
}

impl Wishbone {
    /// Writes the bootstrap into `dir` and starts `wishbone debug` on it.
    pub fn start(dir: &Path, bootstrap: &str, extra: &[&str]) -> Wishbone {
        Self::start_limited(dir, bootstrap, extra, None)
    }

    /// As [`Wishbone::start`], with these variables added to its
    /// environment.
    pub fn start_with_env(
        dir: &Path,
        bootstrap: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Wishbone {
        Self::launch(dir, bootstrap, extra, None, env)
    }

    /// As [`Wishbone::start`], with at most `open_files` descriptors (what
    /// `ulimit -n` sets) when given.
    pub fn start_limited(
        dir: &Path,
        bootstrap: &str,
        extra: &[&str],
        open_files: Option<u64>,
    ) -> Wishbone {
        Self::launch(dir, bootstrap, extra, open_files, &[])
    }

    fn launch(
        dir: &Path,
        bootstrap: &str,
        extra: &[&str],
        open_files: Option<u64>,
        env: &[(&str, &str)],
    ) -> Wishbone {
        use std::os::unix::process::CommandExt;
        let config = dir.join("bootstrap.yaml");
        std::fs::write(&config, bootstrap).unwrap();
        let mut command = Command::new(binary("wishbone"));
        command
            .arg("debug")
            .arg("--config")
            .arg(&config)
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(limit) = open_files {
            // SAFETY: setrlimit is async-signal-safe; it runs in the child.
            unsafe {
                command.pre_exec(move || {
                    let rlimit = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let mut child = command.spawn().expect("start wishbone");
        let output = Output::default();
        output.collect(child.stdout.take().unwrap());
        output.collect(child.stderr.take().unwrap());
        Wishbone { child, output }
    }

    /// The port the named tcp input listens on, from its log line.
    pub fn input_port(&self, module: &str) -> u16 {
        self.logged_port(&format!("listening module={module}"))
    }

    /// The port of the `address` field in the first log line holding
    /// `needle` (`graph page`, `serving metrics for Prometheus`).
    pub fn logged_port(&self, needle: &str) -> u16 {
        let line = self.output.wait_for(needle, Duration::from_secs(20));
        let address = field(&line, "address").expect("an address in the line");
        address.rsplit(':').next().unwrap().parse().unwrap()
    }

    pub fn signal(&self, signal: i32) {
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU seconds (user and system) the process has used so far.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds(self.child.id())
    }

    /// Waits for the process to end.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let mut status = None;
        wait_until(limit, "wishbone to exit", || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        std::thread::sleep(Duration::from_millis(50)); // let the reader threads take the last lines
        status.unwrap()
    }

    /// SIGTERM, then the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait(Duration::from_secs(60))
    }

    /// A queue's total from the summary logged at exit.
    pub fn queue_total(&self, queue: &str, stat: &str) -> u64 {
        let line = self.output.wait_for(
            &format!("queue totals queue={queue} "),
            Duration::from_secs(5),
        );
        field(&line, stat)
            .and_then(|value| value.parse().ok())
            .expect("a number")
    }
}

impl Drop for Wishbone {
    /// Kills the server; a failing test shows the end of its log.
    fn drop(&mut self) {
        if std::thread::panicking() {
            let text = self.output.text();
            let tail: Vec<&str> = text.lines().rev().take(60).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            eprintln!("--- the end of wishbone's log ---\n{}", tail.join("\n"));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The article's metrics section routed to carbon on `carbon`, a tcp input
/// to a tcp output to `sink`, and `more` modules (YAML lines under
/// `modules:`).
pub fn carbon_route_bootstrap(carbon: u16, sink: u16, more: &str) -> String {
    format!(
        "metrics:\n  graphite:\n    module: wishbone.builtin.metrics.graphite\nmodules:\n  \
         graphite_server: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {carbon}}}}}\n  \
         input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {sink}}}}}\n{more}\
         routingtable:\n  - graphite.outbox -> graphite_server.inbox\n  - input.outbox -> output.inbox\n"
    )
}

/// A running `wishbone-sink` peer writing what it receives to a file.
pub struct Sink {
    child: Child,
    pub port: u16,
    pub file: PathBuf,
    pub log: Output,
}

impl Sink {
    /// A sink on a port the system picks.
    pub fn start(dir: &Path, name: &str) -> Sink {
        Self::start_on(dir, name, 0, &[])
    }

    /// A sink on a given port (to restart a killed one), with extra flags.
    pub fn start_on(dir: &Path, name: &str, port: u16, extra: &[&str]) -> Sink {
        Self::start_program("wishbone-sink", dir, name, port, extra)
    }

    /// A websocket server (`wishbone-ws-sink`) recording a line per frame.
    pub fn start_websocket(dir: &Path, name: &str, port: u16) -> Sink {
        Self::start_program("wishbone-ws-sink", dir, name, port, &[])
    }

    /// The same server over TLS (`wss://`), with a PEM certificate and key.
    pub fn start_secure_websocket(dir: &Path, name: &str, cert: &Path, key: &Path) -> Sink {
        let (cert, key) = (cert.display().to_string(), key.display().to_string());
        Self::start_program(
            "wishbone-ws-sink",
            dir,
            name,
            0,
            &["--cert", &cert, "--key", &key],
        )
    }

    fn start_program(program: &str, dir: &Path, name: &str, port: u16, extra: &[&str]) -> Sink {
        let file = dir.join(format!("{name}.out"));
        let mut child = Command::new(binary(program))
            .args(["--port", &port.to_string(), "--out"])
            .arg(&file)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start wishbone-sink");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(
            first.starts_with("listening "),
            "wishbone-sink said: {first}"
        );
        let port = first.trim().rsplit(':').next().unwrap().parse().unwrap();
        let log = Output::default();
        log.collect(child.stderr.take().unwrap());
        Sink {
            child,
            port,
            file,
            log,
        }
    }

    /// What arrived so far.
    pub fn received(&self) -> Vec<u8> {
        std::fs::read(&self.file).unwrap_or_default()
    }

    pub fn line_count(&self) -> usize {
        self.received()
            .iter()
            .filter(|byte| **byte == b'\n')
            .count()
    }

    /// Bytes written so far, cheap to poll.
    pub fn byte_count(&self) -> u64 {
        std::fs::metadata(&self.file)
            .map(|meta| meta.len())
            .unwrap_or(0)
    }

    /// Waits until `lines` lines arrived.
    pub fn wait_for_lines(&self, lines: usize, limit: Duration) {
        wait_until(
            limit,
            &format!("{lines} lines at the sink on port {}", self.port),
            || self.line_count() >= lines,
        );
    }

    /// Sends a signal (SIGSTOP, SIGCONT, ...).
    pub fn signal(&self, signal: i32) {
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// SIGTERM and wait: a websocket sink closes its connections properly.
    pub fn terminate(&mut self) {
        self.signal(libc::SIGTERM);
        let _ = self.child.wait();
    }

    /// SIGKILL: the peer vanishes without closing anything itself.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A bootstrap of one tcp input on a free port and one tcp output to `port`.
pub fn proxy_bootstrap(port: u16) -> String {
    format!(
        "modules:\n  input:\n    module: wishbone.input.tcp\n    arguments: {{address: 127.0.0.1, port: 0}}\n  \
         output:\n    module: wishbone.output.tcp\n    arguments: {{host: 127.0.0.1, port: {port}, reconnect_max: 0.2}}\n\
         routingtable:\n  - input.outbox -> output.inbox\n"
    )
}

/// One row of /proc/net/tcp: the kernel's view of an IPv4 TCP socket.
#[derive(Clone, Copy, Debug)]
pub struct TcpSocket {
    pub local_port: u16,
    pub remote_port: u16,
    /// 0x01 established, 0x0A listening.
    pub state: u8,
    /// Bytes written and not yet acknowledged by the peer.
    pub send_queue: u64,
    /// Bytes received that the owning program has not read yet.
    pub receive_queue: u64,
}

/// Every IPv4 TCP socket on the machine.
pub fn tcp_sockets() -> Vec<TcpSocket> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let port = |address: &str| u16::from_str_radix(address.rsplit(':').next()?, 16).ok();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (send, receive) = fields.get(4)?.split_once(':')?;
            Some(TcpSocket {
                local_port: port(fields.get(1)?)?,
                remote_port: port(fields.get(2)?)?,
                state: u8::from_str_radix(fields.get(3)?, 16).ok()?,
                send_queue: u64::from_str_radix(send, 16).ok()?,
                receive_queue: u64::from_str_radix(receive, 16).ok()?,
            })
        })
        .collect()
}

const ESTABLISHED: u8 = 0x01;
/// The state of a listening socket in /proc/net/tcp.
pub const LISTENING: u8 = 0x0A;

/// Bytes received by established connections to local `port` that their
/// program has not read yet: what a SIGKILL of that program would destroy.
pub fn unread_bytes(port: u16) -> u64 {
    tcp_sockets()
        .iter()
        .filter(|socket| socket.local_port == port && socket.state == ESTABLISHED)
        .map(|socket| socket.receive_queue)
        .sum()
}

/// [`unread_bytes`] of a frozen (SIGSTOPped) program once its receive
/// queue stops growing: what a SIGKILL of it would destroy. Senders that
/// work in bursts (a NATS worker between pulls, a loaded machine) may
/// pause for a while, so the queue must stay the same for half a second.
pub fn settled_unread_bytes(port: u16) -> u64 {
    let mut last = u64::MAX;
    let mut unchanged = 0;
    wait_until(
        Duration::from_secs(60),
        "the frozen program's receive queue to settle",
        || {
            let now = unread_bytes(port);
            std::thread::sleep(Duration::from_millis(50));
            unchanged = if std::mem::replace(&mut last, now) == now {
                unchanged + 1
            } else {
                0
            };
            unchanged >= 10
        },
    );
    last
}

/// Bytes on their way to local `port` still held by the kernel: in the
/// senders' send queues and the receiving program's receive queue.
pub fn in_transit(port: u16) -> u64 {
    tcp_sockets()
        .iter()
        .filter(|socket| socket.state == ESTABLISHED)
        .map(
            |socket| match (socket.local_port == port, socket.remote_port == port) {
                (true, _) => socket.receive_queue,
                (_, true) => socket.send_queue,
                _ => 0,
            },
        )
        .sum()
}

/// The number at the start of each line of `numbered_lines`.
pub fn line_numbers(data: &[u8]) -> impl Iterator<Item = usize> + '_ {
    data.split(|byte| *byte == b'\n')
        .filter(|line| line.len() >= 10)
        .filter_map(|line| std::str::from_utf8(&line[..10]).ok()?.parse().ok())
}

/// The article's scenario II with backends on the given ports.
pub fn scenario_2_bootstrap(port_1: u16, port_2: u16, output_arguments: &str) -> String {
    format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         roundrobin: {{module: wishbone.builtin.flow.roundrobin}}\n  \
         output_1: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {port_1}, reconnect_max: 0.2{output_arguments}}}}}\n  \
         output_2: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {port_2}, reconnect_max: 0.2{output_arguments}}}}}\n\
         routingtable:\n  - input.outbox -> roundrobin.inbox\n  - roundrobin.one -> output_1.inbox\n  - roundrobin.two -> output_2.inbox\n"
    )
}

/// The article's scenario III with backends on the given ports.
pub fn scenario_3_bootstrap(port_1: u16, port_2: u16) -> String {
    format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         roundrobin: {{module: wishbone.builtin.flow.roundrobin}}\n  \
         funnel: {{module: wishbone.builtin.flow.funnel}}\n  \
         output_1: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {port_1}, reconnect_max: 0.2}}}}\n  \
         output_2: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {port_2}, reconnect_max: 0.2, failed: true}}}}\n\
         routingtable:\n  - input.outbox -> roundrobin.inbox\n  - roundrobin.one -> funnel.one\n  - roundrobin.two -> output_2.inbox\n  \
         - output_2.failed -> funnel.two\n  - funnel.outbox -> output_1.inbox\n"
    )
}

/// A small generator for randomized tests, seeded from the clock; the seed
/// is printed so that a failure can be replayed.
pub struct Random(pub u64);

impl Random {
    pub fn from_clock() -> Random {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        eprintln!("seed {seed}");
        Random(seed)
    }

    /// A number below `bound` (0 when `bound` is 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound.max(1)
    }

    pub fn bytes(&mut self, count: usize) -> Vec<u8> {
        (0..count).map(|_| self.below(256) as u8).collect()
    }
}

/// Sends numbered lines at about 100,000 a second until told to stop.
pub fn steady_traffic(
    port: u16,
    running: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        use std::io::Write;
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let chunk = numbered_lines(5_000);
        let mut sent = 0;
        while running.load(std::sync::atomic::Ordering::Relaxed) {
            stream.write_all(&chunk).unwrap();
            sent += 5_000;
            std::thread::sleep(Duration::from_millis(50));
        }
        sent
    })
}

/// The largest resident set a process has had, from /proc.
pub fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A tmpfs of a given size mounted for one test, unmounted when dropped.
pub struct SmallDisk(pub PathBuf);

impl SmallDisk {
    /// Mounts one of `size` (`size=8m`) under `dir`, or says why not
    /// (mounting needs root; CI runs as root).
    pub fn mount(dir: &Path, size: &str) -> Result<SmallDisk, String> {
        let path = dir.join("disk");
        std::fs::create_dir_all(&path).map_err(|error| error.to_string())?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", size, "tmpfs"])
            .arg(&path)
            .output()
            .map_err(|error| format!("cannot run mount: {error}"))?;
        if output.status.success() {
            Ok(SmallDisk(path))
        } else {
            Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
        }
    }
}

impl SmallDisk {
    /// An ext4 file system of `megabytes` in an image file under `dir`,
    /// mounted through a loop device: a disk no other test writes to, so
    /// that an inode freed there is the next one given (needs root and
    /// mkfs.ext4).
    pub fn mount_ext4(dir: &Path, megabytes: u64) -> Result<SmallDisk, String> {
        let image = dir.join("disk.img");
        let path = dir.join("disk");
        std::fs::create_dir_all(&path).map_err(|error| error.to_string())?;
        std::fs::File::create(&image)
            .and_then(|file| file.set_len(megabytes << 20))
            .map_err(|error| error.to_string())?;
        let run = |program: &str, args: &[&std::ffi::OsStr]| -> Result<(), String> {
            let output = Command::new(program)
                .args(args)
                .output()
                .map_err(|error| format!("cannot run {program}: {error}"))?;
            match output.status.success() {
                true => Ok(()),
                false => Err(String::from_utf8_lossy(&output.stderr).trim().to_string()),
            }
        };
        run(
            "mkfs.ext4",
            &["-q".as_ref(), "-F".as_ref(), image.as_os_str()],
        )?;
        run(
            "mount",
            &[
                "-o".as_ref(),
                "loop".as_ref(),
                image.as_os_str(),
                path.as_os_str(),
            ],
        )?;
        Ok(SmallDisk(path))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Mounts a small disk, or ends the test with a message saying it was
/// skipped.
#[macro_export]
macro_rules! small_disk_or_skip {
    ($dir:expr, $size:expr) => {
        match $crate::SmallDisk::mount(&$dir, $size) {
            Ok(disk) => disk,
            Err(why) => {
                eprintln!("skipped: cannot mount a tmpfs ({why}); this test needs root");
                return;
            }
        }
    };
}

/// Runs `wishbone check` on a bootstrap file: the exit code, and what it
/// printed on standard error then standard output (never a panic).
pub fn wishbone_check(file: &Path) -> (Option<i32>, String) {
    let output = Command::new(binary("wishbone"))
        .args(["check", "--config"])
        .arg(file)
        .output()
        .expect("run wishbone check");
    let text = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    assert!(!text.contains("panicked"), "{text}");
    (output.status.code(), text)
}
