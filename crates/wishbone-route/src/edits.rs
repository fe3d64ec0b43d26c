//! The programs run without jaq: stages joined by `|` that edit an
//! object's top-level fields, the common shape of a reshaping program.
//!
//! - `select(CONDITION)` first, where the condition has the quick shape of
//!   [`crate::quick`];
//! - `.k = .j` and `.k = CONSTANT` (a number, a string, `true`, `false`,
//!   `null`): set a field, in place if it is there, else last;
//! - `del(.k)`, `del(.k, .j)`: remove fields;
//! - `.k |= ascii_downcase`, `ascii_upcase`, `ltrimstr("x")`,
//!   `rtrimstr("x")` on a string field, and `tonumber` on one that holds
//!   a plain integer;
//! - `{k: .j, m: CONSTANT, n}`: a new object of such fields.
//!
//! The object's fields are read once, each value kept as its text, and
//! written back once: no value is built for the whole document. An event
//! that is not an object, a field of another type than a function takes,
//! or an object with many fields is left to jaq, so every answer and every
//! error is jq's; the tests compare the two on generated events. Values
//! that are not edited keep the text they came with (a number written
//! `1.50` stays so; jaq would write `1.5`).

use jaq_core::load::parse::{BinaryOp, Term};
use wishbone_codecs::object::{Object, Text};

use crate::quick::{Quick, constant_json, path, text as constant_text};

/// Objects with more fields than this go to jaq: a field is found by
/// looking at each.
const MOST_FIELDS: usize = 64;

/// A program of the quick shape.
#[derive(Debug)]
pub(crate) struct Edits {
    select: Vec<Quick>,
    steps: Vec<Step>,
}

#[derive(Debug)]
enum Step {
    Set(String, Source),
    Delete(Vec<String>),
    Update(String, Function),
    Build(Vec<(String, Source)>),
}

#[derive(Debug)]
enum Source {
    Field(String),
    /// A constant as JSON text.
    Constant(String),
}

#[derive(Clone, Debug)]
enum Function {
    Downcase,
    Upcase,
    /// A string of digits (an optional minus, no leading zero) as the
    /// integer; anything else goes to jaq.
    ToNumber,
    TrimStart(String),
    TrimEnd(String),
}

impl Edits {
    /// The quick form of a program's term, if it has the shape.
    pub(crate) fn new(term: &Term<&str>) -> Option<Edits> {
        let mut stages = Vec::new();
        flatten(term, &mut stages);
        let mut edits = Edits {
            select: Vec::new(),
            steps: Vec::new(),
        };
        for stage in stages {
            match stage {
                Term::Call("select", arguments) if arguments.len() == 1 => {
                    if !edits.steps.is_empty() {
                        return None;
                    }
                    edits.select.push(Quick::new(&arguments[0])?);
                }
                _ => edits.steps.push(step(stage)?),
            }
        }
        Some(edits)
    }

    /// What the program yields for `event` (nothing, when a `select` does
    /// not hold), or `None` when jaq must answer.
    pub(crate) fn apply(&self, event: &[u8]) -> Option<Option<Vec<u8>>> {
        for select in &self.select {
            if !select.matches(event).ok()? {
                return Some(None);
            }
        }
        let mut object = read(event)?;
        for step in &self.steps {
            step.apply(&mut object)?;
        }
        Some(Some(object.to_bytes()))
    }
}

/// The stages of `a | b | c`, in order.
fn flatten<'t, 's>(term: &'t Term<&'s str>, stages: &mut Vec<&'t Term<&'s str>>) {
    match term {
        Term::BinOp(left, BinaryOp::Pipe(None), right) => {
            flatten(left, stages);
            flatten(right, stages);
        }
        other => stages.push(other),
    }
}

fn step(term: &Term<&str>) -> Option<Step> {
    match term {
        Term::BinOp(left, BinaryOp::Assign, right) => Some(Step::Set(key(left)?, source(right)?)),
        Term::BinOp(left, BinaryOp::Update, right) => {
            let function = match &**right {
                Term::Call("ascii_downcase", arguments) if arguments.is_empty() => {
                    Function::Downcase
                }
                Term::Call("ascii_upcase", arguments) if arguments.is_empty() => Function::Upcase,
                Term::Call("tonumber", arguments) if arguments.is_empty() => Function::ToNumber,
                Term::Call("ltrimstr", arguments) if arguments.len() == 1 => {
                    Function::TrimStart(constant_text(&arguments[0])?)
                }
                Term::Call("rtrimstr", arguments) if arguments.len() == 1 => {
                    Function::TrimEnd(constant_text(&arguments[0])?)
                }
                _ => return None,
            };
            Some(Step::Update(key(left)?, function))
        }
        Term::Call("del", arguments) if arguments.len() == 1 => {
            let mut paths = Vec::new();
            comma_separated(&arguments[0], &mut paths);
            Some(Step::Delete(
                paths.into_iter().map(key).collect::<Option<_>>()?,
            ))
        }
        Term::Obj(entries) => Some(Step::Build(
            entries
                .iter()
                .map(|(name, value)| {
                    let name = constant_text(name).or_else(|| match name {
                        Term::Call(name, arguments) if arguments.is_empty() => {
                            Some(name.to_string())
                        }
                        _ => None,
                    })?;
                    let source = match value {
                        Some(value) => source(value)?,
                        None => Source::Field(name.clone()),
                    };
                    Some((name, source))
                })
                .collect::<Option<_>>()?,
        )),
        _ => None,
    }
}

