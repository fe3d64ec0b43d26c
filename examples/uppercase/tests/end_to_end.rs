//! The example binary end to end: lines in over TCP, upper-cased lines out
//! to a real listener; `list` shows the module beside the builtin ones; a
//! kind the binary lacks fails `check`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_wishbone-uppercase");

#[test]
fn lines_come_out_upper_cased() {
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = backend.local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("wishbone-uppercase-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _removed = RemovedOnDrop(dir.clone());
    let config = dir.join("bootstrap.yaml");
    std::fs::write(
        &config,
        format!(
            "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
             shout: {{module: example.uppercase}}\n  \
             output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {port}}}}}\n\
             routingtable:\n  - input.outbox -> shout.inbox\n  - shout.outbox -> output.inbox\n"
        ),
    )
    .unwrap();
    let child = Command::new(BINARY)
        .arg("debug")
        .arg("--config")
        .arg(&config)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let mut logs = BufReader::new(child.0.stderr.take().unwrap()).lines();
    let input_port: u16 = loop {
        let line = logs.next().expect("a listening line").unwrap();
        if let Some(address) = line.split("address=").nth(1) {
            break address
                .split_whitespace()
                .next()
                .unwrap()
                .rsplit(':')
                .next()
                .unwrap()
                .parse()
                .unwrap();
        }
    };
    std::thread::spawn(move || logs.for_each(drop));
    let mut client = std::net::TcpStream::connect(("127.0.0.1", input_port)).unwrap();
    client.write_all(b"hello\nwishbone modules\n").unwrap();
    drop(client);
    let (mut received, _) = backend.accept().unwrap();
    received
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut text = vec![0u8; 23];
    received.read_exact(&mut text).unwrap();
    assert_eq!(text, b"HELLO\nWISHBONE MODULES\n");
    // SAFETY: kill(2) on the child we started.
    unsafe { kill(child.0.id() as i32, 15) };
    assert!(child.0.wait().unwrap().success());
}

unsafe extern "C" {
    fn kill(pid: i32, signal: i32) -> i32;
}

/// A scratch path, removed when the test ends, passed or failed.
struct RemovedOnDrop(std::path::PathBuf);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The server is killed even when an assertion fails first.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn list_shows_the_module_beside_the_builtin_ones() {
    let output = Command::new(BINARY).arg("list").output().unwrap();
    let listing = String::from_utf8_lossy(&output.stdout);
    assert!(
        listing.contains("example.uppercase") && listing.contains("wishbone.output.tcp"),
        "{listing}"
    );
}

#[test]
fn check_of_a_kind_the_binary_lacks_exits_2_and_lists_what_it_has() {
    let config = std::env::temp_dir().join(format!(
        "wishbone-uppercase-missing-{}.yaml",
        std::process::id()
    ));
    let _removed = RemovedOnDrop(config.clone());
    let check = |text: &str| {
        std::fs::write(&config, text).unwrap();
        let output = Command::new(BINARY)
            .arg("check")
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let text = check("modules:\n  x: {module: example.lowercase}\n");
    assert!(
        text.contains("unknown module kind `example.lowercase`"),
        "{text}"
    );
    assert!(
        text.contains("did you mean `example.uppercase`?") && !text.contains("wishbone.input.tcp"),
        "the close match alone: {text}"
    );
    let text = check("modules:\n  x: {module: example.kafka}\n");
    assert!(
        text.contains("example.uppercase") && text.contains("wishbone.input.tcp"),
        "no close match: the known kinds are listed: {text}"
    );
}
