//! Compiling a jq text, a condition or a program, as every module of this
//! crate does: by jaq, with jq's standard library, refusing the builtins
//! that act outside the pipeline, and saying where a text is wrong.

use std::fmt;

use jaq_core::load::{self, Arena, File, Loader};
use jaq_core::{Compiler, data};
use jaq_json::Val;

/// A compiled jq text.
pub(crate) type Filter = jaq_core::Filter<data::JustLut<Val>>;

/// Why a jq text (a condition, a program) does not compile, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileError {
    /// Line of the expression, from 1.
    pub line: usize,
    /// Column, in characters from 1.
    pub column: usize,
    /// What is wrong there.
    pub message: String,
}

impl fmt::Display for CompileError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for CompileError {}

/// Compiles `text`; `what` names it in a refusal ("a condition").
pub(crate) fn compile(text: &str, what: &str) -> Result<Filter, CompileError> {
    if let Some(name) = side_effect(text) {
        return Err(error_at(
            text,
            name,
            format!(
                "`{name}` writes outside the pipeline (the log, standard error) or reads input; it is not allowed in {what}"
            ),
        ));
    }
    if let Some(name) =
        load::parse(text, |parser| parser.term()).and_then(|term| crate::budget::recursion(&term))
    {
        return Err(error_at(
            text,
            name,
            format!(
                "`{name}` calls itself, which may never end; recursion is not allowed in {what} (use reduce, foreach, limit or the builtins, whose loops are bounded per event)"
            ),
        ));
    }
    let defs = crate::budget::defs();
    let funs = crate::budget::funs()
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
    Ok(program)
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

fn error_at(text: &str, part: &str, message: String) -> CompileError {
    let (line, column) = position(text, load::span(text, part).start);
    CompileError {
        line,
        column,
        message,
    }
}

fn load_error(text: &str, errors: load::Errors<&str, ()>) -> CompileError {
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
        _ => CompileError {
            line: 1,
            column: 1,
            message: "the expression does not load".into(),
        },
    }
}

fn compile_error(text: &str, errors: jaq_core::compile::Errors<&str, ()>) -> CompileError {
    let first = errors.into_iter().flat_map(|(_, errors)| errors).next();
    match first {
        Some((name, undefined)) => error_at(
            text,
            name,
            format!("undefined {} `{name}`", undefined.as_str()),
        ),
        None => CompileError {
            line: 1,
            column: 1,
            message: "the expression does not compile".into(),
        },
    }
}
