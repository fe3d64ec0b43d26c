//! The migration pages (`docs/coming-from-rsyslog.md`,
//! `docs/coming-from-vector.md`) and the files they show
//! (`docs/migration/`): each file is on a page as it is, every wishbone
//! file passes `check`, and where rsyslog's side can run here it runs,
//! with its paths and ports made local, beside wishbone's on the same
//! messages.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn shown(name: &str) -> String {
    std::fs::read_to_string(root().join("docs/migration").join(name)).unwrap()
}

/// `text` with each `(from, to)` replaced; every `from` must be there.
fn localized(text: &str, replacements: &[(&str, String)]) -> String {
    replacements
        .iter()
        .fold(text.to_string(), |text, (from, to)| {
            assert!(text.contains(from), "`{from}` is not in:\n{text}");
            text.replace(from, to)
        })
}

fn migration_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("docs/migration"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn every_file_is_on_a_page_as_it_is() {
    let pages: Vec<String> = ["coming-from-rsyslog.md", "coming-from-vector.md"]
        .iter()
        .map(|page| std::fs::read_to_string(root().join("docs").join(page)).unwrap())
        .collect();
    let files = migration_files();
    assert!(files.len() >= 10, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            pages
                .iter()
                .any(|page| page.contains(&format!("\n{text}```\n"))),
            "{} is not shown as it is on either page",
            file.display()
        );
    }
}

#[test]
fn every_wishbone_file_passes_check_and_every_vector_file_is_yaml() {
    for file in migration_files() {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".vector.yaml") {
            let text = std::fs::read_to_string(&file).unwrap();
            serde_yaml::from_str::<serde_yaml::Value>(&text)
                .unwrap_or_else(|error| panic!("{name}: {error}"));
        } else if name.ends_with(".yaml") {
            let (code, text) = wishbone_check(&file);
            assert_eq!(code, Some(0), "{name}: {text}");
        }
    }
}

/// `count` messages of each severity, told apart by `tag`, sent with
/// util-linux logger to the datagram socket at `socket`.
fn log_every_severity(socket: &Path, tag: &str, count: usize) {
    const SEVERITIES: [&str; 8] = [
        "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
    ];
    for (number, severity) in SEVERITIES.iter().enumerate() {
        for index in 0..count {
            let status = Command::new("logger")
                .arg("-u")
                .arg(socket)
                .args(["-p", &format!("user.{severity}"), "-t", "app"])
                .arg(format!("{tag}-{number}-{index}"))
                .status()
                .unwrap();
            assert!(status.success());
        }
    }
}

/// The tokens `tag-N-I` in `text`.
fn tokens(text: &[u8], tag: &str) -> BTreeSet<String> {
    String::from_utf8_lossy(text)
        .split(|c: char| c.is_whitespace())
        .filter(|word| word.starts_with(&format!("{tag}-")))
        .map(str::to_string)
        .collect()
}

