//! TLS on the tcp input and output, against socat's OpenSSL peers on
//! loopback, with certificates the tests make with `openssl`: lines arrive
//! unchanged both ways, mutual TLS refuses clients without the right
//! certificate, a wrong CA or name is logged and retried, and `check`
//! names unusable files.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use wishbone_e2e::tls::{certificates, send_over_tls, tls_sink, tls_sink_with};
use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);

fn tls_output(dir: &Path, port: u16, tls: &str) -> String {
    format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         output: {{module: wishbone.output.tcp, arguments: {{host: localhost, port: {port}, reconnect_initial: 0.05, reconnect_max: 0.2, tls: {tls}}}}}\n\
         routingtable:\n  - input.outbox -> output.inbox\n"
    )
    .replace("DIR", &dir.display().to_string())
}

/// A TLS tcp input (`tls` as given, DIR for the scratch directory) passing
/// what it reads to a plain tcp output to `port`.
fn tls_input(dir: &Path, tls: &str, port: u16) -> String {
    format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0, tls: {tls}}}}}\n  \
         output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {port}}}}}\n\
         routingtable:\n  - input.outbox -> output.inbox\n"
    )
    .replace("DIR", &dir.display().to_string())
}

#[test]
fn a_million_lines_through_the_tls_output_and_the_tls_input_arrive_unchanged() {
    let dir = scratch_dir("tls-both");
    certificates(&dir, "a", &["server", "client"]);
    const LINES: usize = 1_000_000;
    let data = numbered_lines(LINES);

    // Output: wishbone → socat OPENSSL-LISTEN → file.
    let out = dir.join("out.txt");
    let (_socat, port) = tls_sink(&dir, &out);
    let bootstrap = tls_output(&dir, port, "{ca: DIR/a-ca.pem}");
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    send(wishbone.input_port("input"), &data);
    wait_until(MINUTE, "every line at the TLS server", || {
        std::fs::metadata(&out).is_ok_and(|meta| meta.len() == data.len() as u64)
    });
    assert!(wishbone.stop().success());
    assert_eq!(sha256(&std::fs::read(&out).unwrap()), sha256(&data));

    // Input: socat OPENSSL client → wishbone's TLS input → a sink.
    let sink = Sink::start(&dir, "sink");
    let input_dir = dir.join("input");
    std::fs::create_dir_all(&input_dir).unwrap();
    let bootstrap = tls_input(
        &dir,
        "{cert: DIR/a-server.pem, key: DIR/a-server.key}",
        sink.port,
    );
    let mut wishbone = Wishbone::start(&input_dir, &bootstrap, &[]);
    let port = wishbone.input_port("input");
    let file = dir.join("data.txt");
    std::fs::write(&file, &data).unwrap();
    assert!(send_over_tls(port, &dir.join("a-ca.pem"), &file).success());
    sink.wait_for_lines(LINES, MINUTE);
    assert!(wishbone.stop().success());
    assert_eq!(sha256(&sink.received()), sha256(&data));
}

/// socat as a TLS client sending one line, with or without a certificate.
fn client_sends(port: u16, ca: &Path, identity: Option<(PathBuf, PathBuf)>, line: &str) {
    let mut address = format!("OPENSSL:localhost:{port},cafile={}", ca.display());
    if let Some((cert, key)) = identity {
        address += &format!(",cert={},key={}", cert.display(), key.display());
    }
    let mut child = Command::new("socat")
        .arg("-u")
        .arg("STDIN")
        .arg(address)
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    let _ = child.stdin.take().unwrap().write_all(line.as_bytes());
    let _ = child.wait();
}

