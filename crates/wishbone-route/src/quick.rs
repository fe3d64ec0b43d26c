//! The conditions answered without jaq: paths of object keys from the event
//! (`.a`, `.a.b`, `.["a b"]`) alone or compared with a constant (a number,
//! a string, `true`, `false`, `null`), joined by `and` and `or`, negated by
//! `| not`. Their answers are jq's, down to its order of types (`null <
//! false < true < numbers < strings < arrays < objects`), a missing key
//! reading as `null`, and indexing a string or number being an error; the
//! tests compare them with jaq on generated events.

use std::cmp::Ordering;

use jaq_core::load::lex::StrPart;
use jaq_core::load::parse::{BinaryOp, Term};
use jaq_core::ops::Cmp;
use jaq_core::path::{Opt, Part};

use crate::fields::{Constant, Fields, Value};

/// A condition of the quick shape, with the fields it reads.
#[derive(Debug)]
pub(crate) struct Quick {
    test: Test,
    fields: Fields,
}

#[derive(Debug)]
enum Test {
    /// The field is neither `false` nor `null`.
    Truthy(usize),
    /// The field compared with a constant, field on the left.
    Compare(usize, Cmp, Constant),
    Not(Box<Test>),
    And(Box<Test>, Box<Test>),
    Or(Box<Test>, Box<Test>),
}

impl Quick {
    /// The quick form of `term`, if it has the shape.
    pub(crate) fn new(term: &Term<&str>) -> Option<Quick> {
        let mut fields = Fields::default();
        let test = test(term, &mut fields)?;
        Some(Quick { test, fields })
    }

    /// Whether the event matches; an error when it is not JSON or a path
    /// the expression needed could not be read.
    pub(crate) fn matches(&self, event: &[u8]) -> Result<bool, String> {
        let values = self.fields.read(event)?;
        self.test.holds(&values)
    }
}

/// The quick tests of several conditions over one set of fields, so that
/// one read of an event answers all of them.
#[derive(Debug, Default)]
pub(crate) struct QuickSet {
    fields: Fields,
    /// Per condition, its quick test, if it has the shape.
    tests: Vec<Option<Test>>,
}

impl QuickSet {
    /// Adds a condition; true if it has the quick shape.
    pub(crate) fn add(&mut self, term: Option<&Term<&str>>) -> bool {
        let test = term.and_then(|term| test(term, &mut self.fields));
        let quick = test.is_some();
        self.tests.push(test);
        quick
    }

    /// Answers every condition with a quick test, in order, from one read
    /// of `event`; `None` for the others. Nothing is read when no
    /// condition is quick.
    pub(crate) fn answers(&self, event: &[u8]) -> Vec<Option<Result<bool, String>>> {
        if self.tests.iter().all(Option::is_none) {
            return self.tests.iter().map(|_| None).collect();
        }
        let values = self.fields.read(event);
        self.tests
            .iter()
            .map(|test| {
                let test = test.as_ref()?;
                Some(match &values {
                    Ok(values) => test.holds(values),
                    Err(error) => Err(error.clone()),
                })
            })
            .collect()
    }
}

fn test(term: &Term<&str>, fields: &mut Fields) -> Option<Test> {
    match term {
        Term::BinOp(left, BinaryOp::And, right) => Some(Test::And(
            Box::new(test(left, fields)?),
            Box::new(test(right, fields)?),
        )),
        Term::BinOp(left, BinaryOp::Or, right) => Some(Test::Or(
            Box::new(test(left, fields)?),
            Box::new(test(right, fields)?),
        )),
        Term::BinOp(left, BinaryOp::Pipe(None), right) => match &**right {
            Term::Call("not", arguments) if arguments.is_empty() => {
                Some(Test::Not(Box::new(test(left, fields)?)))
            }
            _ => None,
        },
        Term::BinOp(left, BinaryOp::Cmp(cmp), right) => {
            if let (Some(path), Some(constant)) = (path(left), constant(right)) {
                Some(Test::Compare(fields.slot(&path), *cmp, constant))
            } else if let (Some(constant), Some(path)) = (constant(left), path(right)) {
                Some(Test::Compare(fields.slot(&path), mirror(*cmp), constant))
            } else {
                None
            }
        }
        Term::Path(..) => Some(Test::Truthy(fields.slot(&path(term)?))),
        _ => None,
    }
}

