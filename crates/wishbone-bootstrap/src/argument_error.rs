//! What is wrong with a module's arguments, as data: which argument, and
//! what about it. Code that must know (an unknown field, to list the
//! arguments a module shares with its family) asks, never reads the text.

use std::fmt;

/// Arguments that do not fit a module: an unknown or missing field, a value
/// of the wrong type, or one the module's own checks refuse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgumentError {
    field: Option<String>,
    problem: ArgumentProblem,
}

/// What is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgumentProblem {
    /// A module's rule, said after the argument's name ("must be at least
    /// 1"), or alone when no one argument is at fault.
    Rule(String),
    /// The value does not deserialize: what the deserializer said.
    Value(String),
    /// Not an argument of the module; these are.
    Unknown {
        /// Every argument the module takes.
        accepted: Vec<String>,
    },
}

impl ArgumentError {
    /// A problem no single argument is at fault for.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            field: None,
            problem: ArgumentProblem::Rule(message.into()),
        }
    }

    /// `field` breaks a rule, said as what follows its name: `"must be at
    /// least 1"` reads "`window` must be at least 1".
    pub fn field(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            problem: ArgumentProblem::Rule(rule.into()),
        }
    }

    /// `field`'s value does not deserialize.
    pub fn value(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            problem: ArgumentProblem::Value(message.into()),
        }
    }

    /// `field` is not an argument of the module, which takes `accepted`.
    pub fn unknown(field: impl Into<String>, accepted: Vec<String>) -> Self {
        Self {
            field: Some(field.into()),
            problem: ArgumentProblem::Unknown { accepted },
        }
    }

    /// The argument at fault (a path such as `tls.cert`), if one is.
    pub fn field_name(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// What is wrong.
    pub fn problem(&self) -> &ArgumentProblem {
        &self.problem
    }

    /// For an unknown field, adds arguments the module takes besides its
    /// own `Config` (those it shares with its family); any other error is
    /// returned as it is.
    pub fn also_accepting(mut self, more: &[&str]) -> Self {
        if let ArgumentProblem::Unknown { accepted } = &mut self.problem {
            accepted.extend(more.iter().map(|name| name.to_string()));
        }
        self
    }
}

impl fmt::Display for ArgumentError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.field, &self.problem) {
            (None, ArgumentProblem::Rule(text) | ArgumentProblem::Value(text)) => {
                formatter.write_str(text)
            }
            (Some(field), ArgumentProblem::Rule(rule)) => write!(formatter, "`{field}` {rule}"),
            (Some(field), ArgumentProblem::Value(message)) => {
                write!(formatter, "`{field}`: {message}")
            }
            (field, ArgumentProblem::Unknown { accepted }) => {
                let field = field.as_deref().unwrap_or_default();
                let accepted: Vec<String> =
                    accepted.iter().map(|name| format!("`{name}`")).collect();
                match accepted.as_slice() {
                    [] => write!(
                        formatter,
                        "unknown field `{field}`: this module takes no arguments"
                    ),
                    names => {
                        let suggestion =
                            crate::suggest::nearest(field, accepted_names(&self.problem))
                                .map(|close| format!(" (did you mean `{close}`?)"))
                                .unwrap_or_default();
                        write!(
                            formatter,
                            "unknown field `{field}`{suggestion}, expected one of {}",
                            names.join(", ")
                        )
                    }
                }
            }
        }
    }
}

/// The arguments an unknown field's module takes.
fn accepted_names(problem: &ArgumentProblem) -> impl Iterator<Item = &str> {
    let accepted = match problem {
        ArgumentProblem::Unknown { accepted } => accepted.as_slice(),
        _ => &[],
    };
    accepted.iter().map(String::as_str)
}

impl std::error::Error for ArgumentError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_problem_reads_as_a_sentence() {
        assert_eq!(
            ArgumentError::field("window", "must be at least 1").to_string(),
            "`window` must be at least 1"
        );
        assert_eq!(
            ArgumentError::value("port", "invalid value").to_string(),
            "`port`: invalid value"
        );
        let unknown =
            ArgumentError::unknown("prot", vec!["port".into()]).also_accepting(&["timeout"]);
        assert_eq!(
            unknown.to_string(),
            "unknown field `prot` (did you mean `port`?), expected one of `port`, `timeout`"
        );
        assert_eq!(unknown.field_name(), Some("prot"));
        let rule = ArgumentError::new("`a` and `b` go together").also_accepting(&["timeout"]);
        assert_eq!(
            rule.problem(),
            &ArgumentProblem::Rule("`a` and `b` go together".into())
        );
        assert_eq!(rule.field_name(), None);
    }
}
