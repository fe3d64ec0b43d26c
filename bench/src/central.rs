//! The central log server (`--central-messages N`): syslog over UDP and
//! over TCP into a file per host and program, by wishbone (udp and tcp
//! inputs, syslog decoding, the file output), rsyslog (imudp and imtcp to
//! omfile with a dynamic file name) and syslog-ng 3.38 (network() and
//! syslog() to file() with `${HOST}` in the name), each in the settings
//! said below.
//!
//! UDP: the same messages at the same offered rate to each, then counted
//! in the files (written) and in the kernel's drop count for the socket
//! (`/proc/net/udp`); then rates doubling from 50,000 a second, to find
//! the highest each keeps with no loss. TCP: every message over one
//! connection with octet counting, timed until the last is in a file.
//!
//! Settings: wishbone keeps up to 1,000 files open (`max_open_files`,
//! 256 by default), queues of 200,000 events (`--queue-size`, 1,000 by
//! default) and an 8 MiB receive buffer; rsyslog a cache of 1,000
//! files (`dynaFileCacheSize`), 256 KiB buffers written asynchronously, a
//! main queue of 200,000 and batches of 128 datagrams (imudp) and 1,024
//! messages, an 8 MiB receive buffer; syslog-ng flushes every 1,000 lines,
//! fetches 1,000 messages at a time, with a window and a queue of 200,000
//! and an 8 MiB receive buffer. net.core.rmem_max is raised to 16 MiB for
//! the runs, so that syslog-ng's buffer is what it asks for too.
//!
//! syslog-ng is unpacked from Debian's package into `target/syslog-ng`
//! (installing it would remove rsyslog); without it, its rows are left out.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::proxy::free_port;

/// Hosts and programs in the messages: a file for each pair.
const HOSTS: usize = 100;
const PROGRAMS: usize = 5;

/// The messages: RFC 5424, about 100 bytes each.
pub fn messages(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|number| {
            format!(
                "<134>1 2026-12-07T10:00:00.000Z host{:02} app{} - - - message {number:09} from the central bench",
                number % HOSTS,
                number / HOSTS % PROGRAMS
            )
            .into_bytes()
        })
        .collect()
}

/// One server under test.
struct Server {
    name: &'static str,
    child: Child,
    out: PathBuf,
    udp: u16,
    tcp: u16,
}

