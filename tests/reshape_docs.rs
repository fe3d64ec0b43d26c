//! The worked examples of `docs/routing.md`, "Reshaping events", run as
//! written: each bootstrap (its input on a free port, its output at a sink
//! of the test) gets the example's input, and what arrives is the
//! example's output.

use std::time::Duration;

use serde_json::Value;
use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);

/// A worked example: its name, bootstrap, input lines and output values.
struct Example {
    name: String,
    bootstrap: String,
    input: String,
    output: Vec<Value>,
}

/// The first fenced block of `language` in `text`.
fn block<'a>(text: &'a str, language: &str) -> &'a str {
    let start = text
        .find(&format!("```{language}\n"))
        .unwrap_or_else(|| panic!("a {language} block"))
        + language.len()
        + 4;
    let length = text[start..].find("```").expect("a closed block");
    &text[start..start + length]
}

fn examples() -> Vec<Example> {
    let page =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/routing.md")).unwrap();
    page.split("<!-- worked example: ")
        .skip(1)
        .map(|part| {
            let name = part.split(" -->").next().unwrap().to_string();
            Example {
                name,
                bootstrap: block(part, "yaml").to_string(),
                input: block(part, "text").to_string(),
                output: block(part, "json")
                    .lines()
                    .map(|line| serde_json::from_str(line).unwrap())
                    .collect(),
            }
        })
        .collect()
}

#[test]
fn every_worked_example_gives_its_output() {
    let examples = examples();
    assert!(examples.len() >= 3, "{} examples", examples.len());
    for example in examples {
        let dir = scratch_dir(&format!("reshape-docs-{}", example.name.replace(' ', "-")));
        let sink = Sink::start(&dir, "output");
        assert!(
            example.bootstrap.contains("port: 5140") && example.bootstrap.contains("port: 10001")
        );
        let bootstrap = example
            .bootstrap
            .replace("port: 5140", "port: 0, address: 127.0.0.1")
            .replace(
                "port: 10001",
                &format!("port: {}, host: 127.0.0.1", sink.port),
            );
        let mut wishbone = Wishbone::start(&dir, &bootstrap, &[]);
        send(wishbone.input_port("input"), example.input.as_bytes());
        sink.wait_for_lines(example.output.len(), MINUTE);
        assert!(wishbone.stop().success(), "{}", example.name);
        let arrived: Vec<Value> = String::from_utf8(sink.received())
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(arrived, example.output, "{}", example.name);
    }
}