/// `a < b` as `b > a`.
fn mirror(cmp: Cmp) -> Cmp {
    match cmp {
        Cmp::Lt => Cmp::Gt,
        Cmp::Le => Cmp::Ge,
        Cmp::Gt => Cmp::Lt,
        Cmp::Ge => Cmp::Le,
        same => same,
    }
}

/// The keys of `.a.b`, `.["a"]`: object keys from the input, none optional.
pub(crate) fn path(term: &Term<&str>) -> Option<Vec<String>> {
    let Term::Path(start, path) = term else {
        return None;
    };
    if !matches!(**start, Term::Id) {
        return None;
    }
    path.0
        .iter()
        .map(|(part, opt)| match (part, opt) {
            (Part::Index(key), Opt::Essential) => text(key),
            _ => None,
        })
        .collect()
}

/// A string without interpolation or format.
pub(crate) fn text(term: &Term<&str>) -> Option<String> {
    let Term::Str(None, parts) = term else {
        return None;
    };
    let mut text = String::new();
    for part in parts {
        match part {
            StrPart::Str(plain) => text.push_str(plain),
            StrPart::Char(char) => text.push(*char),
            StrPart::Term(_) => return None,
        }
    }
    Some(text)
}

fn constant(term: &Term<&str>) -> Option<Constant> {
    match term {
        Term::Num(number) => number_constant(number, false),
        Term::Neg(inner) => match &**inner {
            Term::Num(number) => number_constant(number, true),
            _ => None,
        },
        Term::Call(name, arguments) if arguments.is_empty() => match *name {
            "null" => Some(Constant::Null),
            "true" => Some(Constant::Bool(true)),
            "false" => Some(Constant::Bool(false)),
            _ => None,
        },
        Term::Str(..) => text(term).map(Constant::Str),
        _ => None,
    }
}

/// A constant as the JSON text jq writes for it.
pub(crate) fn constant_json(term: &Term<&str>) -> Option<String> {
    Some(match constant(term)? {
        Constant::Null => "null".into(),
        Constant::Bool(value) => value.to_string(),
        Constant::Int(value) => value.to_string(),
        Constant::Float(value) => serde_json::Number::from_f64(value)?.to_string(),
        Constant::Str(value) => serde_json::to_string(&value).ok()?,
    })
}

fn number_constant(number: &str, negative: bool) -> Option<Constant> {
    if let Ok(int) = number.parse::<i64>() {
        return Some(Constant::Int(if negative {
            int.checked_neg()?
        } else {
            int
        }));
    }
    let float: f64 = number.parse().ok()?;
    float
        .is_finite()
        .then_some(Constant::Float(if negative { -float } else { float }))
}

impl Test {
    fn holds(&self, values: &[Value]) -> Result<bool, String> {
        match self {
            Test::Truthy(slot) => values[*slot].truthy(),
            Test::Compare(slot, cmp, constant) => {
                let order = values[*slot].compare(constant)?;
                Ok(match cmp {
                    Cmp::Lt => order == Ordering::Less,
                    Cmp::Le => order != Ordering::Greater,
                    Cmp::Gt => order == Ordering::Greater,
                    Cmp::Ge => order != Ordering::Less,
                    Cmp::Eq => order == Ordering::Equal,
                    Cmp::Ne => order != Ordering::Equal,
                })
            }
            Test::Not(inner) => Ok(!inner.holds(values)?),
            Test::And(left, right) => Ok(left.holds(values)? && right.holds(values)?),
            Test::Or(left, right) => Ok(left.holds(values)? || right.holds(values)?),
        }
    }
}
