//! The central log server with real clients: `logger` over UDP, a unix
//! datagram socket and TCP with octet counting into one server that writes
//! a file per host and program; hostile host names; logrotate under a
//! steady stream (`create`, and `postrotate` with SIGHUP); a million
//! datagrams in a burst, every one received or counted as dropped by the
//! kernel; and a disk that fills under the file output.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);

/// UDP, TCP and a unix socket in, syslog decoded, a file per host and
/// program under `base` (`{{ .message }}` per line); what cannot be
/// decoded or placed to `refused.log` beside it.
fn central(dir: &Path, base: &Path, socket: &Path) -> String {
    format!(
        r#"modules:
  udp: {{module: wishbone.input.udp, arguments: {{address: 127.0.0.1, port: 0, receive_buffer_bytes: 8388608}}}}
  tcp: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0, framing: auto}}}}
  devlog: {{module: wishbone.input.unix, arguments: {{path: "{socket}", mode: "0666"}}}}
  inputs: {{module: wishbone.flow.funnel}}
  decode: {{module: wishbone.process.decode, arguments: {{format: syslog}}}}
  files:
    module: wishbone.output.file
    arguments:
      path: "{base}/{{{{ .hostname // \"localhost\" }}}}/{{{{ .appname // \"unknown\" }}}}.log"
      format: "{{{{ .message }}}}"
  refusals: {{module: wishbone.flow.funnel}}
  refused: {{module: wishbone.output.file, arguments: {{path: "{refused}"}}}}
routingtable:
  - udp.outbox -> inputs.udp
  - tcp.outbox -> inputs.tcp
  - devlog.outbox -> inputs.devlog
  - inputs.outbox -> decode.inbox
  - decode.outbox -> files.inbox
  - decode.failed -> refusals.decode
  - files.failed -> refusals.files
  - refusals.outbox -> refused.inbox
"#,
        socket = socket.display(),
        base = base.display(),
        refused = dir.join("refused.log").display(),
    )
}

/// Runs `logger` with `arguments`, one message per line of `lines`.
fn logger(arguments: &[&str], lines: &str) {
    let mut child = Command::new("logger")
        .args(arguments)
        .stdin(Stdio::piped())
        .spawn()
        .expect("logger runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "logger {arguments:?}");
}

/// Every file under `dir`, with its lines.
fn files_under(dir: &Path) -> BTreeMap<PathBuf, Vec<String>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                files.insert(path, text.lines().map(str::to_string).collect());
            }
        }
    }
    files
}

fn numbered(prefix: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|number| format!("{prefix} {number}"))
        .collect()
}