#[test]
fn rsyslogs_forwarder_and_wishbones_forward_the_same_warnings() {
    require_installed(
        "command -v logger",
        "logger is missing: `apt-get install bsdutils`",
    );
    let dir = scratch_dir("migration-forwarder");
    let sinks = [
        Rsyslog::relp_sink(&dir.join("rsyslog-sink"), 0),
        Rsyslog::relp_sink(&dir.join("wishbone-sink"), 0),
    ];
    let rsyslog_socket = dir.join("rsyslog.sock");
    let config = localized(
        &shown("forwarder.rsyslog.conf"),
        &[
            (
                "/var/spool/rsyslog",
                dir.join("rsyslog").display().to_string(),
            ),
            ("/dev/log", rsyslog_socket.display().to_string()),
            (
                "collector.example.net\" port=\"2514",
                format!("127.0.0.1\" port=\"{}", sinks[0].port),
            ),
        ],
    );
    let _rsyslog = Rsyslog::with_config(&dir.join("rsyslog"), config, || rsyslog_socket.exists());
    let wishbone_socket = dir.join("wishbone.sock");
    let bootstrap = localized(
        &shown("forwarder.yaml"),
        &[
            ("/dev/log", wishbone_socket.display().to_string()),
            (
                "collector.example.net, port: 2514",
                format!("127.0.0.1, port: {}", sinks[1].port),
            ),
        ],
    );
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    wait_until(MINUTE, "wishbone's socket", || wishbone_socket.exists());
    log_every_severity(&rsyslog_socket, "rs", 3);
    log_every_severity(&wishbone_socket, "wb", 3);
    // emerg to warning: severities 0 to 4, three of each.
    let expected = |tag: &str| -> BTreeSet<String> {
        (0..=4)
            .flat_map(|severity| (0..3).map(move |index| format!("{tag}-{severity}-{index}")))
            .collect()
    };
    wait_until(MINUTE, "both collectors to get the warnings", || {
        tokens(&sinks[0].written(), "rs") == expected("rs")
            && tokens(&sinks[1].written(), "wb") == expected("wb")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        tokens(&sinks[0].written(), "rs"),
        expected("rs"),
        "nothing more"
    );
    assert_eq!(
        tokens(&sinks[1].written(), "wb"),
        expected("wb"),
        "nothing more"
    );
    assert!(wishbone.stop().success());
}

#[test]
fn rsyslog_forwards_to_wishbone_over_relp_and_over_octet_counted_tcp() {
    require_installed(
        "command -v logger",
        "logger is missing: `apt-get install bsdutils`",
    );
    let dir = scratch_dir("migration-receive");
    let (relp, tcp) = (free_port(), free_port());
    let remote = dir.join("remote");
    let bootstrap = localized(
        &shown("receive.yaml"),
        &[
            ("port: 2514", format!("port: {relp}")),
            ("port: 514", format!("port: {tcp}")),
            ("/var/log/remote", remote.display().to_string()),
        ],
    );
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    for (file, target, tag) in [
        (
            "to-wishbone-relp.rsyslog.conf",
            format!("port=\"{relp}\""),
            "relp",
        ),
        (
            "to-wishbone-tcp.rsyslog.conf",
            format!("port=\"{tcp}\""),
            "tcp",
        ),
    ] {
        let socket = dir.join(format!("{tag}.sock"));
        let port = if tag == "relp" {
            "port=\"2514\""
        } else {
            "port=\"514\""
        };
        let config = localized(
            &shown(file),
            &[
                ("/var/spool/rsyslog", dir.join(tag).display().to_string()),
                ("/dev/log", socket.display().to_string()),
                ("wishbone.example.net", "127.0.0.1".to_string()),
                (port, target),
            ],
        );
        let _rsyslog = Rsyslog::with_config(&dir.join(tag), config, || socket.exists());
        for index in 0..5 {
            let status = Command::new("logger")
                .arg("-u")
                .arg(&socket)
                .args(["-t", "web"])
                .arg(format!("{tag}-{index} a message\nwith a second line"))
                .status()
                .unwrap();
            assert!(status.success());
        }
        let expected: BTreeSet<String> = (0..5).map(|index| format!("{tag}-{index}")).collect();
        wait_until(MINUTE, &format!("{tag}: five messages in web.log"), || {
            let written: Vec<u8> = glob_files(&remote, "web.log")
                .iter()
                .flat_map(|path| std::fs::read(path).unwrap_or_default())
                .collect();
            tokens(&written, tag) == expected
        });
    }
    assert!(wishbone.stop().success());
}

/// Files named `name` one directory below `dir` (one per sending host).
fn glob_files(dir: &Path, name: &str) -> Vec<PathBuf> {
    let Ok(hosts) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    hosts
        .map(|host| host.unwrap().path().join(name))
        .filter(|path| path.exists())
        .collect()
}

/// What a central server wrote, as `host/app.log: text after the
/// timestamp` lines, sorted.
fn written_per_host(dir: &Path) -> BTreeSet<String> {
    let mut lines = BTreeSet::new();
    for host in std::fs::read_dir(dir).into_iter().flatten() {
        let host = host.unwrap().path();
        for file in std::fs::read_dir(&host).into_iter().flatten() {
            let file = file.unwrap().path();
            let name = format!(
                "{}/{}",
                host.file_name().unwrap().to_string_lossy(),
                file.file_name().unwrap().to_string_lossy()
            );
            for line in std::fs::read_to_string(&file).unwrap_or_default().lines() {
                let (_, rest) = line.split_once(' ').unwrap_or(("", line));
                lines.insert(format!("{name}: {rest}"));
            }
        }
    }
    lines
}

#[test]
fn rsyslog_and_wishbone_as_central_servers_write_the_same_files() {
    let dir = scratch_dir("migration-central");
    let (rsyslog_port, wishbone_port) = (free_port(), free_port());
    let rsyslog_remote = dir.join("rsyslog-remote");
    let config = localized(
        &shown("central.rsyslog.conf"),
        &[
            (
                "/var/spool/rsyslog",
                dir.join("rsyslog").display().to_string(),
            ),
            ("/var/log/remote", rsyslog_remote.display().to_string()),
            (
                "port=\"514\"",
                format!("address=\"127.0.0.1\" port=\"{rsyslog_port}\""),
            ),
        ],
    );
    let _rsyslog = Rsyslog::with_config(&dir.join("rsyslog"), config, || {
        std::net::TcpStream::connect(("127.0.0.1", rsyslog_port)).is_ok()
    });
    let wishbone_remote = dir.join("wishbone-remote");
    let bootstrap = localized(
        &std::fs::read_to_string(root().join("bootstrap/central_server.yaml")).unwrap(),
        &[
            ("port: 514", format!("port: {wishbone_port}")),
            ("/dev/log", dir.join("devlog.sock").display().to_string()),
            ("/var/log/remote", wishbone_remote.display().to_string()),
        ],
    );
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // Until both write it, a probe: a datagram before a socket is bound
    // is lost, as UDP goes.
    let probe = "<14>1 2026-12-07T07:00:00Z probe probe - - - ready";
    let mut expected = BTreeSet::from(["probe/probe.log: probe probe: ready".to_string()]);
    wait_until(MINUTE, "both servers to take datagrams", || {
        for port in [rsyslog_port, wishbone_port] {
            socket
                .send_to(probe.as_bytes(), ("127.0.0.1", port))
                .unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
        [&rsyslog_remote, &wishbone_remote]
            .iter()
            .all(|remote| remote.join("probe/probe.log").exists())
    });
    for (host, app) in [("web1", "nginx"), ("web2", "nginx"), ("db1", "postgres")] {
        for index in 0..20 {
            let message = format!("GET /{index} from {host}");
            let datagram = format!("<14>1 2026-12-07T07:00:00Z {host} {app} 42 - - {message}");
            for port in [rsyslog_port, wishbone_port] {
                socket
                    .send_to(datagram.as_bytes(), ("127.0.0.1", port))
                    .unwrap();
            }
            expected.insert(format!("{host}/{app}.log: {host} {app}: {message}"));
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let deadline = std::time::Instant::now() + MINUTE;
    while (written_per_host(&rsyslog_remote) != expected
        || written_per_host(&wishbone_remote) != expected)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(written_per_host(&rsyslog_remote), expected, "rsyslog");
    let wrote = written_per_host(&wishbone_remote);
    assert_eq!(
        wrote.symmetric_difference(&expected).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "wishbone"
    );
    assert!(wishbone.stop().success());
}
