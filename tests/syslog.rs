//! Syslog through wishbone with real clients on loopback: util-linux
//! `logger` sending RFC 5424 with octet counting, rsyslog forwarding RFC
//! 5424 and RFC 3164 (octet-counted and newline-framed) to wishbone, and
//! wishbone's `encode` feeding an rsyslog imtcp that writes what it parsed.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);

/// tcp input (`framing`) → decode syslog → `middle` modules → tcp output
/// to `sink`; `middle` is a list of (name, module line) run in order.
fn decoding_bootstrap(framing: &str, middle: &[(&str, &str)], sink: u16) -> String {
    let mut text = format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0, framing: {framing}}}}}\n  \
         syslog: {{module: wishbone.process.decode, arguments: {{format: syslog}}}}\n"
    );
    for (name, module) in middle {
        text += &format!("  {name}: {module}\n");
    }
    text += &format!(
        "  output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {sink}, reconnect_max: 0.2}}}}\n\
         routingtable:\n  - input.outbox -> syslog.inbox\n"
    );
    let mut previous = "syslog".to_string();
    for (name, _) in middle {
        text += &format!("  - {previous}.outbox -> {name}.inbox\n");
        previous = name.to_string();
    }
    text + &format!("  - {previous}.outbox -> output.inbox\n")
}

fn events(sink: &Sink) -> Vec<Value> {
    String::from_utf8(sink.received())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("decoded events are JSON"))
        .collect()
}

/// Sends each line of `lines` with `logger`, RFC 5424, octet counting.
fn logger(dir: &std::path::Path, port: u16, tag: &str, priority: &str, lines: &[String]) {
    let file = dir.join(format!("{tag}-{priority}.txt"));
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let status = Command::new("logger")
        .args(["-T", "--octet-count", "--rfc5424", "-n", "127.0.0.1", "-P"])
        .arg(port.to_string())
        .args(["-t", tag, "-p", priority, "--msgid", "PAY", "-f"])
        .arg(&file)
        .status()
        .expect("logger runs");
    assert!(status.success());
}

