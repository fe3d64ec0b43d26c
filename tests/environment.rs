//! What the bootstrap file leaves to the environment and to files beside
//! it: `${NAME}` values (a port, a token), an unset name refused with its
//! place, and an HTTP input that answers only clients with the token or a
//! user's password.

use std::process::Command;
use std::time::Duration;

use wishbone_e2e::http::request_with_headers;
use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn a_port_from_the_environment_is_served_and_an_unset_name_exits_2() {
    let dir = scratch_dir("environment-port");
    let sink = Sink::start(&dir, "sink");
    let port = free_port();
    let bootstrap = "modules:\n  input: {module: wishbone.input.tcp, arguments: {port: ${INPUT_PORT}}}\n  output: {module: wishbone.output.tcp, arguments: {host: ${SINK_HOST:-127.0.0.1}, port: ${SINK_PORT}}}\nroutingtable:\n  - input.outbox -> output.inbox\n";
    let mut wishbone = Wishbone::start_with_env(
        &dir,
        bootstrap,
        &[],
        &[
            ("INPUT_PORT", &port.to_string()),
            ("SINK_PORT", &sink.port.to_string()),
        ],
    );
    assert_eq!(wishbone.input_port("input"), port);
    send(port, &numbered_lines(100));
    sink.wait_for_lines(100, MINUTE);
    assert!(wishbone.stop().success());

    let file = dir.join("unset.yaml");
    std::fs::write(&file, bootstrap).unwrap();
    let output = Command::new(binary("wishbone"))
        .args(["check", "--config"])
        .arg(&file)
        .env_remove("INPUT_PORT")
        .env("SINK_PORT", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains("line 2, column 57: environment: `${INPUT_PORT}`: INPUT_PORT is not set"),
        "the name and its place:\n{text}"
    );
    let debug = Command::new(binary("wishbone"))
        .args(["debug", "--config"])
        .arg(&file)
        .env_remove("INPUT_PORT")
        .env("SINK_PORT", "1")
        .output()
        .unwrap();
    assert_eq!(debug.status.code(), Some(2), "the server does not start");
}

/// An HTTP input with `auth`, its events to `sink`.
fn guarded_input(auth: &str, sink: u16) -> String {
    format!(
        "modules:\n  input: {{module: wishbone.input.http, arguments: {{port: 0, auth: {auth}}}}}\n  output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {sink}}}}}\nroutingtable:\n  - input.outbox -> output.inbox\n"
    )
}

#[test]
fn the_http_input_answers_401_without_the_token_and_200_with_it() {
    let dir = scratch_dir("environment-bearer");
    let sink = Sink::start(&dir, "sink");
    let token_file = dir.join("token");
    std::fs::write(&token_file, "s3cret-token\n").unwrap();
    let bootstrap = guarded_input("{bearer_token_file: \"${TOKEN_FILE}\"}", sink.port);
    let token_path = token_file.display().to_string();
    let mut wishbone =
        Wishbone::start_with_env(&dir, &bootstrap, &[], &[("TOKEN_FILE", &token_path)]);
    let port = wishbone.logged_port("listening module=input");
    let post = |headers: &[(&str, &str)]| {
        request_with_headers(port, "POST", "/", headers, Some("{\"a\":1}\n")).unwrap()
    };
    let refused = post(&[]);
    assert_eq!(refused.status, 401);
    assert_eq!(refused.header("www-authenticate"), Some("Bearer"));
    assert_eq!(post(&[("authorization", "Bearer wrong")]).status, 401);
    assert_eq!(
        post(&[("authorization", "Bearer s3cret-token")]).status,
        200
    );
    sink.wait_for_lines(1, MINUTE);
    assert!(wishbone.stop().success());
    assert_eq!(sink.line_count(), 1, "only the admitted body");
    let log = wishbone.output.text();
    assert!(log.contains("unauthorized=2"), "{log}");
    assert!(!log.contains("s3cret-token"), "the token is never logged");
}

#[test]
fn basic_users_from_an_htpasswd_file_and_a_store_token_from_the_environment() {
    let dir = scratch_dir("environment-basic");
    let sink = Sink::start(&dir, "sink");
    // alice's password is "wonder land", hashed by bcrypt (htpasswd -B).
    let users = dir.join("users");
    std::fs::write(
        &users,
        "alice:$2b$05$waGzfsyomVDddOiMD6PCFeRVvAOo9NeRDymkzBlS7t9LNCBOtUDZa\n",
    )
    .unwrap();
    let store = Wishbone::start(
        &dir,
        &guarded_input(
            &format!("{{basic_users_file: \"{}\"}}", users.display()),
            sink.port,
        ),
        &[],
    );
    let store_port = store.logged_port("listening module=input");
    // "alice:wonder land" in base64.
    let credentials = "Basic YWxpY2U6d29uZGVyIGxhbmQ=";
    assert_eq!(
        request_with_headers(
            store_port,
            "POST",
            "/",
            &[("authorization", credentials)],
            Some("x\n")
        )
        .unwrap()
        .status,
        200
    );
    assert_eq!(
        request_with_headers(
            store_port,
            "POST",
            "/",
            &[("authorization", "Basic YWxpY2U6eA==")],
            Some("x\n")
        )
        .unwrap()
        .status,
        401,
        "alice with another password"
    );
    // Another server sends through its HTTP output, the credentials in a
    // header from its environment.
    let sender_dir = dir.join("sender");
    std::fs::create_dir_all(&sender_dir).unwrap();
    let sender = format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{port: 0}}}}\n  store: {{module: wishbone.output.http, arguments: {{url: \"http://127.0.0.1:{store_port}/\", headers: {{Authorization: \"${{STORE_CREDENTIALS}}\"}}}}}}\nroutingtable:\n  - input.outbox -> store.inbox\n"
    );
    let mut sending = Wishbone::start_with_env(
        &sender_dir,
        &sender,
        &[],
        &[("STORE_CREDENTIALS", credentials)],
    );
    send(sending.input_port("input"), &numbered_lines(50));
    sink.wait_for_lines(51, MINUTE);
    assert!(sending.stop().success());
    assert!(
        !sending.output.text().contains("YWxpY2U6d29uZGVyIGxhbmQ"),
        "never logged"
    );
}