#[test]
fn mutual_tls_lets_only_clients_with_the_right_certificate_in() {
    let dir = scratch_dir("tls-mutual");
    certificates(&dir, "a", &["server", "client"]);
    certificates(&dir, "b", &["client"]);
    let sink = Sink::start(&dir, "sink");
    let bootstrap = tls_input(
        &dir,
        "{cert: DIR/a-server.pem, key: DIR/a-server.key, ca: DIR/a-ca.pem, verify_peer: true}",
        sink.port,
    );
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    let port = wishbone.input_port("input");
    let ca = dir.join("a-ca.pem");
    client_sends(port, &ca, None, "without a certificate\n");
    wishbone
        .output
        .wait_for("refused a client: TLS handshake failed", MINUTE);
    client_sends(
        port,
        &ca,
        Some((dir.join("b-client.pem"), dir.join("b-client.key"))),
        "another CA\n",
    );
    client_sends(
        port,
        &ca,
        Some((dir.join("a-client.pem"), dir.join("a-client.key"))),
        "the right one\n",
    );
    sink.wait_for_lines(1, MINUTE);
    assert!(wishbone.stop().success());
    assert_eq!(
        String::from_utf8(sink.received()).unwrap(),
        "the right one\n"
    );
    let totals = wishbone.output.wait_for("input totals", MINUTE);
    assert_eq!(field(&totals, "handshake_failures"), Some("2"), "{totals}");
}

#[test]
fn a_wrong_ca_or_name_or_an_expired_certificate_is_logged_with_its_reason_and_retried() {
    let dir = scratch_dir("tls-wrong");
    certificates(&dir, "a", &["server"]);
    certificates(&dir, "b", &[]);
    for (case, tls, reason, cert) in [
        ("ca", "{ca: DIR/b-ca.pem}", "UnknownIssuer", "a-server.pem"),
        (
            "expired",
            "{ca: DIR/a-ca.pem}",
            "Expired",
            "a-server-expired.pem",
        ),
        (
            "name",
            "{ca: DIR/a-ca.pem, server_name: elsewhere.example}",
            "not valid for name",
            "a-server.pem",
        ),
    ] {
        let case_dir = dir.join(case);
        std::fs::create_dir_all(&case_dir).unwrap();
        // socat serves one connection: a server of its own for each case.
        let (_socat, port) = tls_sink_with(&dir, &case_dir.join("out.txt"), cert);
        let mut wishbone = Wishbone::start(
            &case_dir,
            &tls_output(&dir, port, tls),
            &["--drain-timeout", "1"],
        );
        let line = wishbone.output.wait_for("TLS handshake failed", MINUTE);
        assert!(line.contains(reason), "{case}: {line}");
        // Retried, not a crash: still running after several backoff rounds.
        std::thread::sleep(Duration::from_millis(600));
        assert_eq!(
            wishbone.output.count("TLS handshake failed"),
            1,
            "{case}: logged once per outage"
        );
        let status = wishbone.stop();
        assert_eq!(
            status.code(),
            Some(0),
            "{case}: nothing was sent, nothing is left"
        );
    }
}

fn check(dir: &Path, tls: &str) -> (Option<i32>, String) {
    let file = dir.join("check.yaml");
    std::fs::write(&file, tls_output(dir, 2000, tls)).unwrap();
    let output = Command::new(binary("wishbone"))
        .args(["check", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned()
            + &String::from_utf8_lossy(&output.stdout),
    )
}

#[test]
fn check_names_missing_files_a_key_that_does_not_match_an_expired_certificate_and_an_argument_out_of_place()
 {
    let dir = scratch_dir("tls-check");
    certificates(&dir, "a", &["server", "client"]);
    let (code, text) = check(&dir, "{ca: DIR/missing.pem}");
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("missing.pem") && text.contains("output"),
        "{text}"
    );
    let (code, text) = check(
        &dir,
        "{ca: DIR/a-ca.pem, cert: DIR/a-client.pem, key: DIR/a-server.key}",
    );
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("does not match"), "{text}");
    let (code, text) = check(
        &dir,
        "{ca: DIR/a-ca.pem, cert: DIR/a-client-expired.pem, key: DIR/a-client.key}",
    );
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("a-client-expired.pem") && text.contains("expired on"),
        "{text}"
    );
    let (code, text) = check(&dir, "{ca: DIR/a-ca.pem, verify_peer: true}");
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("`tls.verify_peer` is for inputs"), "{text}");
    let (code, text) = check(
        &dir,
        "{ca: DIR/a-ca.pem, cert: DIR/a-client.pem, key: DIR/a-client.key}",
    );
    assert_eq!(code, Some(0), "{text}");
}

