//! A jq program that reshapes events: compiled when the bootstrap file is
//! loaded, run per event, each value it yields one event out.

use std::fmt;

use jaq_core::{Ctx, Vars, data};
use jaq_json::Val;

use crate::compile::{CompileError, Filter};
use crate::edits::Edits;

/// A compiled program. One of the common reshaping shape (top-level fields
/// renamed, deleted, added, a `select` first: the `edits` module) is run
/// without jaq.
pub struct Program {
    text: String,
    filter: Filter,
    edits: Option<Edits>,
}

impl fmt::Debug for Program {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Program")
            .field("text", &self.text)
            .field("quick", &self.edits.is_some())
            .finish()
    }
}

impl Program {
    /// Compiles a jq program.
    pub fn compile(text: &str) -> Result<Program, CompileError> {
        let filter = crate::compile::compile(text, "a program")?;
        let edits =
            jaq_core::load::parse(text, |parser| parser.term()).and_then(|term| Edits::new(&term));
        Ok(Program {
            text: text.to_string(),
            filter,
            edits,
        })
    }

    /// Whether the program is run without jaq where it can be.
    pub fn is_quick(&self) -> bool {
        self.edits.is_some()
    }

    /// The program as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Runs the program on one event, a JSON text, and appends each value
    /// it yields to `out` as compact JSON, in order. An error (the event is
    /// not JSON, the program fails on it) leaves `out` as it was.
    pub fn run(&self, event: &[u8], out: &mut Vec<Vec<u8>>) -> Result<(), String> {
        if let Some(answer) = self.edits.as_ref().and_then(|edits| edits.apply(event)) {
            out.extend(answer);
            return Ok(());
        }
        self.run_in_jaq(event, out)
    }

    /// [`Program::run`] in jaq, whatever the program's shape.
    pub fn run_in_jaq(&self, event: &[u8], out: &mut Vec<Vec<u8>>) -> Result<(), String> {
        let input = jaq_json::read::parse_single(event)
            .map_err(|error| format!("the event is not JSON: {error}"))?;
        let before = out.len();
        let context = Ctx::<data::JustLut<Val>>::new(&self.filter.lut, Vars::new([]));
        let _budget = crate::budget::Scope::enter();
        for value in self.filter.id.run((context, input)) {
            match value {
                Ok(value) => out.push(compact(&value)),
                Err(exception) => {
                    out.truncate(before);
                    return Err(match exception.get_err() {
                        Ok(error) => error.to_string(),
                        Err(_) => "the program halted, which a program here may not".into(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// A value as `jq -c` writes it.
fn compact(value: &Val) -> Vec<u8> {
    let mut text = Vec::with_capacity(128);
    // Writing to a Vec cannot fail.
    let _ = jaq_json::write::write(&mut text, &jaq_json::write::Pp::default(), 0, value);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(program: &str, event: &str) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        Program::compile(program)
            .unwrap()
            .run(event.as_bytes(), &mut out)?;
        Ok(out
            .into_iter()
            .map(|value| String::from_utf8(value).unwrap())
            .collect())
    }

    #[test]
    fn each_value_yielded_is_one_event_in_order() {
        assert_eq!(
            run(".a = .b | del(.b)", r#"{"b":1,"c":"x"}"#),
            Ok(vec![r#"{"c":"x","a":1}"#.to_string()])
        );
        assert_eq!(run("empty", "{}"), Ok(vec![]));
        assert_eq!(
            run(".items[] | {id: .}", r#"{"items":[1,2]}"#),
            Ok(vec![r#"{"id":1}"#.to_string(), r#"{"id":2}"#.to_string()])
        );
        assert_eq!(run(r#"select(.n > 1)"#, r#"{"n":1}"#), Ok(vec![]));
    }

    #[test]
    fn a_failure_yields_nothing_and_says_why() {
        let error = run("1, error(\"no\")", "{}").unwrap_err();
        assert!(error.contains("no"), "{error}");
        let error = run(".", "not json").unwrap_err();
        assert!(error.starts_with("the event is not JSON"), "{error}");
        let error = run(".a + 1", r#"{"a":"x"}"#).unwrap_err();
        assert!(error.contains("cannot"), "{error}");
    }

    #[test]
    fn builtins_that_act_outside_the_pipeline_are_refused() {
        let error = Program::compile(". | debug").unwrap_err();
        assert!(
            error.message.contains("not allowed in a program"),
            "{error}"
        );
        let error = Program::compile(".a = ").unwrap_err();
        assert_eq!((error.line, error.column), (1, 6));
    }
}