fn comma_separated<'t, 's>(term: &'t Term<&'s str>, terms: &mut Vec<&'t Term<&'s str>>) {
    match term {
        Term::BinOp(left, BinaryOp::Comma, right) => {
            comma_separated(left, terms);
            comma_separated(right, terms);
        }
        other => terms.push(other),
    }
}

/// The key of `.k`: one step from the input.
fn key(term: &Term<&str>) -> Option<String> {
    match path(term)?.as_slice() {
        [key] => Some(key.clone()),
        _ => None,
    }
}

fn source(term: &Term<&str>) -> Option<Source> {
    if let Some(key) = key(term) {
        return Some(Source::Field(key));
    }
    constant_json(term).map(Source::Constant)
}

impl Step {
    fn apply<'a>(&self, object: &mut Object<'a>) -> Option<()> {
        match self {
            Step::Set(key, source) => {
                let value = source.value(object);
                object.set(key.clone(), value);
            }
            Step::Delete(keys) => object.remove(keys),
            Step::Update(key, function) => {
                let value = object.get_mut(key)?;
                *value = function.apply(value)?;
            }
            Step::Build(entries) => {
                let mut built = Object::new();
                for (key, source) in entries {
                    built.set(key.clone(), source.value(object));
                }
                *object = built;
            }
        }
        Some(())
    }
}

impl Function {
    /// The function of a field's value; `None` where jaq must answer (a
    /// value of another type, a number that is not a plain integer).
    fn apply(&self, value: &Text<'_>) -> Option<Text<'static>> {
        let text = value.to_text()?;
        Some(match self {
            Function::Downcase => Text::string(&text.to_ascii_lowercase()),
            Function::Upcase => Text::string(&text.to_ascii_uppercase()),
            Function::ToNumber => {
                let digits = text.strip_prefix('-').unwrap_or(&text);
                let plain = !digits.is_empty()
                    && digits.len() <= 15
                    && digits.bytes().all(|byte| byte.is_ascii_digit())
                    && (digits == "0" || !digits.starts_with('0'))
                    && text != "-0";
                if !plain {
                    return None;
                }
                Text::Made(text.into_owned())
            }
            Function::TrimStart(prefix) => {
                Text::string(text.strip_prefix(prefix.as_str()).unwrap_or(&text))
            }
            Function::TrimEnd(suffix) => {
                Text::string(text.strip_suffix(suffix.as_str()).unwrap_or(&text))
            }
        })
    }
}

impl Source {
    fn value<'a>(&self, object: &Object<'a>) -> Text<'a> {
        match self {
            Source::Field(key) => object.get(key).cloned().unwrap_or(Text::Raw("null")),
            Source::Constant(json) => Text::Made(json.clone()),
        }
    }
}

/// The event as an object of at most [`MOST_FIELDS`]; `None` for
/// anything else.
fn read(event: &[u8]) -> Option<Object<'_>> {
    let object = Object::parse(std::str::from_utf8(event).ok()?).ok()?;
    (object.len() <= MOST_FIELDS).then_some(object)
}

#[cfg(test)]
mod tests {
    use wishbone_runtime::random::Random;

    use crate::program::Program;

    /// Programs of the quick shape.
    const QUICK: [&str; 12] = [
        ".x = .a | del(.a)",
        r#".a = "const" | .b = 1 | .c = null | .d = true | .e = -2.5"#,
        "del(.a, .b)",
        r#"select(.level == "error") | .msg = .message | del(.message)"#,
        ".level |= ascii_downcase",
        ".level |= ascii_upcase | .n = 3",
        r#"{msg: .a, host: "h", level}"#,
        r#"{"a b": .b, c: 1}"#,
        "select(.a > 1) | del(.b)",
        ".a = .a",
        r#".["d e"] = .level | del(.level)"#,
        "select(.a) | select(.b == null)",
    ];

    fn value(random: &mut Random) -> String {
        match random.below(10) {
            0 => "null".into(),
            1 => "true".into(),
            2 => (random.below(2000) as i64 - 1000).to_string(),
            3 => "1.50".into(),
            4 => r#""Error \"quoted\" \u00e9 é""#.into(),
            5 => r#"{"n": [1, 2 ,{"m" : "x y"}]}"#.into(),
            6 => "[ ]".into(),
            7 => r#""INFO""#.into(),
            8 => r#""error""#.into(),
            9 if random.below(2) == 0 => [
                "\"42\"", "\"-7\"", "\"007\"", "\"1.5\"", "\"-0\"", "\"0\"", "\"\"", "\"12a\"",
            ][random.below(8) as usize]
                .into(),
            _ => format!("\"text {}\"", random.below(100)),
        }
    }