fn host_name() -> String {
    let output = Command::new("hostname").output().unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

#[test]
fn logger_octet_counted_rfc_5424_is_decoded_and_filtered_exactly() {
    require_installed(
        "command -v logger",
        "logger is missing: `apt-get install bsdutils`",
    );
    let dir = scratch_dir("syslog-logger");
    let sink = Sink::start(&dir, "errors");
    let filter = (
        "billing_errors",
        "{module: wishbone.flow.filter, arguments: {condition: '.severity <= 3 and .appname == \"billing\"'}}",
    );
    let mut wishbone = Wishbone::start(
        &dir,
        &decoding_bootstrap("octet_counted", &[filter], sink.port),
        &[],
    );
    let port = wishbone.input_port("input");
    let texts = |what: &str, count: usize| -> Vec<String> {
        (0..count)
            .map(|n| format!("{what} {n} with  two spaces, \"quotes\" and a ] bracket"))
            .collect()
    };
    let matching = texts("payment failed", 300);
    logger(&dir, port, "billing", "local0.err", &matching);
    logger(
        &dir,
        port,
        "billing",
        "local0.info",
        &texts("payment ok", 200),
    );
    logger(&dir, port, "web", "local0.crit", &texts("web down", 200));
    logger(
        &dir,
        port,
        "billing",
        "local0.emerg",
        &texts("billing gone", 50),
    );
    sink.wait_for_lines(350, MINUTE);
    std::thread::sleep(Duration::from_millis(300));
    assert!(wishbone.stop().success());
    let received = events(&sink);
    assert_eq!(received.len(), 350);
    let host = host_name();
    for (event, text) in received.iter().take(300).zip(&matching) {
        assert_eq!(event["facility"], 16, "{event}");
        assert_eq!(event["severity"], 3, "{event}");
        assert_eq!(event["appname"], "billing", "{event}");
        assert_eq!(event["msgid"], "PAY", "{event}");
        assert!(
            event["hostname"].as_str().unwrap().starts_with(&host),
            "{event}"
        );
        assert_eq!(event["message"], text.as_str(), "{event}");
        assert!(
            event["timestamp"].as_str().unwrap().starts_with("20"),
            "{event}"
        );
    }
    assert!(received[300..].iter().all(|event| {
        event["severity"] == 0
            && event["message"]
                .as_str()
                .unwrap()
                .starts_with("billing gone")
    }));
    assert_eq!(
        wishbone.queue_total("billing_errors.rejected", "discarded_total"),
        400
    );
}

/// Lines for rsyslog's imtcp, which parses them before forwarding.
fn rfc_5424_lines(count: usize) -> Vec<u8> {
    (0..count)
        .map(|n| format!("<131>1 2026-12-04T10:00:{:02}.5Z web-{} billing {n} PAY [meta@1 n=\"{n}\"] message {n}\n", n % 60, n % 3))
        .collect::<String>()
        .into_bytes()
}

#[test]
fn rsyslog_forwards_rfc_5424_and_rfc_3164_octet_counted_and_newline_framed() {
    let dir = scratch_dir("syslog-rsyslog-in");
    let sink = Sink::start(&dir, "decoded");
    let mut wishbone = Wishbone::start(&dir, &decoding_bootstrap("auto", &[], sink.port), &[]);
    let port = wishbone.input_port("input");
    let forwarders = [
        ("octet-counted", "RSYSLOG_SyslogProtocol23Format"),
        ("traditional", "RSYSLOG_SyslogProtocol23Format"),
        ("octet-counted", "RSYSLOG_TraditionalForwardFormat"),
        ("traditional", "RSYSLOG_TraditionalForwardFormat"),
    ];
    const EACH: usize = 500;
    let mut rsyslogs = Vec::new();
    for (index, (framing, template)) in forwarders.iter().enumerate() {
        let rsyslog = Rsyslog::syslog_forwarder(
            &dir.join(format!("rsyslog-{index}")),
            port,
            framing,
            template,
        );
        send(rsyslog.port, &rfc_5424_lines(EACH));
        sink.wait_for_lines(EACH * (index + 1), MINUTE);
        rsyslogs.push(rsyslog);
    }
    assert!(wishbone.stop().success());
    let received = events(&sink);
    assert_eq!(received.len(), EACH * forwarders.len());
    for (index, chunk) in received.chunks(EACH).enumerate() {
        let rfc_5424 = forwarders[index].1.contains("Protocol23");
        let mut numbers: Vec<u64> = Vec::new();
        for event in chunk {
            assert_eq!(
                (event["facility"].clone(), event["severity"].clone()),
                (16.into(), 3.into()),
                "{event}"
            );
            assert_eq!(event["appname"], "billing", "{event}");
            let message = event["message"].as_str().unwrap();
            let n: u64 = message
                .strip_prefix("message ")
                .expect(message)
                .parse()
                .unwrap();
            assert_eq!(event["hostname"], format!("web-{}", n % 3), "{event}");
            assert!(
                event["timestamp"]
                    .as_str()
                    .unwrap()
                    .contains(&format!(":{:02}", n % 60)),
                "{event}"
            );
            if rfc_5424 {
                assert_eq!(event["procid"], n.to_string(), "{event}");
                assert_eq!(event["msgid"], "PAY", "{event}");
                assert_eq!(
                    event["structured_data"]["meta@1"]["n"],
                    n.to_string(),
                    "{event}"
                );
            } else {
                assert_eq!(
                    event["procid"],
                    n.to_string(),
                    "RFC 3164 carries the pid in the tag: {event}"
                );
            }
            numbers.push(n);
        }
        numbers.sort();
        assert_eq!(
            numbers,
            (0..EACH as u64).collect::<Vec<_>>(),
            "{:?}",
            forwarders[index]
        );
    }
}

#[test]
fn encoded_events_reach_rsyslog_octet_counted_with_their_fields() {
    let dir = scratch_dir("syslog-rsyslog-out");
    let rsyslog = Rsyslog::syslog_sink(&dir.join("rsyslog"));
    let bootstrap = format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         syslog: {{module: wishbone.process.encode, arguments: {{format: syslog}}}}\n  \
         output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {}, framing: octet_counted, reconnect_max: 0.2}}}}\n\
         routingtable:\n  - input.outbox -> syslog.inbox\n  - syslog.outbox -> output.inbox\n",
        rsyslog.port
    );
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    const EVENTS: usize = 2_000;
    let mut data = String::new();
    for n in 0..EVENTS {
        let event = serde_json::json!({
            "facility": n % 24, "severity": n % 8, "timestamp": format!("2026-12-04T10:{:02}:{:02}.25+00:00", n / 60 % 60, n % 60),
            "hostname": format!("host-{}", n % 5), "appname": "billing", "procid": (n * 7).to_string(), "msgid": "PAY",
            "structured_data": {"meta@1": {"n": n.to_string(), "q": "a \"quoted\" ] value"}},
            "message": format!("message {n}\nsecond line of it")
        });
        data += &(event.to_string() + "\n");
    }
    send(wishbone.input_port("input"), data.as_bytes());
    wait_until(MINUTE, "rsyslog to write every message", || {
        rsyslog
            .written()
            .iter()
            .filter(|byte| **byte == b'\n')
            .count()
            >= EVENTS
    });
    assert!(wishbone.stop().success());
    let written = String::from_utf8(rsyslog.written()).unwrap();
    let lines: Vec<&str> = written.lines().collect();
    assert_eq!(lines.len(), EVENTS);
    for (n, line) in lines.iter().enumerate() {
        let fields: Vec<&str> = line.splitn(9, '|').collect();
        assert_eq!(fields[0], (n % 24).to_string(), "facility: {}", line);
        assert_eq!(fields[1], (n % 8).to_string(), "severity: {}", line);
        assert!(
            fields[2].starts_with(&format!("2026-12-04T10:{:02}:{:02}", n / 60 % 60, n % 60)),
            "{}",
            line
        );
        assert_eq!(fields[3], format!("host-{}", n % 5));
        assert_eq!(fields[4], "billing");
        assert_eq!(fields[5], (n * 7).to_string());
        assert_eq!(fields[6], "PAY");
        assert_eq!(
            fields[7],
            format!("[meta@1 n=\"{n}\" q=\"a \\\"quoted\\\" \\] value\"]")
        );
        // The newline arrived inside the frame; rsyslog writes it escaped.
        assert_eq!(fields[8], format!("message {n}#012second line of it"));
    }
}

