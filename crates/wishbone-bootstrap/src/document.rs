//! The raw shapes of a bootstrap file, before anything is checked.

use serde_yaml::{Mapping, Value};

use crate::Problem;

/// Parses the text into a YAML document; a syntax error is the one problem
/// that stops everything else from being checked.
pub(crate) fn parse(text: &str) -> Result<Value, Problem> {
    serde_yaml::from_str::<Value>(text).map_err(|error| Problem::new("syntax", error.to_string()))
}

/// The keys of a mapping as strings, with the values; a non-string key
/// becomes a problem.
pub(crate) fn entries<'a>(
    mapping: &'a Mapping,
    place: &str,
    problems: &mut Vec<Problem>,
) -> Vec<(&'a str, &'a Value)> {
    mapping
        .iter()
        .filter_map(|(key, value)| match key.as_str() {
            Some(key) => Some((key, value)),
            None => {
                problems.push(Problem::new(
                    place,
                    format!("key {} is not a name", describe(key)),
                ));
                None
            }
        })
        .collect()
}

/// A short description of a value for error messages.
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("the boolean `{b}`"),
        Value::Number(n) => format!("the number `{n}`"),
        Value::String(s) => format!("the text `{s}`"),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Tagged(tagged) => format!("a value tagged `{}`", tagged.tag),
    }
}