impl Server {
    /// Waits until `expected` lines are written, or until none more came
    /// for two seconds; the count. Each poll reads only what was added
    /// since the one before, so that counting takes little from the
    /// server under test.
    fn settle(&self, expected: u64) -> u64 {
        let mut tally = Tally::default();
        let (mut last, mut since) = (0, Instant::now());
        loop {
            let now = tally.update(&self.out);
            if now >= expected {
                return now;
            }
            if now != last {
                (last, since) = (now, Instant::now());
            } else if since.elapsed() > Duration::from_secs(2) {
                return now;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the kernel dropped on the server's UDP socket.
    fn udp_drops(&self) -> u64 {
        let port = format!(":{:04X}", self.udp);
        std::fs::read_to_string("/proc/net/udp")
            .unwrap_or_default()
            .lines()
            .filter(|line| {
                line.split_whitespace()
                    .nth(1)
                    .is_some_and(|local| local.ends_with(&port))
            })
            .filter_map(|line| line.split_whitespace().last()?.parse::<u64>().ok())
            .sum()
    }

    fn stop(mut self) {
        // SAFETY: kill(2) on our child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `command` and waits until it listens on TCP `port`.
fn started(
    name: &'static str,
    mut command: Command,
    out: PathBuf,
    udp: u16,
    tcp: u16,
) -> anyhow::Result<Server> {
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|error| anyhow::anyhow!("cannot run {name}: {error}"))?;
    let server = Server {
        name,
        child,
        out,
        udp,
        tcp,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", tcp)).is_err() {
        anyhow::ensure!(Instant::now() < deadline, "{name} did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    Ok(server)
}

/// A fresh directory for a server, and its output directory.
fn fresh(scratch: &Path, name: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    let dir = scratch.join(format!("central-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("out"))?;
    Ok((dir.clone(), dir.join("out")))
}

fn wishbone(binary: &Path, scratch: &Path) -> anyhow::Result<Server> {
    let (dir, out) = fresh(scratch, "wishbone")?;
    let (udp, tcp) = (free_port()?, free_port()?);
    let config = dir.join("central.yaml");
    std::fs::write(
        &config,
        format!(
            r#"modules:
  udp: {{module: wishbone.input.udp, arguments: {{address: 127.0.0.1, port: {udp}, receive_buffer_bytes: 8388608}}}}
  tcp: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: {tcp}, framing: auto}}}}
  inputs: {{module: wishbone.flow.funnel}}
  decode: {{module: wishbone.process.decode, arguments: {{format: syslog}}}}
  files:
    module: wishbone.output.file
    arguments:
      path: "{out}/{{{{ .hostname }}}}/{{{{ .appname }}}}.log"
      format: "{{{{ .message }}}}"
      max_open_files: 1000
routingtable:
  - udp.outbox -> inputs.udp
  - tcp.outbox -> inputs.tcp
  - inputs.outbox -> decode.inbox
  - decode.outbox -> files.inbox
"#,
            out = out.display()
        ),
    )?;
    let mut command = Command::new(binary);
    command
        .arg("start")
        .arg("--config")
        .arg(&config)
        .args(["--queue-size", "200000"]);
    started("wishbone", command, out, udp, tcp)
}

fn rsyslog(scratch: &Path) -> anyhow::Result<Server> {
    let (dir, out) = fresh(scratch, "rsyslog")?;
    let (udp, tcp) = (free_port()?, free_port()?);
    let config = dir.join("rsyslog.conf");
    std::fs::write(
        &config,
        format!(
            r#"global(workDirectory="{dir}")
module(load="imudp" batchSize="128" threads="1")
module(load="imtcp")
main_queue(queue.type="FixedArray" queue.size="200000" queue.dequeueBatchSize="1024")
template(name="perhost" type="string" string="{out}/%HOSTNAME%/%APP-NAME%.log")
template(name="line" type="string" string="%msg%\n")
input(type="imudp" address="127.0.0.1" port="{udp}" rcvbufSize="8m")
input(type="imtcp" address="127.0.0.1" port="{tcp}")
action(type="omfile" dynaFile="perhost" template="line" dynaFileCacheSize="1000" ioBufferSize="256k" asyncWriting="on" flushInterval="1" flushOnTXEnd="off")
"#,
            dir = dir.display(),
            out = out.display()
        ),
    )?;
    let mut command = Command::new("rsyslogd");
    command
        .arg("-n")
        .arg("-f")
        .arg(&config)
        .arg("-i")
        .arg(dir.join("pid"));
    started("rsyslog", command, out, udp, tcp)
}

/// syslog-ng, unpacked, in the foreground on `config`, its state in `dir`.
pub(crate) fn syslog_ng_command(config: &Path, dir: &Path) -> Command {
    let root = syslog_ng_root();
    let libraries = format!(
        "{}:{}",
        root.join("usr/lib/x86_64-linux-gnu").display(),
        root.join("usr/lib/syslog-ng").display()
    );
    let mut command = Command::new(root.join("usr/sbin/syslog-ng"));
    command
        .env("LD_LIBRARY_PATH", libraries)
        .arg(format!(
            "--module-path={}",
            root.join("usr/lib/syslog-ng/3.38").display()
        ))
        .args(["-F", "-f"])
        .arg(config)
        .arg("-R")
        .arg(dir.join("persist"))
        .arg("-p")
        .arg(dir.join("pid"))
        .arg("-c")
        .arg(dir.join("ctl"));
    command
}

/// Where syslog-ng is unpacked.
pub(crate) fn syslog_ng_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/syslog-ng/sng")
}

fn syslog_ng(scratch: &Path) -> anyhow::Result<Option<Server>> {
    let root = syslog_ng_root();
    if !root.join("usr/sbin/syslog-ng").exists() {
        eprintln!(
            "syslog-ng is not unpacked in {}: `apt-get download syslog-ng-core libivykis0 libnet1` and `dpkg -x` each there",
            root.display()
        );
        return Ok(None);
    }
    let (dir, out) = fresh(scratch, "syslog-ng")?;
    let (udp, tcp) = (free_port()?, free_port()?);
    let config = dir.join("syslog-ng.conf");
    std::fs::write(
        &config,
        format!(
            r#"@version: 3.38
options {{ keep-hostname(yes); flush-lines(1000); log-fifo-size(200000); }};
source s {{
  network(ip("127.0.0.1") port({udp}) transport("udp") flags(syslog-protocol) so-rcvbuf(8388608) log-fetch-limit(1000));
  syslog(ip("127.0.0.1") port({tcp}) transport("tcp") log-fetch-limit(1000) log-iw-size(200000));
}};
destination d {{ file("{out}/${{HOST}}/${{PROGRAM}}.log" create-dirs(yes) template("${{MESSAGE}}\n")); }};
log {{ source(s); destination(d); }};
"#,
            out = out.display()
        ),
    )?;
    let command = syslog_ng_command(&config, &dir);
    started("syslog-ng", command, out, udp, tcp).map(Some)
}

/// Sends `messages` to `port` at `rate` a second (or as fast as one
/// sender can, if slower); how many were sent, and the rate reached.
fn send_udp(messages: &[Vec<u8>], port: u16, rate: u64) -> (u64, u64) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("a UDP socket");
    let begun = Instant::now();
    let mut sent = 0;
    for (index, message) in messages.iter().enumerate() {
        if index % 100 == 0 {
            let due = begun + Duration::from_secs_f64(index as f64 / rate as f64);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        if socket.send_to(message, ("127.0.0.1", port)).is_ok() {
            sent += 1;
        }
    }
    (sent, (sent as f64 / begun.elapsed().as_secs_f64()) as u64)
}

/// Every message over one TCP connection, octet-counted; seconds until
/// the last one is in a file.
fn send_tcp(server: &Server, messages: &[Vec<u8>]) -> anyhow::Result<(f64, u64)> {
    let mut data = Vec::with_capacity(messages.len() * 110);
    for message in messages {
        write!(data, "{} ", message.len())?;
        data.extend_from_slice(message);
    }
    let begun = Instant::now();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.tcp))?;
    stream.write_all(&data)?;
    drop(stream);
    let written = server.settle(messages.len() as u64);
    Ok((begun.elapsed().as_secs_f64(), written))
}

/// The lines of the files under a directory, counted as they grow: each
/// file is read from where the last count stopped (the servers only
/// append).
#[derive(Default)]
struct Tally {
    counted: HashMap<PathBuf, u64>,
    lines: u64,
    buffer: Vec<u8>,
}

impl Tally {
    /// Counts what was added under `out`; the lines in all.
    fn update(&mut self, out: &Path) -> u64 {
        let mut pending = vec![out.to_path_buf()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    pending.push(path);
                    continue;
                }
                let offset = self.counted.entry(path.clone()).or_default();
                let Ok(mut file) = std::fs::File::open(&path) else {
                    continue;
                };
                self.buffer.clear();
                if file.seek(SeekFrom::Start(*offset)).is_ok()
                    && file.read_to_end(&mut self.buffer).is_ok()
                {
                    *offset += self.buffer.len() as u64;
                    self.lines += memchr::memchr_iter(b'\n', &self.buffer).count() as u64;
                }
            }
        }
        self.lines
    }
}

