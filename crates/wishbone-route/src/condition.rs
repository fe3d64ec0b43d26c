//! A jq expression asked of one event: compiled when the bootstrap file is
//! loaded, evaluated per event.
//!
//! Every condition is compiled by jaq, so what jq accepts and rejects is
//! jaq's to say. The common shape of a routing condition (fields compared
//! with constants, joined by `and`, `or` and `not`) is also recognised and
//! answered by the quick path straight from the event's bytes, reading only the
//! fields it names: an eighth of the CPU time jaq takes to build the whole
//! document and run the expression (see `docs/performance.md`). Anything
//! else runs in jaq.

use std::fmt;

use jaq_core::load;
use jaq_core::{Ctx, Vars, data};
use jaq_json::Val;

use crate::compile::CompileError;
use crate::quick::{Quick, QuickSet};

/// A compiled condition.
pub struct Condition {
    text: String,
    program: crate::compile::Filter,
    quick: Option<Quick>,
}

impl fmt::Debug for Condition {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Condition")
            .field("text", &self.text)
            .field("quick", &self.quick.is_some())
            .finish()
    }
}

impl Condition {
    /// Compiles a jq expression.
    pub fn compile(text: &str) -> Result<Condition, CompileError> {
        let program = crate::compile::compile(text, "a condition")?;
        let quick = load::parse(text, |parser| parser.term()).and_then(|term| Quick::new(&term));
        Ok(Condition {
            text: text.to_string(),
            program,
            quick,
        })
    }

    /// The expression as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the condition is answered from the event's bytes without
    /// jaq.
    pub fn is_quick(&self) -> bool {
        self.quick.is_some()
    }

    /// Whether the event matches: its first output is neither `false` nor
    /// `null` (no output at all is no match). An error means the event is
    /// not JSON or the expression failed on it.
    pub fn matches(&self, event: &[u8]) -> Result<bool, String> {
        match &self.quick {
            Some(quick) => quick.matches(event),
            None => self.run(event),
        }
    }

    /// Runs the expression in jaq.
    pub fn run(&self, event: &[u8]) -> Result<bool, String> {
        let input: Val = serde_json::from_slice(event)
            .map_err(|error| format!("the event is not JSON: {error}"))?;
        let context = Ctx::<data::JustLut<Val>>::new(&self.program.lut, Vars::new([]));
        let _budget = crate::budget::Scope::enter();
        match self.program.id.run((context, input)).next() {
            None => Ok(false),
            Some(Ok(value)) => Ok(!matches!(value, Val::Null | Val::Bool(false))),
            Some(Err(exception)) => Err(match exception.get_err() {
                Ok(error) => error.to_string(),
                Err(_) => "the expression halted, which a condition may not".to_string(),
            }),
        }
    }
}

/// Several conditions asked of each event in turn (a queueselect's
/// rules): those of the quick shape are answered from one read of the
/// event, not one read each.
#[derive(Debug)]
pub struct Conditions {
    each: Vec<Condition>,
    quick: QuickSet,
}

impl Conditions {
    /// The conditions, in the order they are asked.
    pub fn new(each: Vec<Condition>) -> Self {
        let mut quick = QuickSet::default();
        for condition in &each {
            let term = load::parse(&condition.text, |parser| parser.term());
            quick.add(term.as_ref());
        }
        Self { each, quick }
    }

    /// Whether every condition is answered without jaq.
    pub fn is_quick(&self) -> bool {
        self.each.iter().all(Condition::is_quick)
    }

