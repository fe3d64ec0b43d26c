//! How far one jq evaluation may go: a condition or a program runs per
//! event on a module's thread, so one that does not end would hold that
//! thread (and every module on it) for good, and one that allocates without
//! end would take the process down.
//!
//! Two rules keep an evaluation bounded, as VRL keeps its programs bounded
//! by having no loops that need not end:
//!
//! - **Refused when compiled:** a definition that calls itself (`def f: f;
//!   f`, or through a definition inside it). jq has no other way to loop
//!   but the builtins below.
//! - **Counted when run:** every loop of the standard library (`range`,
//!   `repeat`, `recurse(f)`, `while`, `until`, and what is built on them)
//!   takes one step per value. An evaluation may take [`STEPS`] steps and
//!   [`TIME`] of time (the clock is read every 1,024 steps); past either it
//!   stops with an error, which the module counts and routes as any other
//!   (a condition's error, a program's `failed`).
//!
//! What is left unbounded is said in `docs/routing.md`: a single operation
//! that builds a value far larger than its inputs (a string repeated
//! `1e10` times, a reduce that doubles a value once per element of the
//! event's own arrays).

use std::cell::Cell;
use std::time::{Duration, Instant};

use jaq_core::load::parse::{Def, Term};
use jaq_core::native::{self, Fun};
use jaq_core::{DataT, Error, ValT};

/// Steps one evaluation may take.
pub const STEPS: u64 = 1_000_000;

/// Time one evaluation may take.
pub const TIME: Duration = Duration::from_secs(1);

/// How often, in steps, the clock is read.
const CLOCK_EVERY: u64 = 1024;

/// The name of the native every budgeted loop passes its values through.
const STEP: &str = "_wishbone_step";

/// The name the core's `range/3` native goes by, behind the budgeted one.
const RANGE: &str = "_wishbone_range";

/// The loops of jaq's core definitions, with a step in each turn.
const LOOPS: &str = r#"
def range($from; $to; $by): _wishbone_range($from; $to; $by) | _wishbone_step;
def range(from; to): range(from; to; 1);
def range(to): range(0; to);
def repeat(f): def rec: f, (_wishbone_step | rec); rec;
def recurse(f): def rec: ., (f | _wishbone_step | rec); rec;
def while(cond; update): def rec: if cond then ., (update | _wishbone_step | rec) else empty end; rec;
def until(cond; update): def rec: if cond then . else update | _wishbone_step | rec end; rec;
"#;

thread_local! {
    /// The evaluation running on this thread: steps left and when it
    /// began; `None` outside one (steps are then not counted).
    static RUNNING: Cell<Option<(u64, Instant)>> = const { Cell::new(None) };
}

/// One evaluation's budget, for as long as it lives.
pub(crate) struct Scope {
    outer: Option<(u64, Instant)>,
}

impl Scope {
    /// Starts counting an evaluation on this thread.
    pub(crate) fn enter() -> Self {
        let outer = RUNNING.replace(Some((STEPS, Instant::now())));
        Self { outer }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        RUNNING.set(self.outer);
    }
}

/// Takes one step of the running evaluation; an error once it is over
/// its budget.
fn step() -> Result<(), String> {
    let Some((left, began)) = RUNNING.get() else {
        return Ok(());
    };
    if left == 0 || (left % CLOCK_EVERY == 0 && began.elapsed() > TIME) {
        // Spent for good: a `try` that catches this stops at the next step.
        RUNNING.set(Some((0, began)));
        return Err(format!(
            "stopped: a loop (range, repeat, recurse, while, until) went past the budget of one event, {STEPS} steps or {} ms",
            TIME.as_millis()
        ));
    }
    RUNNING.set(Some((left - 1, began)));
    Ok(())
}

/// jaq's core, standard and JSON definitions, with [`LOOPS`] in place of
/// the core's own loops (in the same place, so that every later
/// definition uses them).
pub(crate) fn defs() -> impl Iterator<Item = Def<&'static str>> {
    let loops: Vec<Def<&'static str>> =
        jaq_core::load::parse(LOOPS, |parser| parser.defs()).unwrap_or_default();
    let mut replaced = false;
    let core: Vec<Def<&'static str>> = jaq_core::defs()
        .flat_map(|def| {
            let budgeted = loops
                .iter()
                .any(|own| own.name == def.name && own.args.len() == def.args.len());
            match budgeted {
                false => vec![def],
                true if replaced => vec![],
                true => {
                    replaced = true;
                    loops.clone()
                }
            }
        })
        .collect();
    core.into_iter()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs())
}

