//! `${NAME}` in a bootstrap file: the environment's value, so that
//! addresses and secrets stay out of the file. `${NAME:-default}` when it
//! may be unset, `$$` for a `$`. Names are capitals, digits and `_`, as
//! the environment's are by convention: a `${name}` in lower case is left
//! as it is, for the modules' own placeholders (`wishbone.process.modify`'s
//! `${hostname}`). The text is read before it is parsed, as the server,
//! `check` and a reload all read it, so a value may be any YAML; comment
//! lines are left alone.

use std::borrow::Cow;

use crate::{Location, Problem};

/// `text` with every `${NAME}` replaced by `lookup(NAME)`; every name that
/// is unset without a default, or a `${` left open, is a problem at its
/// line and column.
pub(crate) fn substitute(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Cow<'_, str>, Vec<Problem>> {
    if !text.contains('$') {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    let mut problems = Vec::new();
    for (index, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        substitute_line(line, index + 1, &lookup, &mut out, &mut problems);
    }
    match problems.is_empty() {
        true => Ok(Cow::Owned(out)),
        false => Err(problems),
    }
}

fn substitute_line(
    line: &str,
    number: usize,
    lookup: &impl Fn(&str) -> Option<String>,
    out: &mut String,
    problems: &mut Vec<Problem>,
) {
    let mut rest = line;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let column = line.len() - rest.len() + dollar + 1;
        let at = |mut problem: Problem| {
            problem.at = Some(Location {
                line: number,
                column,
            });
            problem
        };
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let Some(inner) = after.strip_prefix('{') else {
            out.push('$');
            rest = after;
            continue;
        };
        let Some(close) = inner.find('}') else {
            problems.push(at(Problem::new(
                "environment",
                "`${` is not closed by `}` on its line (`$$` writes a `$`)",
            )));
            out.push_str(&rest[dollar..]);
            return;
        };
        let reference = &inner[..close];
        let (name, default) = match reference.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (reference, None),
        };
        if !is_environment_name(name) {
            // A module's own placeholder, such as `${hostname}`.
            out.push_str(&rest[dollar..dollar + 2 + close + 1]);
            rest = &inner[close + 1..];
            continue;
        }
        match (lookup(name), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => problems.push(at(Problem::new(
                "environment",
                format!("`${{{name}}}`: {name} is not set (write `${{{name}:-default}}` for a value when it is not)"),
            ))),
        }
        rest = &inner[close + 1..];
    }
    out.push_str(rest);
}

/// Capitals, digits and `_`, not starting with a digit.
fn is_environment_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|first| !first.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        match name {
            "PORT" => Some("10000".into()),
            "TOKEN" => Some("s3cr3t: $x".into()),
            _ => None,
        }
    }

    fn text(input: &str) -> String {
        substitute(input, lookup).unwrap().into_owned()
    }

    #[test]
    fn names_defaults_and_dollars() {
        assert_eq!(text("port: ${PORT}\n"), "port: 10000\n");
        assert_eq!(text("host: ${HOST:-127.0.0.1}\n"), "host: 127.0.0.1\n");
        assert_eq!(text("port: ${PORT:-1}\n"), "port: 10000\n");
        assert_eq!(text("token: \"${TOKEN}\"\n"), "token: \"s3cr3t: $x\"\n");
        assert_eq!(text("price: $$5 and $1\n"), "price: $5 and $1\n");
        assert_eq!(text("hostname: ${hostname}\n"), "hostname: ${hostname}\n");
        assert_eq!(
            text("# ${UNSET} in a comment\n"),
            "# ${UNSET} in a comment\n"
        );
        assert_eq!(text("empty: ${UNSET:-}\n"), "empty: \n");
    }

    #[test]
    fn an_unset_name_and_an_open_brace_are_problems_at_their_place() {
        let problems = substitute("a: 1\nb: x ${UNSET}\nc: ${OPEN\n", lookup).unwrap_err();
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 2, "{shown:?}");
        assert!(
            shown[0].starts_with("line 2, column 6: environment: `${UNSET}`: UNSET is not set"),
            "{shown:?}"
        );
        assert!(
            shown[1].starts_with("line 3, column 4: environment: `${` is not closed"),
            "{shown:?}"
        );
    }
}