    /// Each condition's answer to `event`, in order, handed to `answer`
    /// until it returns false. A condition jaq runs is run only when its
    /// turn comes.
    pub fn ask(&self, event: &[u8], mut answer: impl FnMut(usize, Result<bool, String>) -> bool) {
        let quick = self.quick.answers(event);
        for (index, (condition, quick)) in self.each.iter().zip(quick).enumerate() {
            let result = quick.unwrap_or_else(|| condition.run(event));
            if !answer(index, result) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(condition: &str, event: &str) -> Result<bool, String> {
        Condition::compile(condition)
            .unwrap()
            .matches(event.as_bytes())
    }

    #[test]
    fn the_first_output_decides() {
        assert_eq!(
            matches(".level == \"error\"", r#"{"level":"error"}"#),
            Ok(true)
        );
        assert_eq!(
            matches(".level == \"error\"", r#"{"level":"info"}"#),
            Ok(false)
        );
        assert_eq!(matches("select(.n > 1)", r#"{"n":2}"#), Ok(true));
        assert_eq!(matches("select(.n > 1)", r#"{"n":1}"#), Ok(false));
        assert_eq!(matches("empty", r#"{}"#), Ok(false));
        assert_eq!(matches(".n", r#"{"n":0}"#), Ok(true));
        assert_eq!(matches(".n", r#"{"n":null}"#), Ok(false));
    }

    #[test]
    fn events_that_are_not_json_or_fail_are_errors() {
        assert!(matches(".a == 1", "not json").is_err());
        assert!(matches("length > 1 and .[0] == 1", "{").is_err());
        assert!(matches("error(\"no\")", "{}").is_err());
        assert!(matches(".a.b", r#"{"a":"text"}"#).is_err());
    }

    #[test]
    fn halting_is_an_error_not_an_exit() {
        assert!(matches("halt", "{}").is_err());
        assert!(matches("halt(1)", "{}").is_err());
    }

    #[test]
    fn compile_errors_say_where() {
        let error = Condition::compile(".level == ").unwrap_err();
        assert_eq!((error.line, error.column), (1, 11), "{error}");
        let error = Condition::compile(".a == 1 and\n  nosuch(2)").unwrap_err();
        assert_eq!((error.line, error.column), (2, 3), "{error}");
        assert!(error.message.contains("nosuch"), "{error}");
        let error = Condition::compile(".a == \"x").unwrap_err();
        assert!(error.message.contains("quote"), "{error}");
    }

    #[test]
    fn a_set_answers_as_each_condition_alone() {
        let texts = [".a == 1", "select(.b > 1)", ".a.c", ".b >= 2 or .a == 1"];
        let each: Vec<Condition> = texts
            .iter()
            .map(|text| Condition::compile(text).unwrap())
            .collect();
        let set = Conditions::new(
            texts
                .iter()
                .map(|text| Condition::compile(text).unwrap())
                .collect(),
        );
        for event in [
            r#"{"a":1,"b":2}"#,
            r#"{"a":{"c":true},"b":0}"#,
            r#"{"a":"text"}"#,
            "not json",
        ] {
            let mut answers = Vec::new();
            set.ask(event.as_bytes(), |_, answer| {
                answers.push(answer.is_ok_and(|yes| yes));
                true
            });
            let alone: Vec<bool> = each
                .iter()
                .map(|condition| condition.matches(event.as_bytes()).is_ok_and(|yes| yes))
                .collect();
            assert_eq!(answers, alone, "{event}");
        }
        let mut asked = 0;
        set.ask(br#"{"a":1}"#, |_, _| {
            asked += 1;
            false
        });
        assert_eq!(asked, 1, "asking stops when told");
    }

    #[test]
    fn common_shapes_are_quick() {
        for quick in [
            ".level == \"error\"",
            ".severity <= 3 and .appname == \"billing\"",
            "(.a.b != null or .c) | not",
            "-1 < .n",
        ] {
            assert!(Condition::compile(quick).unwrap().is_quick(), "{quick}");
        }
        for slow in ["select(.n > 1)", ".a? == 1", ".[0] == 1", ".a == .b"] {
            assert!(!Condition::compile(slow).unwrap().is_quick(), "{slow}");
        }
    }

    #[test]
    fn builtins_that_write_outside_the_pipeline_are_refused_where_they_stand() {
        for (text, column) in [
            ("debug | .a", 1),
            (".a and (.b | stderr)", 14),
            ("\"x\\(halt_error)\" == .a", 5),
            ("[inputs] | length > 0", 2),
            (".x == 1 or input", 12),
        ] {
            let error = Condition::compile(text).unwrap_err();
            assert_eq!((error.line, error.column), (1, column), "{text}: {error}");
            assert!(error.message.contains("not allowed"), "{error}");
        }
        for allowed in [".debug == true", "{debug: 1} | .debug", ".input.stderr"] {
            assert!(Condition::compile(allowed).is_ok(), "{allowed}");
        }
    }

    #[test]
    fn the_quick_path_refuses_what_decoding_refuses() {
        let quick = Condition::compile(r#".level == "error""#).unwrap();
        assert!(quick.is_quick());
        for bad in [
            &br#"{"id":0001,"level":"error"}"#[..],
            b"{\"a\":\"\xff\",\"level\":\"error\"}",
            br#"{"level":"error"} {}"#,
            br#"{"level":"error""#,
            b"\xff{\"level\":\"error\"}",
            br#"{"level":"error",}"#,
            br#"{'level':'error'}"#,
        ] {
            assert!(
                quick.matches(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
