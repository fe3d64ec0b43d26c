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

use jaq_core::load::{self, Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data};
use jaq_json::Val;

use crate::quick::{Quick, QuickSet};

/// A compiled condition.
pub struct Condition {
    text: String,
    program: jaq_core::Filter<data::JustLut<Val>>,
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

/// Why a condition does not compile, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionError {
    /// Line of the expression, from 1.
    pub line: usize,
    /// Column, in characters from 1.
    pub column: usize,
    /// What is wrong there.
    pub message: String,
}

impl fmt::Display for ConditionError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for ConditionError {}

impl Condition {
    /// Compiles a jq expression.
    pub fn compile(text: &str) -> Result<Condition, ConditionError> {
        if let Some(name) = side_effect(text) {
            return Err(error_at(
                text,
                name,
                format!(
                    "`{name}` writes outside the pipeline (the log, standard error) or reads input; it is not allowed in a condition"
                ),
            ));
        }
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs());
        let funs = jaq_core::funs()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs());
        let arena = Arena::default();
        let file = File {
            code: text,
            path: (),
        };
        let modules = Loader::new(defs)
            .load(&arena, file)
            .map_err(|errors| load_error(text, errors))?;
        let program = Compiler::default()
            .with_funs(funs)
            .compile(modules)
            .map_err(|errors| compile_error(text, errors))?;
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

/// Line and column of byte `offset` in `text`.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

/// jq builtins that act outside the pipeline: `debug` and `stderr` would
/// write each event's content to the log, `halt_error` to standard error,
/// `input` and `inputs` read input a condition does not have.
const SIDE_EFFECTS: [&str; 5] = ["debug", "stderr", "halt_error", "input", "inputs"];

/// The first call of a builtin of [`SIDE_EFFECTS`] in `text` (not a field
/// `.debug` or an object key `debug:`), as the slice of `text` naming it.
fn side_effect(text: &str) -> Option<&str> {
    use jaq_core::load::lex::{Lexer, StrPart, Tok, Token};
    fn find<'a>(tokens: &[Token<&'a str>]) -> Option<&'a str> {
        for (index, Token(slice, kind)) in tokens.iter().enumerate() {
            match kind {
                Tok::Word if SIDE_EFFECTS.contains(slice) => {
                    let field = index > 0 && tokens[index - 1].0 == ".";
                    let key = tokens.get(index + 1).is_some_and(|next| next.0 == ":");
                    if !field && !key {
                        return Some(slice);
                    }
                }
                Tok::Block(inner) => {
                    if let Some(found) = find(inner) {
                        return Some(found);
                    }
                }
                Tok::Str(parts) => {
                    for part in parts {
                        if let StrPart::Term(term) = part
                            && let Some(found) = find(std::slice::from_ref(term))
                        {
                            return Some(found);
                        }
                    }
                }
                _ => {}
            }
        }
        None
    }
    find(&Lexer::new(text).lex().ok()?)
}

fn error_at(text: &str, part: &str, message: String) -> ConditionError {
    let (line, column) = position(text, load::span(text, part).start);
    ConditionError {
        line,
        column,
        message,
    }
}

fn load_error(text: &str, errors: load::Errors<&str, ()>) -> ConditionError {
    let first = errors.into_iter().next().map(|(_, error)| error);
    match first {
        Some(load::Error::Lex(errors)) if !errors.is_empty() => {
            let (expected, at) = &errors[0];
            error_at(text, at, format!("expected {}", expected.as_str()))
        }
        Some(load::Error::Parse(errors)) if !errors.is_empty() => {
            let (expected, at) = &errors[0];
            let found = if at.is_empty() {
                "the end".to_string()
            } else {
                format!("`{at}`")
            };
            error_at(
                text,
                at,
                format!("expected {}, found {found}", expected.as_str()),
            )
        }
        Some(load::Error::Io(errors)) if !errors.is_empty() => {
            let (module, reason) = &errors[0];
            error_at(text, module, format!("cannot import `{module}`: {reason}"))
        }
        _ => ConditionError {
            line: 1,
            column: 1,
            message: "the expression does not load".into(),
        },
    }
}

fn compile_error(text: &str, errors: jaq_core::compile::Errors<&str, ()>) -> ConditionError {
    let first = errors.into_iter().flat_map(|(_, errors)| errors).next();
    match first {
        Some((name, undefined)) => error_at(
            text,
            name,
            format!("undefined {} `{name}`", undefined.as_str()),
        ),
        None => ConditionError {
            line: 1,
            column: 1,
            message: "the expression does not compile".into(),
        },
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