/// The servers that can run here, started one at a time.
type Start<'a> = Box<dyn Fn() -> anyhow::Result<Option<Server>> + 'a>;

/// Where the kernel caps a receive buffer a process asks for.
const RMEM_MAX: &str = "/proc/sys/net/core/rmem_max";

/// Raises net.core.rmem_max to 16 MiB for the runs (syslog-ng asks with
/// SO_RCVBUF, which that caps; wishbone and rsyslog force past it as
/// root), and puts it back when dropped.
struct ReceiveBuffers(Option<String>);

impl ReceiveBuffers {
    fn raise() -> Self {
        let before = std::fs::read_to_string(RMEM_MAX).ok();
        let raised = std::fs::write(RMEM_MAX, "16777216").is_ok();
        if !raised {
            eprintln!(
                "cannot raise {RMEM_MAX}: syslog-ng's receive buffer stays at the system's cap"
            );
        }
        Self(before.filter(|_| raised))
    }
}

impl Drop for ReceiveBuffers {
    fn drop(&mut self) {
        if let Some(before) = &self.0 {
            let _ = std::fs::write(RMEM_MAX, before.trim());
        }
    }
}

/// Runs it all and prints the tables.
pub fn run(binary: &Path, scratch: &Path, count: usize, rate: u64) -> anyhow::Result<()> {
    let messages = messages(count);
    let _buffers = ReceiveBuffers::raise();
    let starts: Vec<(&str, Start)> = vec![
        ("wishbone", Box::new(|| wishbone(binary, scratch).map(Some))),
        ("rsyslog", Box::new(|| rsyslog(scratch).map(Some))),
        ("syslog-ng", Box::new(|| syslog_ng(scratch))),
    ];
    println!(
        "\ncentral server, {count} RFC 5424 messages of about 100 bytes, {HOSTS} hosts x {PROGRAMS} programs, a file for each pair\n"
    );
    if rate > 0 {
        udp(&starts, &messages, rate)?;
    }
    tcp(&starts, &messages)
}