#[test]
fn logger_over_udp_a_unix_socket_and_tcp_writes_each_message_once_in_its_file() {
    require_installed(
        "command -v logger",
        "logger is missing: `apt-get install bsdutils`",
    );
    let dir = scratch_dir("central-loggers");
    let (base, socket) = (dir.join("remote"), dir.join("log.sock"));
    let mut wishbone = Wishbone::start(&dir, &central(&dir, &base, &socket), &[]);
    let udp = wishbone.logged_port("listening module=udp").to_string();
    let tcp = wishbone.input_port("tcp").to_string();
    wishbone.output.wait_for("listening module=devlog", MINUTE);
    const EACH: usize = 500;
    let lines = |prefix: &str| numbered(prefix, EACH).join("\n") + "\n";
    logger(
        &["--udp", "-n", "127.0.0.1", "-P", &udp, "-t", "udpapp"],
        &lines("udp"),
    );
    logger(
        &[
            "--tcp",
            "--octet-count",
            "-n",
            "127.0.0.1",
            "-P",
            &tcp,
            "-t",
            "tcpapp",
        ],
        &lines("tcp"),
    );
    logger(
        &["-u", socket.to_str().unwrap(), "-t", "unixapp"],
        &lines("unix"),
    );
    let by_name = |files: &BTreeMap<PathBuf, Vec<String>>, name: &str| {
        files
            .iter()
            .filter(|(path, _)| path.file_name().unwrap() == name)
            .map(|(path, lines)| (path.clone(), lines.clone()))
            .collect::<Vec<_>>()
    };
    let lines_in = |name: &str| {
        let files = files_under(&base);
        by_name(&files, name)
            .first()
            .map_or(0, |(_, lines)| lines.len())
    };
    wait_until(MINUTE, "every TCP and unix message in a file", || {
        lines_in("tcpapp.log") >= EACH && lines_in("unixapp.log") >= EACH
    });
    // UDP promises nothing: wait until its file is whole or stops growing.
    let mut udp_lines = (lines_in("udpapp.log"), Instant::now());
    while udp_lines.0 < EACH && udp_lines.1.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(50));
        let now = lines_in("udpapp.log");
        if now != udp_lines.0 {
            udp_lines = (now, Instant::now());
        }
    }
    assert!(wishbone.stop().success());
    let totals = wishbone.output.wait_for("input totals module=udp", MINUTE);
    let dropped: usize = field(&totals, "dropped_by_kernel")
        .unwrap()
        .parse()
        .unwrap();
    let files = files_under(&base);
    for (name, prefix) in [
        ("udpapp.log", "udp"),
        ("tcpapp.log", "tcp"),
        ("unixapp.log", "unix"),
    ] {
        let found = by_name(&files, name);
        assert_eq!(found.len(), 1, "{name} in one directory: {files:?}");
        let lines = &found[0].1;
        let expected = numbered(prefix, EACH);
        if prefix == "udp" {
            // What the kernel dropped is counted; the rest is each once.
            assert_eq!(lines.len() + dropped, EACH, "{totals}");
            let mut wanted = expected.iter();
            let in_order = lines.iter().all(|line| wanted.any(|next| next == line));
            assert!(in_order, "{name}: each message once, in order");
        } else {
            assert_eq!(lines, &expected, "{name}: each message once, in order");
        }
    }
    let local = base.join("localhost/unixapp.log");
    assert!(
        files.contains_key(&local),
        "a local message has no host name: {files:?}"
    );
    assert_eq!(files.len(), 3, "{:?}", files.keys());
    assert!(!socket.exists(), "the socket file is removed at stop");
}

#[test]
fn hostile_host_names_stay_inside_the_base_directory_and_overlong_ones_are_refused() {
    let dir = scratch_dir("central-hostile");
    let (base, socket) = (dir.join("base/remote"), dir.join("log.sock"));
    let mut wishbone = Wishbone::start(&dir, &central(&dir, &base, &socket), &[]);
    let udp = wishbone.logged_port("listening module=udp");
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let long = "h".repeat(10_000);
    let hosts = ["../../etc", "a/b", "..", ".", long.as_str()];
    for host in hosts {
        let message = format!(
            "<13>1 2026-12-07T10:00:00Z {host} app - - - from {}",
            &host[..host.len().min(12)]
        );
        sender
            .send_to(message.as_bytes(), ("127.0.0.1", udp))
            .unwrap();
    }
    // An empty datagram, and the largest UDP takes: not syslog, refused.
    sender.send_to(b"", ("127.0.0.1", udp)).unwrap();
    sender
        .send_to(&vec![b'x'; 65_507], ("127.0.0.1", udp))
        .unwrap();
    let refused = dir.join("refused.log");
    wait_until(MINUTE, "the refusals", || {
        std::fs::read_to_string(&refused).is_ok_and(|text| text.lines().count() >= 3)
    });
    wait_until(MINUTE, "the placed messages", || {
        files_under(&base).values().map(Vec::len).sum::<usize>() >= 4
    });
    assert!(wishbone.stop().success());
    let files = files_under(&dir.join("base"));
    let names: Vec<String> = files
        .keys()
        .map(|path| path.strip_prefix(&base).unwrap().display().to_string())
        .collect();
    assert_eq!(
        names,
        [
            ".._.._etc/app.log",
            "_/app.log",
            "__/app.log",
            "a_b/app.log"
        ]
    );
    assert!(!dir.join("etc").exists() && !dir.join("base/etc").exists());
    let refusals = std::fs::read_to_string(&refused).unwrap();
    assert_eq!(
        refusals.lines().count(),
        3,
        "the long name, the empty and the huge datagram"
    );
    assert!(refusals.contains(&long), "refused as it came");
    assert_eq!(wishbone.queue_total("files.failed", "in_total"), 1);
    assert_eq!(wishbone.queue_total("decode.failed", "in_total"), 2);
    let totals = wishbone.output.wait_for("input totals module=udp", MINUTE);
    assert_eq!(field(&totals, "events"), Some("7"), "{totals}");
}

