//! The bootstraps measured.

/// One tcp input on a free port.
fn input() -> &'static str {
    "  input: {module: wishbone.input.tcp, arguments: {address: 127.0.0.1, port: 0}}\n"
}

fn output(name: &str, port: u16) -> String {
    format!(
        "  {name}: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {port}}}}}\n"
    )
}

/// Scenario I: input straight to one output.
pub fn proxy(port: u16) -> String {
    format!(
        "modules:\n{}{}routingtable:\n  - input.outbox -> output.inbox\n",
        input(),
        output("output", port)
    )
}

/// Scenario II: input, round robin over one output per port; with
/// `metrics`, the article's metrics section sent to a carbon that does not
/// exist (graphite-001).
pub fn round_robin(ports: &[u16], metrics: bool) -> String {
    let mut text = String::new();
    if metrics {
        text += "metrics:\n  graphite: {module: wishbone.builtin.metrics.graphite}\n";
    }
    text += "modules:\n";
    text += input();
    text += "  roundrobin: {module: wishbone.flow.roundrobin}\n";
    for (index, port) in ports.iter().enumerate() {
        text += &output(&format!("output_{index}"), *port);
    }
    if metrics {
        text += "  graphite_server: {module: wishbone.output.tcp, arguments: {host: graphite-001, port: 2013}}\n";
    }
    text += "routingtable:\n  - input.outbox -> roundrobin.inbox\n";
    for index in 0..ports.len() {
        text += &format!("  - roundrobin.out{index} -> output_{index}.inbox\n");
    }
    if metrics {
        text += "  - graphite.outbox -> graphite_server.inbox\n";
    }
    text
}

/// The seed's round-robin demo behind a tcp input: a write-ahead buffer
/// sending blocks of `read_count` events (none: no buffer), a round
/// robin, and one tcp or websocket output per port.
pub fn buffered(ports: &[u16], read_count: Option<usize>, websocket: bool) -> String {
    let mut text = String::from("modules:\n");
    text += input();
    let first = match read_count {
        Some(read_count) => {
            text += &format!(
                "  wal: {{module: wishbone.flow.wal, arguments: {{read_count: {read_count}, max_elements: 10000, when_full: block}}}}\n"
            );
            "wal"
        }
        None => "input",
    };
    text += "  roundrobin: {module: wishbone.flow.roundrobin}\n";
    for (index, port) in ports.iter().enumerate() {
        text += &if websocket {
            format!(
                "  output_{index}: {{module: wishbone.output.websocket, arguments: {{url: \"ws://127.0.0.1:{port}/\"}}}}\n"
            )
        } else {
            output(&format!("output_{index}"), *port)
        };
    }
    text += "routingtable:\n";
    if read_count.is_some() {
        text += "  - input.outbox -> wal.inbox\n";
    }
    text += &format!("  - {first}.outbox -> roundrobin.inbox\n");
    for index in 0..ports.len() {
        text += &format!("  - roundrobin.out{index} -> output_{index}.inbox\n");
    }
    text
}

/// tcp input → wal on disk at `path` (`sync` as given) → one tcp output.
pub fn on_disk(port: u16, path: &std::path::Path, read_count: usize, sync: &str) -> String {
    format!(
        "modules:\n{}  wal: {{module: wishbone.flow.wal, arguments: {{path: \"{}\", sync: {sync}, read_count: {read_count}, max_elements: 1000000, max_bytes: 400000000, when_full: block}}}}\n{}\
         routingtable:\n  - input.outbox -> wal.inbox\n  - wal.outbox -> output.inbox\n",
        input(),
        path.display(),
        output("output", port)
    )
}

/// rsyslog forwarding lines unchanged (imtcp → omfwd) through a queue
/// with the given parameters, such as a disk queue. Octet-counted framing
/// is off: the lines start with digits, which imtcp would take for a count.
pub fn rsyslog(dir: &std::path::Path, input_port: u16, port: u16, queue: &str) -> String {
    format!(
        "global(workDirectory=\"{dir}\")\n\
         module(load=\"imtcp\")\n\
         template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n\
         input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{input_port}\" ruleset=\"fwd\" supportOctetCountedFraming=\"off\")\n\
         ruleset(name=\"fwd\" {queue}) {{\n  \
         action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{port}\" protocol=\"tcp\" template=\"raw\")\n}}\n",
        dir = dir.display()
    )
}

/// The client side of a RELP hop: tcp input → RELP output to `relp_port`.
pub fn relp_client(relp_port: u16) -> String {
    format!(
        "modules:\n{}  output: {{module: wishbone.output.relp, arguments: {{host: 127.0.0.1, port: {relp_port}, window: 1024}}}}\n\
         routingtable:\n  - input.outbox -> output.inbox\n",
        input()
    )
}

/// The server side of a RELP hop: RELP input on `relp_port` → tcp output.
pub fn relp_server(relp_port: u16, port: u16) -> String {
    format!(
        "modules:\n  input: {{module: wishbone.input.relp, arguments: {{address: 127.0.0.1, port: {relp_port}, window: 1024}}}}\n{}\
         routingtable:\n  - input.outbox -> output.inbox\n",
        output("output", port)
    )
}

/// rsyslog's RELP hop, client side: imtcp → omrelp to `relp_port`.
pub fn rsyslog_relp_client(dir: &std::path::Path, input_port: u16, relp_port: u16) -> String {
    format!(
        "global(workDirectory=\"{dir}\")\nmodule(load=\"imtcp\")\nmodule(load=\"omrelp\")\n\
         template(name=\"raw\" type=\"string\" string=\"%rawmsg%\")\n\
         input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{input_port}\" ruleset=\"fwd\" supportOctetCountedFraming=\"off\")\n\
         ruleset(name=\"fwd\" queue.type=\"LinkedList\" queue.size=\"100000\") {{\n  \
         action(type=\"omrelp\" target=\"127.0.0.1\" port=\"{relp_port}\" template=\"raw\" windowSize=\"1024\")\n}}\n",
        dir = dir.display()
    )
}

/// rsyslog's RELP hop, server side: imrelp on `relp_port` → omfwd to `port`.
pub fn rsyslog_relp_server(dir: &std::path::Path, relp_port: u16, port: u16) -> String {
    format!(
        "global(workDirectory=\"{dir}\")\nmodule(load=\"imrelp\")\n\
         template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n\
         input(type=\"imrelp\" address=\"127.0.0.1\" port=\"{relp_port}\" ruleset=\"fwd\")\n\
         ruleset(name=\"fwd\" queue.type=\"LinkedList\" queue.size=\"100000\") {{\n  \
         action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{port}\" protocol=\"tcp\" template=\"raw\")\n}}\n",
        dir = dir.display()
    )
}

/// One side of a two-process hop: tcp input (TLS with `input_tls`) → tcp
/// output to `port` (TLS with `output_tls`), for a TLS hop against the
/// same hop in plain TCP.
pub fn hop_side(port: u16, input_tls: Option<&str>, output_tls: Option<&str>) -> String {
    let input_tls = input_tls
        .map(|tls| format!(", tls: {tls}"))
        .unwrap_or_default();
    let output_tls = output_tls
        .map(|tls| format!(", tls: {tls}"))
        .unwrap_or_default();
    format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0{input_tls}}}}}\n  \
         output: {{module: wishbone.output.tcp, arguments: {{host: localhost, port: {port}{output_tls}}}}}\n\
         routingtable:\n  - input.outbox -> output.inbox\n"
    )
}