/// UDP at `rate`, then the highest rate each server keeps with no loss.
fn udp(starts: &[(&str, Start)], messages: &[Vec<u8>], rate: u64) -> anyhow::Result<()> {
    let count = messages.len();
    println!(
        "| server | UDP offered /s (reached) | sent | written | dropped by the kernel | lost in all |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (_, start) in starts {
        let Some(server) = start()? else { continue };
        let (sent, reached) = send_udp(messages, server.udp, rate);
        let written = server.settle(sent);
        let drops = server.udp_drops();
        println!(
            "| {} | {rate} ({reached}) | {sent} | {written} | {drops} | {} |",
            server.name,
            sent - written.min(sent)
        );
        server.stop();
    }
    println!(
        "\n| server | highest UDP rate with no loss /s (of 50,000 doubling, {} messages each) |",
        count / 5
    );
    println!("|---|---:|");
    for (name, start) in starts {
        let mut kept = 0;
        let mut offered = 50_000;
        while offered <= 1_600_000 {
            let Some(server) = start()? else { break };
            let part = &messages[..count / 5];
            let (sent, reached) = send_udp(part, server.udp, offered);
            let written = server.settle(sent);
            server.stop();
            eprintln!("{name}: {offered}/s (reached {reached}/s): sent {sent}, written {written}");
            if written < sent {
                println!("| {name} | {kept} |");
                break;
            }
            kept = reached;
            offered *= 2;
        }
        if offered > 1_600_000 {
            println!("| {name} | at least {kept} (one sender's pace) |");
        }
    }
    Ok(())
}

/// Every message over one TCP connection into each server.
fn tcp(starts: &[(&str, Start)], messages: &[Vec<u8>]) -> anyhow::Result<()> {
    println!("\n| server | TCP, octet-counted, one connection: messages/s | seconds | written |");
    println!("|---|---:|---:|---:|");
    for (_, start) in starts {
        let Some(server) = start()? else { continue };
        let (seconds, written) = send_tcp(&server, messages)?;
        println!(
            "| {} | {:.0} | {seconds:.2} | {written} |",
            server.name,
            written as f64 / seconds
        );
        server.stop();
    }
    Ok(())
}
