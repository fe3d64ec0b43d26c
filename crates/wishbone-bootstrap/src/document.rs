//! The raw shapes of a bootstrap file, before anything is checked.

use serde_yaml::{Mapping, Value};

use crate::Problem;

/// Parses the text into a YAML document; a syntax error is the one problem
/// that stops everything else from being checked.
pub(crate) fn parse(text: &str) -> Result<Value, Problem> {
    if let Some((line, column)) = too_deep(text) {
        return Err(Problem::new(
            "syntax",
            format!(
                "line {line} column {column}: brackets nested deeper than {MOST_NESTING}; no bootstrap file needs that many"
            ),
        ));
    }
    serde_yaml::from_str::<Value>(text).map_err(|error| Problem::new("syntax", error.to_string()))
}

/// Flow collections (`[...]`, `{...}`) nested this deep at most: far past
/// any real file, and far short of where the YAML parser's time grows with
/// the square of the depth.
pub(crate) const MOST_NESTING: usize = 64;

/// Where (line and column, from 1) the brackets of flow collections first
/// nest deeper than [`MOST_NESTING`], if they do. One pass, outside
/// quoted text and comments.
fn too_deep(text: &str) -> Option<(usize, usize)> {
    let (mut depth, mut line, mut column) = (0usize, 1usize, 0usize);
    let mut quote: Option<char> = None;
    let (mut escaped, mut comment, mut previous) = (false, false, '\n');
    for character in text.chars() {
        column += 1;
        if character == '\n' {
            (line, column, comment) = (line + 1, 0, false);
        }
        match (quote, character) {
            _ if comment => {}
            (Some('"'), '\\') if !escaped => escaped = true,
            (Some(open), close) if close == open && !escaped => quote = None,
            (Some(_), _) => escaped = false,
            (None, '"' | '\'') => quote = Some(character),
            (None, '#') if previous.is_whitespace() => comment = true,
            (None, '[' | '{') => {
                depth += 1;
                if depth > MOST_NESTING {
                    return Some((line, column));
                }
            }
            (None, ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        previous = character;
    }
    None
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_nested_past_the_limit_are_refused_where_they_go_too_deep() {
        let deep = format!(
            "modules:\n  a: {}{}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let problem = parse(&deep).unwrap_err();
        assert!(
            problem.message.starts_with("line 2 column 70:"),
            "{}",
            problem.message
        );
        let fine = format!(
            "a: {}1{}",
            "[".repeat(MOST_NESTING),
            "]".repeat(MOST_NESTING)
        );
        assert!(parse(&fine).is_ok());
        let quoted = format!(
            "a: \"{}\" # {}\nb: '{}'",
            "[".repeat(100),
            "{".repeat(100),
            "[".repeat(100)
        );
        assert!(
            parse(&quoted).is_ok(),
            "brackets in quotes and comments do not count"
        );
    }
}