#[test]
fn the_websocket_output_speaks_wss() {
    let dir = scratch_dir("tls-wss");
    certificates(&dir, "a", &["server"]);
    let server = Sink::start_secure_websocket(
        &dir,
        "wss",
        &dir.join("a-server.pem"),
        &dir.join("a-server.key"),
    );
    let bootstrap = format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         output: {{module: wishbone.output.websocket, arguments: {{url: \"wss://localhost:{}/\", tls: {{ca: DIR/a-ca.pem}}}}}}\n\
         routingtable:\n  - input.outbox -> output.inbox\n",
        server.port
    )
    .replace("DIR", &dir.display().to_string());
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    const LINES: usize = 100_000;
    let data = numbered_lines(LINES);
    send(wishbone.input_port("input"), &data);
    server.wait_for_lines(LINES, MINUTE);
    assert!(wishbone.stop().success());
    assert_eq!(
        sha256(&server.received()),
        sha256(&data),
        "one frame a line, in order"
    );
    let totals = wishbone
        .output
        .wait_for("output totals module=output", MINUTE);
    assert_eq!(field(&totals, "delivered"), Some("100000"), "{totals}");
}

#[test]
fn relp_over_tls_from_wishbone_to_wishbone() {
    let dir = scratch_dir("tls-relp");
    certificates(&dir, "a", &["server"]);
    let sink = Sink::start(&dir, "sink");
    let relp_port = free_port();
    let server = format!(
        "modules:\n  input: {{module: wishbone.input.relp, arguments: {{address: 127.0.0.1, port: {relp_port}, tls: {{cert: DIR/a-server.pem, key: DIR/a-server.key}}}}}}\n  \
         output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {}}}}}\n\
         routingtable:\n  - input.outbox -> output.inbox\n",
        sink.port
    )
    .replace("DIR", &dir.display().to_string());
    let client = format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         output: {{module: wishbone.output.relp, arguments: {{host: localhost, port: {relp_port}, reconnect_initial: 0.05, reconnect_max: 0.2, tls: {{ca: DIR/a-ca.pem}}}}}}\n\
         routingtable:\n  - input.outbox -> output.inbox\n"
    )
    .replace("DIR", &dir.display().to_string());
    let server_dir = dir.join("server");
    let client_dir = dir.join("client");
    std::fs::create_dir_all(&server_dir).unwrap();
    std::fs::create_dir_all(&client_dir).unwrap();
    let mut server = Wishbone::start(&server_dir, &server, &[]);
    server.output.wait_for("listening module=input", MINUTE);
    let mut client = Wishbone::start(&client_dir, &client, &[]);
    const LINES: usize = 100_000;
    let data = numbered_lines(LINES);
    send(client.input_port("input"), &data);
    sink.wait_for_lines(LINES, MINUTE);
    assert!(client.stop().success());
    assert!(server.stop().success());
    assert_eq!(
        sha256(&sink.received()),
        sha256(&data),
        "every line once, in order"
    );
    let totals = server.output.wait_for("input totals module=input", MINUTE);
    assert_eq!(field(&totals, "accepted"), Some("100000"), "{totals}");
}

/// Puts `contents` at `path` the way renewals do: a new file renamed over it.
fn replace(path: &Path, contents: &[u8]) {
    let fresh = path.with_extension("new");
    std::fs::write(&fresh, contents).unwrap();
    std::fs::rename(&fresh, path).unwrap();
}

/// Makes `live.pem` and `live.key` in `dir` hold `{pair}.pem` and `.key`.
fn renew(dir: &Path, pair: &str) {
    for extension in ["pem", "key"] {
        let contents = std::fs::read(dir.join(format!("{pair}.{extension}"))).unwrap();
        replace(&dir.join(format!("live.{extension}")), &contents);
    }
}

#[test]
fn a_renewed_certificate_serves_new_clients_without_a_restart() {
    let dir = scratch_dir("tls-renewed");
    certificates(&dir, "a", &["server"]);
    certificates(&dir, "b", &["server"]);
    renew(&dir, "a-server");
    let sink = Sink::start(&dir, "sink");
    let bootstrap = tls_input(&dir, "{cert: DIR/live.pem, key: DIR/live.key}", sink.port);
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    let port = wishbone.input_port("input");
    let (a_ca, b_ca) = (dir.join("a-ca.pem"), dir.join("b-ca.pem"));
    client_sends(port, &a_ca, None, "a\n");
    sink.wait_for_lines(1, MINUTE);
    // A renewal gone wrong: the old certificate stays in use.
    replace(
        &dir.join("live.pem"),
        b"-----BEGIN CERTIFICATE-----\ngarbage\n",
    );
    wait_until(MINUTE, "the unusable files logged", || {
        client_sends(port, &a_ca, None, "still a\n");
        wishbone.output.count("cannot be used") > 0
    });
    client_sends(port, &a_ca, None, "still a\n");
    // The renewal proper: a client trusting only b's CA gets in.
    renew(&dir, "b-server");
    let has = |line: &str| {
        String::from_utf8(sink.received())
            .unwrap()
            .lines()
            .any(|received| received == line)
    };
    wait_until(MINUTE, "a client of b's CA served", || {
        client_sends(port, &b_ca, None, "b\n");
        std::thread::sleep(Duration::from_millis(50));
        has("b")
    });
    client_sends(port, &a_ca, None, "a after the renewal\n");
    client_sends(port, &b_ca, None, "b again\n");
    wait_until(MINUTE, "the last line", || has("b again"));
    assert!(wishbone.stop().success());
    assert!(
        has("still a"),
        "the old certificate served until the renewal"
    );
    assert!(
        !has("a after the renewal"),
        "a client of a's CA is refused the renewed certificate"
    );
    assert_eq!(wishbone.output.count("read the renewed TLS certificate"), 1);
}

#[test]
fn an_output_presents_its_certificate_to_an_input_that_asks() {
    let dir = scratch_dir("tls-output-identity");
    certificates(&dir, "a", &["server", "client"]);
    let sink = Sink::start(&dir, "sink");
    let receiver = tls_input(
        &dir,
        "{cert: DIR/a-server.pem, key: DIR/a-server.key, ca: DIR/a-ca.pem, verify_peer: true}",
        sink.port,
    );
    let receiver_dir = dir.join("receiver");
    std::fs::create_dir_all(&receiver_dir).unwrap();
    let mut receiver = Wishbone::start(&receiver_dir, &receiver, &[]);
    let sender_dir = dir.join("sender");
    std::fs::create_dir_all(&sender_dir).unwrap();
    let mut sender = Wishbone::start(
        &sender_dir,
        &tls_output(
            &dir,
            receiver.input_port("input"),
            "{ca: DIR/a-ca.pem, cert: DIR/a-client.pem, key: DIR/a-client.key}",
        ),
        &[],
    );
    let data = numbered_lines(10_000);
    send(sender.input_port("input"), &data);
    sink.wait_for_lines(10_000, MINUTE);
    assert!(sender.stop().success());
    assert!(receiver.stop().success());
    assert_eq!(sha256(&sink.received()), sha256(&data));
    assert_eq!(receiver.output.count("TLS handshake failed"), 0);
}