#[test]
fn an_empty_event_is_rejected_by_octet_counting_and_the_stream_goes_on() {
    // A frame's length starts at 1: "0 " would break the receiver's
    // stream. The empty event goes to `failed` instead, counted.
    let dir = scratch_dir("syslog-empty-octet");
    let sink = Sink::start(&dir, "sink");
    let failed = Sink::start(&dir, "failed");
    let bootstrap = format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0, delimiter: \"|\"}}}}\n  \
         output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {}, framing: octet_counted, failed: true, reconnect_max: 0.2}}}}\n  \
         aside: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {}, delimiter: \"|\\n\"}}}}\n\
         routingtable:\n  - input.outbox -> output.inbox\n  - output.failed -> aside.inbox\n",
        sink.port, failed.port
    );
    let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
    // Events that end in a newline, for the sink writes whole lines only.
    send(wishbone.input_port("input"), b"one\n||two\n||three\n|");
    wait_until(MINUTE, "the three frames and the two empty events", || {
        sink.received() == b"4 one\n4 two\n6 three\n" && failed.received() == b"|\n|\n"
    });
    assert!(wishbone.stop().success());
    assert_eq!(wishbone.queue_total("output.inbox", "in_total"), 5);
    assert!(wishbone.output.text().contains("no octet-counted frame"));
}

/// `logger` sends RFC 5424 messages whose text is logfmt: decoded, the
/// text read as logfmt, reshaped by a jq program and filtered; every field
/// of every message that passes is checked.
#[test]
fn logger_logfmt_messages_are_parsed_reshaped_and_filtered_field_by_field() {
    require_installed(
        "command -v logger",
        "logger is missing: `apt-get install bsdutils`",
    );
    let dir = scratch_dir("syslog-logfmt");
    let sink = Sink::start(&dir, "slow");
    let middle = [
        (
            "pairs",
            "{module: wishbone.process.decode, arguments: {format: logfmt, field: message}}",
        ),
        (
            "reshape",
            "{module: wishbone.process.jq, arguments: {program: '{time: .timestamp, host: .hostname, app: .appname, user, path, took: (.duration | tonumber)}'}}",
        ),
        (
            "slow",
            "{module: wishbone.flow.filter, arguments: {condition: '.took >= 500'}}",
        ),
    ];
    let mut wishbone = Wishbone::start(
        &dir,
        &decoding_bootstrap("octet_counted", &middle, sink.port),
        &[],
    );
    let lines: Vec<String> = (0..1_000)
        .map(|n| {
            format!(
                "user=u{n} path=\"/orders/{n} list\" duration={} note=\"a \\\"quoted\\\" word\"",
                n % 1_000
            )
        })
        .collect();
    logger(
        &dir,
        wishbone.input_port("input"),
        "shop",
        "local0.info",
        &lines,
    );
    sink.wait_for_lines(500, MINUTE);
    std::thread::sleep(Duration::from_millis(300));
    assert!(wishbone.stop().success());
    let received = events(&sink);
    assert_eq!(received.len(), 500);
    let host = host_name();
    for (event, n) in received.iter().zip(500..) {
        let keys: Vec<&String> = event.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 6, "{event}");
        assert!(event["time"].as_str().unwrap().starts_with("20"), "{event}");
        assert!(
            event["host"].as_str().unwrap().starts_with(&host),
            "{event}"
        );
        assert_eq!(event["app"], "shop", "{event}");
        assert_eq!(event["user"], format!("u{n}"), "{event}");
        assert_eq!(event["path"], format!("/orders/{n} list"), "{event}");
        assert_eq!(event["took"], n, "{event}");
    }
}