/// jaq's core, standard and JSON natives, with the core's `range/3`
/// renamed (the budgeted `range` of [`LOOPS`] calls it) and the step.
pub(crate) fn funs<D: DataT>() -> impl Iterator<Item = Fun<D>>
where
    for<'a> D::V<'a>: ValT,
{
    let core = jaq_core::funs::<D>().map(|(name, arity, run)| {
        let name = if name == "range" { RANGE } else { name };
        (name, arity, run)
    });
    let step = native::run::<D>((STEP, native::v(0), |cv| {
        native::bome(step().map(|()| cv.1).map_err(Error::str))
    }));
    core.chain(std::iter::once(step))
}

/// The name of the first definition in `term` that calls itself, directly
/// or through a definition inside it.
pub(crate) fn recursion<'s>(term: &Term<&'s str>) -> Option<&'s str> {
    Walk::default().term(term)
}

/// The functions in scope while a term is walked: name, arity, and whether
/// it is being defined (a call of it is then recursion).
#[derive(Default)]
struct Walk<'s> {
    scope: Vec<(&'s str, usize, bool)>,
}

impl<'s> Walk<'s> {
    fn term(&mut self, term: &Term<&'s str>) -> Option<&'s str> {
        match term {
            Term::Call(name, args) => {
                let called = self
                    .scope
                    .iter()
                    .rev()
                    .find(|(bound, arity, _)| bound == name && *arity == args.len());
                if let Some((name, _, true)) = called {
                    return Some(name);
                }
                args.iter().find_map(|arg| self.term(arg))
            }
            Term::Def(defs, rest) => {
                let depth = self.scope.len();
                let found = defs
                    .iter()
                    .find_map(|def| self.def(def))
                    .or_else(|| self.term(rest));
                self.scope.truncate(depth);
                found
            }
            other => children(other)
                .into_iter()
                .find_map(|child| self.term(child)),
        }
    }

    /// Walks a definition's body with it in scope (being defined), then
    /// leaves it in scope for what follows.
    fn def(&mut self, def: &Def<&'s str>) -> Option<&'s str> {
        let depth = self.scope.len();
        self.scope.push((def.name, def.args.len(), true));
        for arg in &def.args {
            if !arg.starts_with('$') {
                self.scope.push((arg, 0, false));
            }
        }
        let found = self.term(&def.body);
        self.scope.truncate(depth);
        self.scope.push((def.name, def.args.len(), false));
        found
    }
}

/// The terms directly inside `term` (but a call's arguments and a
/// definition's, which [`Walk`] follows itself).
fn children<S>(term: &Term<S>) -> Vec<&Term<S>> {
    use jaq_core::load::lex::StrPart;
    use jaq_core::load::parse::Pattern;
    use jaq_core::path::Part;
    fn pattern<'t, S>(bound: &'t Pattern<S>, out: &mut Vec<&'t Term<S>>) {
        match bound {
            Pattern::Var(_) => {}
            Pattern::Arr(items) => items.iter().for_each(|item| pattern(item, out)),
            Pattern::Obj(pairs) => pairs.iter().for_each(|(key, value)| {
                out.push(key);
                pattern(value, out);
            }),
        }
    }
    let mut out = Vec::new();
    match term {
        Term::Id | Term::Recurse | Term::Num(_) | Term::Break(_) | Term::Var(_) => {}
        Term::Call(_, args) => out.extend(args),
        Term::Def(_, rest) => out.push(rest),
        Term::Str(_, parts) => out.extend(parts.iter().filter_map(|part| match part {
            StrPart::Term(term) => Some(term),
            _ => None,
        })),
        Term::Arr(inner) => out.extend(inner.as_deref()),
        Term::Obj(pairs) => pairs.iter().for_each(|(key, value)| {
            out.push(key);
            out.extend(value);
        }),
        Term::Neg(inner) | Term::Label(_, inner) => out.push(inner),
        Term::BinOp(left, op, right) => {
            if let jaq_core::load::parse::BinaryOp::Pipe(Some(bound)) = op {
                pattern(bound, &mut out);
            }
            out.push(left);
            out.push(right);
        }
        Term::Fold(_, source, bound, args) => {
            out.push(source);
            pattern(bound, &mut out);
            out.extend(args);
        }
        Term::TryCatch(body, catch) => {
            out.push(body);
            out.extend(catch.as_deref());
        }
        Term::IfThenElse(branches, otherwise) => {
            branches.iter().for_each(|(condition, then)| {
                out.push(condition);
                out.push(then);
            });
            out.extend(otherwise.as_deref());
        }
        Term::Path(head, path) => {
            out.push(head);
            for (part, _) in &path.0 {
                match part {
                    Part::Index(index) => out.push(index),
                    Part::Range(from, upto) => out.extend(from.iter().chain(upto)),
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::condition::Condition;
    use crate::program::Program;

    fn values(program: &str, event: &str) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        Program::compile(program)
            .map_err(|error| error.to_string())?
            .run_in_jaq(event.as_bytes(), &mut out)?;
        Ok(out
            .into_iter()
            .map(|value| String::from_utf8(value).unwrap())
            .collect())
    }

    #[test]
    fn a_definition_that_calls_itself_is_refused_where_it_is_called() {
        let error = Condition::compile("def f: f; f").unwrap_err();
        assert!(error.message.contains("`f` calls itself"), "{error}");
        assert_eq!((error.line, error.column), (1, 5));
        let error = Program::compile("def f(x): def g: f(x); g;\nf(.)").unwrap_err();
        assert!(
            error
                .message
                .contains("recursion is not allowed in a program")
        );
        let error = Condition::compile(
            "def fact($n): if $n < 2 then 1 else $n * fact($n - 1) end; fact(5) > 1",
        )
        .unwrap_err();
        assert!(error.message.contains("`fact` calls itself"), "{error}");
    }

    #[test]
    fn definitions_that_only_call_others_or_shadow_themselves_are_fine() {
        for text in [
            "def f: 1; f + f",
            "def f: def f: 1; f; f",
            "def f(g): g; f(.)",
            "def twice(f): f | f; 3 | twice(. + 1)",
            "def a: 1; def b: a + a; b",
        ] {
            assert!(Program::compile(text).is_ok(), "{text}");
        }
        assert_eq!(
            values("def f: def f: 2; f * 3; f", "null"),
            Ok(vec!["6".into()])
        );
    }

    #[test]
    fn loops_that_do_not_end_stop_at_the_step_budget_with_an_error() {
        for condition in [
            "last(range(1e12)) > 0",
            "[range(1e9)] | length > 0",
            "first(until(. < 0; . + 1)) > 0",
            "[limit(2e6; repeat(1))] | length > 0",
            "[recurse(. + 1)] | length > 0",
            "[0 | while(true; . + 1)] | length > 0",
        ] {
            let error = Condition::compile(condition)
                .unwrap()
                .matches(b"0")
                .unwrap_err();
            assert!(
                error.contains("past the budget of one event"),
                "{condition}: {error}"
            );
        }
    }

    #[test]
    fn bounded_loops_give_what_jq_gives_and_the_budget_is_per_event() {
        assert_eq!(
            values(
                "[range(3)], [range(1; 10; 4)], [limit(3; repeat(7))]",
                "null"
            ),
            Ok(vec!["[0,1,2]".into(), "[1,5,9]".into(), "[7,7,7]".into()])
        );
        assert_eq!(
            values("[recurse(if . < 3 then . + 1 else empty end)]", "0"),
            Ok(vec!["[0,1,2,3]".into()])
        );
        assert_eq!(
            values("[.[] | until(. > 4; . * 2)]", "[1,3]"),
            Ok(vec!["[8,6]".into()])
        );
        assert_eq!(
            values("[while(. < 20; . + 5)] | length", "0"),
            Ok(vec!["4".into()])
        );
        let condition = Condition::compile("[range(300000)] | length > 0").unwrap();
        // Four of them would be past the budget of one.
        for _ in 0..4 {
            assert_eq!(condition.matches(b"{}"), Ok(true));
        }
        assert!(values("[range(1e12)]", "null").is_err());
        // A budget spent stays spent: catching the error does not reset it.
        assert!(
            values(
                "[(try last(range(1e12)) catch 0), last(range(1e12))]",
                "null"
            )
            .is_err()
        );
        assert_eq!(values("[range(2)]", "null"), Ok(vec!["[0,1]".into()]));
    }
}