/// A tcp input into a file output with a fixed path.
fn into_one_file(path: &Path, more: &str) -> String {
    format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         file: {{module: wishbone.output.file, arguments: {{path: \"{}\", reconnect_max: 0.2{more}}}}}\n\
         routingtable:\n  - input.outbox -> file.inbox\n",
        path.display()
    )
}

/// How many times each number is in the files whose names start with
/// `name` in `dir` (the file and its rotations).
fn numbers_in(dir: &Path, name: &str) -> BTreeMap<usize, usize> {
    let mut counts = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with(name) {
            let data = std::fs::read(entry.path()).unwrap();
            for number in line_numbers(&data) {
                *counts.entry(number).or_default() += 1;
            }
        }
    }
    counts
}

#[test]
fn logrotate_with_create_and_with_a_sighup_keeps_every_line_once() {
    require_installed(
        "command -v logrotate",
        "logrotate is missing: `apt-get install logrotate`, which scripts/test does",
    );
    let dir = scratch_dir("central-logrotate");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let app = logs.join("app.log");
    let mut wishbone = Wishbone::start(&dir, &into_one_file(&app, ""), &[]);
    let port = wishbone.input_port("input");
    let pid = wishbone.pid();
    let stanza = |postrotate: &str| {
        format!(
            "{} {{\n  rotate 20\n  create\n  nocompress\n  missingok\n{postrotate}}}\n",
            app.display()
        )
    };
    std::fs::write(dir.join("create.conf"), stanza("")).unwrap();
    let hup = format!("  postrotate\n    kill -HUP {pid}\n  endscript\n");
    std::fs::write(dir.join("hup.conf"), stanza(&hup)).unwrap();
    const LINES: usize = 60_000;
    let writer = std::thread::spawn(move || {
        let data = numbered_lines(LINES);
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        for chunk in data.chunks(data.len() / 60) {
            stream.write_all(chunk).unwrap();
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let begun = Instant::now();
    let mut rotations = 0;
    while !writer.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
        // Rotations while a second of writing is still to come, so that
        // each new file gets lines.
        let due = Duration::from_millis(700) * (rotations + 1);
        if rotations < 3 && begun.elapsed() > due {
            let conf = if rotations % 2 == 0 {
                "create.conf"
            } else {
                "hup.conf"
            };
            let status = Command::new("logrotate")
                .arg("-f")
                .arg("-s")
                .arg(dir.join("rot.state"))
                .arg(dir.join(conf))
                .status()
                .unwrap();
            assert!(status.success(), "logrotate ran");
            rotations += 1;
        }
    }
    writer.join().unwrap();
    assert_eq!(rotations, 3);
    wait_until(MINUTE, "every line in the files", || {
        numbers_in(&logs, "app.log").len() >= LINES
    });
    assert!(wishbone.stop().success());
    let counts = numbers_in(&logs, "app.log");
    let twice: Vec<_> = counts
        .iter()
        .filter(|(_, times)| **times > 1)
        .take(5)
        .collect();
    assert!(twice.is_empty(), "more than once: {twice:?}");
    assert_eq!(counts.len(), LINES);
    // Each rotation's new file took the lines after it: the output
    // noticed the rename (create) or was told (SIGHUP).
    let empty: Vec<_> = std::fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .filter(|entry| entry.metadata().unwrap().len() == 0)
        .map(|entry| entry.file_name())
        .collect();
    assert!(empty.is_empty(), "files left empty: {empty:?}");
    assert_eq!(
        std::fs::read_dir(&logs).unwrap().count(),
        rotations as usize + 1
    );
    let reopened = wishbone.output.count("SIGHUP: reopening every file");
    assert!(reopened >= 1, "{}", wishbone.output.text());
    eprintln!("{LINES} lines, {rotations} rotations, {reopened} reopened by SIGHUP");
}

/// Datagrams the kernel dropped before they reached any socket (the
/// per-CPU backlog of loopback), from /proc/net/softnet_stat.
fn backlog_drops() -> u64 {
    std::fs::read_to_string("/proc/net/softnet_stat")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| u64::from_str_radix(line.split_whitespace().nth(1)?, 16).ok())
        .sum()
}

#[test]
fn a_million_datagrams_in_a_burst_are_received_or_counted_as_dropped() {
    let dir = scratch_dir("central-burst");
    let config = "modules:\n  udp: {module: wishbone.input.udp, arguments: {address: 127.0.0.1, port: 0}}\n  \
                  out: {module: wishbone.output.null}\nroutingtable:\n  - udp.outbox -> out.inbox\n";
    let mut wishbone = Wishbone::start(&dir, config, &[]);
    let port = wishbone.logged_port("listening module=udp");
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let before = backlog_drops();
    let mut sent = 0u64;
    for number in 0..1_000_000u32 {
        let message = format!("<13>1 - host app - - - datagram {number}");
        if sender
            .send_to(message.as_bytes(), ("127.0.0.1", port))
            .is_ok()
        {
            sent += 1;
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(wishbone.stop().success());
    let backlog = backlog_drops() - before;
    let totals = wishbone.output.wait_for("input totals module=udp", MINUTE);
    let number = |name: &str| -> u64 { field(&totals, name).unwrap().parse().unwrap() };
    let (events, dropped) = (number("events"), number("dropped_by_kernel"));
    eprintln!(
        "sent {sent}, received {events}, dropped by the kernel at the socket {dropped}, before it {backlog}"
    );
    // Drops before the socket are counted for the whole machine: other
    // traffic may add to them, never take away.
    assert!(events + dropped <= sent, "{totals}");
    assert!(
        events + dropped + backlog >= sent,
        "unaccounted for: {totals}"
    );
    assert_eq!(wishbone.queue_total("out.inbox", "in_total"), events);
}

#[test]
fn a_full_disk_under_the_file_output_holds_the_lines_until_there_is_room() {
    let dir = scratch_dir("central-full-disk");
    let disk = small_disk_or_skip!(dir, "size=1m");
    let path = disk.0.join("app.log");
    let mut wishbone = Wishbone::start(&dir, &into_one_file(&path, ""), &[]);
    let port = wishbone.input_port("input");
    const LINES: usize = 20_000;
    send(port, &numbered_lines(LINES));
    wishbone.output.wait_for("cannot write", MINUTE);
    std::thread::sleep(Duration::from_millis(500));
    let status = Command::new("mount")
        .args(["-o", "remount,size=8m"])
        .arg(&disk.0)
        .status()
        .unwrap();
    assert!(status.success(), "the disk grows");
    wait_until(MINUTE, "every line written", || {
        std::fs::read(&path).is_ok_and(|data| line_numbers(&data).count() >= LINES)
    });
    assert!(wishbone.stop().success());
    let data = std::fs::read(&path).unwrap();
    let numbers: Vec<usize> = line_numbers(&data).collect();
    assert_eq!(
        numbers,
        (0..LINES).collect::<Vec<_>>(),
        "each line once, in order, none torn"
    );
    assert_eq!(
        wishbone.output.count("cannot write"),
        1,
        "logged once per outage: {}",
        wishbone.output.text()
    );
}
