//! Test suites for `wishbone test`: cases that put events on a queue of a
//! bootstrap's processing and flow modules and say what must come out.
//!
//! ```yaml
//! tests:
//!   - name: errors are kept
//!     input: {queue: errors.inbox, events: ['{"level":"error"}', '{"level":"info"}']}
//!     expect:
//!       - {queue: errors.outbox, events: ['{"level":"error"}']}
//!       - {queue: errors.rejected, count: 1}
//!       - {queue: errors.outbox, condition: '.level == "error"'}
//! ```
//!
//! An event is text; one written as a YAML mapping or list is taken as
//! that JSON value's text.

use std::path::Path;

use serde::Deserialize;

/// Every case of one file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// The cases, run in order, each on modules of its own.
    pub tests: Vec<Case>,
}

/// One case.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What it is called in the report.
    pub name: String,
    /// What goes in.
    pub input: Input,
    /// What must come out.
    pub expect: Vec<Expectation>,
}

/// The events a case puts on one queue.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// `module.queue`: an incoming queue of a processing or flow module.
    pub queue: String,
    /// The events, in order.
    #[serde(deserialize_with = "texts")]
    pub events: Vec<String>,
}

/// What one queue must have carried, one of three ways.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// `module.queue`: a queue a module puts events on.
    pub queue: String,
    /// Exactly these events, in order (as JSON values where both sides are
    /// JSON, else as text).
    #[serde(default, deserialize_with = "some_texts")]
    pub events: Option<Vec<String>>,
    /// This many events.
    pub count: Option<usize>,
    /// A jq condition every event holds.
    pub condition: Option<String>,
}

fn text(value: serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text,
        other => other.to_string(),
    }
}

fn texts<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let values = Vec::<serde_json::Value>::deserialize(deserializer)?;
    Ok(values.into_iter().map(text).collect())
}

fn some_texts<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<String>>, D::Error> {
    texts(deserializer).map(Some)
}

/// Reads a suite; the problem, with its place, when it cannot be used.
pub fn load_suite(path: &Path) -> Result<Suite, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let suite: Suite =
        serde_yaml::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))?;
    for case in &suite.tests {
        for expectation in &case.expect {
            let ways = [
                expectation.events.is_some(),
                expectation.count.is_some(),
                expectation.condition.is_some(),
            ];
            if ways.iter().filter(|way| **way).count() != 1 {
                return Err(format!(
                    "{}: test `{}`, queue `{}`: expect one of `events`, `count` and `condition`",
                    path.display(),
                    case.name,
                    expectation.queue
                ));
            }
        }
    }
    Ok(suite)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_shape_reads_and_mappings_are_json_text() {
        let suite: Suite = serde_yaml::from_str(
            "tests:\n  - name: errors are kept\n    input: {queue: errors.inbox, events: ['{\"level\":\"error\"}', {level: info}]}\n    expect:\n      - {queue: errors.outbox, events: ['{\"level\":\"error\"}']}\n      - {queue: errors.rejected, count: 1}\n",
        )
        .unwrap();
        let case = &suite.tests[0];
        assert_eq!(
            case.input.events,
            ["{\"level\":\"error\"}", "{\"level\":\"info\"}"]
        );
        assert_eq!(case.expect[1].count, Some(1));
    }
}