    fn event(random: &mut Random) -> String {
        const KEYS: [&str; 8] = ["a", "b", "level", "message", "d e", "c", "k\\u0041", "a"];
        match random.below(20) {
            0 => return "[1,2]".into(),
            1 => return "\"text\"".into(),
            2 => return "{not json".into(),
            _ => {}
        }
        let fields = random.below(6) as usize;
        let entries: Vec<String> = (0..fields)
            .map(|_| {
                let key = KEYS[random.below(KEYS.len() as u64) as usize];
                format!("\"{key}\": {}", value(random))
            })
            .collect();
        format!("{{{}}}", entries.join(", "))
    }

    fn parsed(values: &[Vec<u8>]) -> Vec<serde_json::Value> {
        values
            .iter()
            .map(|value| serde_json::from_slice(value).expect("valid JSON"))
            .collect()
    }

    #[test]
    fn quick_programs_answer_as_jaq_does() {
        let mut random = Random(7);
        for text in QUICK {
            let program = Program::compile(text).unwrap();
            assert!(program.is_quick(), "{text} is not quick");
            let term = jaq_core::load::parse(text, |parser| parser.term()).unwrap();
            let edits = super::Edits::new(&term).unwrap();
            let mut answered = 0;
            for _ in 0..2_000 {
                let event = event(&mut random);
                answered += usize::from(edits.apply(event.as_bytes()).is_some());
                let (mut quick, mut jaq) = (Vec::new(), Vec::new());
                let answers = (
                    program.run(event.as_bytes(), &mut quick),
                    program.run_in_jaq(event.as_bytes(), &mut jaq),
                );
                match answers {
                    (Ok(()), Ok(())) => assert_eq!(
                        parsed(&quick),
                        parsed(&jaq),
                        "{text} on {event}: {:?}",
                        String::from_utf8_lossy(&quick.concat())
                    ),
                    (Err(_), Err(_)) => {}
                    other => panic!("{text} on {event}: {other:?}"),
                }
            }
            assert!(answered > 150, "{text}: {answered} of 2,000 answered quick");
        }
    }

    /// The quick path's answer for `{"a":1,"c":VALUE}` is jaq's, and it
    /// answers (rather than leaving it to jaq) when `quick`.
    fn answers_as_jaq(text: &str, cases: &[(&str, bool)]) {
        let program = Program::compile(text).unwrap();
        let term = jaq_core::load::parse(text, |parser| parser.term()).unwrap();
        let edits = super::Edits::new(&term).unwrap();
        for (value, quick) in cases {
            let event = format!(r#"{{"a":1,"c":{value}}}"#);
            assert_eq!(
                edits.apply(event.as_bytes()).is_some(),
                *quick,
                "{text}: {value}"
            );
            let (mut fast, mut slow) = (Vec::new(), Vec::new());
            match (
                program.run(event.as_bytes(), &mut fast),
                program.run_in_jaq(event.as_bytes(), &mut slow),
            ) {
                (Ok(()), Ok(())) => assert_eq!(parsed(&fast), parsed(&slow), "{text}: {value}"),
                (Err(_), Err(_)) => {}
                other => panic!("{text}: {value}: {other:?}"),
            }
        }
    }

    #[test]
    fn trimming_is_quick_for_strings_and_jaq_s_for_the_rest() {
        let cases = [
            ("\"error\"", true),
            ("\"terror\"", true),
            ("\"er\"", true),
            ("\"\"", true),
            ("\"é er é\"", true),
            ("17", false),
            ("null", false),
        ];
        answers_as_jaq(r#".c |= ltrimstr("er")"#, &cases);
        answers_as_jaq(r#".c |= rtrimstr("or")"#, &cases);
        answers_as_jaq(r#".c |= ltrimstr("")"#, &cases);
    }

    #[test]
    fn tonumber_is_quick_for_plain_integers_and_jaq_s_for_the_rest() {
        answers_as_jaq(
            ".c |= tonumber",
            &[
                ("\"42\"", true),
                ("\"-7\"", true),
                ("\"0\"", true),
                ("\"123456789012345\"", true),
                ("\"007\"", false),
                ("\"1.5\"", false),
                ("\"-0\"", false),
                ("\"\"", false),
                ("\"12a\"", false),
                ("\"1e3\"", false),
                ("17", false),
                ("null", false),
            ],
        );
    }

    #[test]
    fn values_keep_their_text_and_lose_their_spaces() {
        let program = Program::compile(".b = .a").unwrap();
        let mut out = Vec::new();
        program
            .run(br#"{"a": {"x": [1, 2]}, "n": 1.50}"#, &mut out)
            .unwrap();
        assert_eq!(
            out,
            [br#"{"a":{"x":[1,2]},"n":1.50,"b":{"x":[1,2]}}"#.to_vec()]
        );
    }

    #[test]
    fn other_shapes_go_to_jaq() {
        for text in [
            ".a.b = 1",
            "map(.)",
            ".a |= . + 1",
            "select(.a) | .b = 1 | select(.c)",
            "del(.a[0])",
        ] {
            assert!(!Program::compile(text).unwrap().is_quick(), "{text}");
        }
    }
}
