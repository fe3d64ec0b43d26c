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
/// letting `read_count` events be in flight (none: no buffer), a round
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
