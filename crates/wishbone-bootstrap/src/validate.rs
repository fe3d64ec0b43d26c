//! From a parsed document to a [`Bootstrap`] whose every module and route is
//! known to be valid.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};
use wishbone_event::{QueueSpec, RESERVED_QUEUES};

use crate::document::{describe, entries, parse};
use crate::suggest::did_you_mean;
use crate::{ArgumentError, Arguments, LoadError, Problem, QueueRef, Route};

/// What the validator needs to know about module kinds; the runtime answers
/// from its list of modules.
pub trait Catalog {
    /// What checking a module's arguments makes: for the runtime, the module
    /// itself, built once here and run as it is ([`Validated::built`]).
    type Built;
    /// The canonical name of a kind given by any of its names (the article
    /// era's `wishbone.builtin.flow.roundrobin` is `wishbone.flow.roundrobin`).
    fn resolve(&self, kind: &str) -> Option<&'static str>;
    /// Every name a kind may be given, for suggestions.
    fn kind_names(&self) -> Vec<&'static str>;
    /// The queues of a kind.
    fn queues(&self, kind: &str) -> Option<QueueSpec>;
    /// Checks the arguments by building the module, without starting
    /// anything.
    fn build(&self, kind: &str, arguments: &Arguments) -> Result<Self::Built, ArgumentError>;
    /// For a kind whose outgoing queues are any names, the names a module
    /// built gives itself (a queueselect's rules), if it decides them.
    fn outgoing_queues(&self, _built: &Self::Built) -> Option<Vec<String>> {
        None
    }
}

/// A bootstrap that passed validation, with what validation built of it.
pub struct Validated<B> {
    /// The file, checked.
    pub bootstrap: Bootstrap,
    /// Each module, by name, as the catalog built it to check its
    /// arguments.
    pub built: HashMap<String, B>,
}

/// Which part of the file declared a module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// `modules:`
    Modules,
    /// `metrics:`, modules that turn queue statistics into events.
    Metrics,
}

/// One module of a valid bootstrap.
#[derive(Clone, Debug)]
pub struct ModuleDecl {
    /// The instance name the routing table uses.
    pub name: String,
    /// The canonical kind.
    pub kind: &'static str,
    /// The kind's queues.
    pub queues: QueueSpec,
    /// The `arguments:` block, for the kind's `Config`.
    pub arguments: Arguments,
    /// Which section declared it.
    pub section: Section,
}

/// A bootstrap file every part of which was checked.
#[derive(Clone, Debug)]
pub struct Bootstrap {
    /// The file it was read from, for messages.
    pub path: PathBuf,
    /// In file order, `metrics:` modules first.
    pub modules: Vec<ModuleDecl>,
    /// In file order; a flow module's destinations follow this order.
    pub routes: Vec<Route>,
}

const TOP_LEVEL_KEYS: [&str; 3] = ["metrics", "modules", "routingtable"];
const MODULE_KEYS: [&str; 3] = ["module", "arguments", "description"];

/// The largest bootstrap file read: far beyond any real one, and small
/// enough that `--config /dev/zero` cannot exhaust memory.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Reads and validates a bootstrap file of at most [`MAX_FILE_BYTES`].
pub fn load<C: Catalog + ?Sized>(
    path: &Path,
    catalog: &C,
) -> Result<Validated<C::Built>, LoadError> {
    let read_error = |source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_FILE_BYTES + 1).read_to_string(&mut text))
        .map_err(read_error)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(LoadError::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_FILE_BYTES,
        });
    }
    validate(path, &text, catalog)
}

/// Validates bootstrap text; `path` is used in messages only.
pub fn validate<C: Catalog + ?Sized>(
    path: &Path,
    text: &str,
    catalog: &C,
) -> Result<Validated<C::Built>, LoadError> {
    let mut problems = Vec::new();
    let invalid = |mut problems: Vec<Problem>| {
        Problem::locate_all(&mut problems, text);
        LoadError::Invalid {
            path: path.to_path_buf(),
            problems,
        }
    };
    let text = match crate::environment::substitute(text, |name| std::env::var(name).ok()) {
        Ok(text) => text,
        Err(problems) => return Err(invalid(problems)),
    };
    let document = match parse(&text) {
        Ok(document) => document,
        Err(problem) => return Err(invalid(vec![problem])),
    };
    let top = match top_level(&document) {
        Ok(top) => top,
        Err(problem) => return Err(invalid(vec![problem])),
    };
    let (modules, routes, built) = read_top(top, catalog, &mut problems);
    if problems.is_empty() {
        let bootstrap = Bootstrap {
            path: path.to_path_buf(),
            modules,
            routes,
        };
        Ok(Validated { bootstrap, built })
    } else {
        Err(invalid(problems))
    }
}

/// The file's top-level mapping, or why it is not one.
fn top_level(document: &Value) -> Result<&Mapping, Problem> {
    match document {
        Value::Mapping(top) => Ok(top),
        Value::Null => Err(Problem::new(
            "top level",
            "the file is empty; a bootstrap needs `modules:` and `routingtable:`",
        )),
        other => Err(Problem::new(
            "top level",
            format!(
                "expected a mapping with `modules:` and `routingtable:`, found {}",
                describe(other)
            ),
        )),
    }
}

/// The modules (of both sections, `metrics:` first) and the routes of the
/// top-level mapping; every problem found goes to `problems`.
fn read_top<C: Catalog + ?Sized>(
    top: &Mapping,
    catalog: &C,
    problems: &mut Vec<Problem>,
) -> (Vec<ModuleDecl>, Vec<Route>, HashMap<String, C::Built>) {
    let mut modules = Vec::new();
    let mut built = HashMap::new();
    // Modules whose kind is unknown: already reported, and not reported
    // again as undefined by the routes that name them.
    let mut unresolved = HashSet::new();
    let mut routing_lines = None;
    let mut saw_modules = false;
    for (key, value) in entries(top, "top level", problems) {
        let section = match key {
            "modules" => Section::Modules,
            "metrics" => Section::Metrics,
            "routingtable" => {
                routing_lines = Some(value);
                continue;
            }
            unknown => {
                let message = format!(
                    "unknown key `{unknown}`; valid keys are {}{}",
                    TOP_LEVEL_KEYS.join(", "),
                    did_you_mean(unknown, TOP_LEVEL_KEYS)
                );
                problems.push(Problem::new("top level", message).under(&[unknown]));
                continue;
            }
        };
        saw_modules |= section == Section::Modules;
        let into = Declared {
            modules: &mut modules,
            built: &mut built,
            unresolved: &mut unresolved,
        };
        read_modules(value, section, catalog, into, problems);
    }
    if !saw_modules {
        problems.push(Problem::new(
            "top level",
            "no `modules:` section; a bootstrap needs at least one module",
        ));
    }
    modules.sort_by_key(|module: &ModuleDecl| module.section == Section::Modules);
    let routes = match routing_lines {
        Some(lines) => read_routes(lines, &modules, &built, &unresolved, catalog, problems),
        None => Vec::new(),
    };
    (modules, routes, built)
}

/// Where the modules read go.
struct Declared<'a, B> {
    modules: &'a mut Vec<ModuleDecl>,
    built: &'a mut HashMap<String, B>,
    /// Modules whose kind is unknown.
    unresolved: &'a mut HashSet<String>,
}

fn read_modules<C: Catalog + ?Sized>(
    value: &Value,
    section: Section,
    catalog: &C,
    into: Declared<'_, C::Built>,
    problems: &mut Vec<Problem>,
) {
    let mut defined: HashSet<String> = into
        .modules
        .iter()
        .map(|module| module.name.clone())
        .chain(into.unresolved.iter().cloned())
        .collect();
    let section_name = if section == Section::Modules {
        "modules"
    } else {
        "metrics"
    };
    let mapping = match value {
        Value::Mapping(mapping) => mapping,
        Value::Null => return,
        other => {
            problems.push(
                Problem::new(
                    format!("`{section_name}:`"),
                    format!(
                        "expected a mapping of module names to modules, found {}",
                        describe(other)
                    ),
                )
                .under(&[section_name]),
            );
            return;
        }
    };
    for (name, body) in entries(mapping, section_name, problems) {
        let place = Place {
            text: format!("module `{name}`"),
            keys: [section_name, name],
        };
        if !valid_module_name(name) {
            problems.push(place.problem(
                "a module name may hold only letters, digits, `_` and `-` (a dot would split it in routes)",
            ));
            continue;
        }
        if !defined.insert(name.to_string()) {
            problems.push(
                place.problem(
                    "defined twice (module names are shared by `modules:` and `metrics:`)",
                ),
            );
            continue;
        }
        match read_module(name, body, section, catalog, &place, problems) {
            Some((module, built)) => {
                if let Some(built) = built {
                    into.built.insert(name.to_string(), built);
                }
                into.modules.push(module);
            }
            None => {
                into.unresolved.insert(name.to_string());
            }
        }
    }
}

fn valid_module_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A module's place: how messages name it, and its keys in the file.
struct Place<'a> {
    text: String,
    keys: [&'a str; 2],
}

impl Place<'_> {
    /// A problem with the module as a whole.
    fn problem(&self, message: impl Into<String>) -> Problem {
        Problem::new(&self.text, message).under(&self.keys)
    }

    /// A problem with one key of the module (`module`, `arguments`, ...),
    /// or with one key under it.
    fn problem_at(&self, keys: &[&str], message: impl Into<String>) -> Problem {
        let mut path = self.keys.to_vec();
        path.extend_from_slice(keys);
        Problem::new(&self.text, message).under(&path)
    }
}

/// A module's `module:` and `arguments:` (and a `description:`, for
/// readers of the file, as in the original Wishbone).
fn read_module_keys<'a>(
    body: &'a Mapping,
    place: &Place,
    problems: &mut Vec<Problem>,
) -> (Option<&'a str>, Arguments) {
    let mut kind_name = None;
    let mut arguments = Arguments::default();
    for (key, value) in entries(body, &place.text, problems) {
        match key {
            "module" => match value.as_str() {
                Some(kind) => kind_name = Some(kind),
                None => problems.push(place.problem_at(
                    &["module"],
                    format!(
                        "`module:` must name a module kind, found {}",
                        describe(value)
                    ),
                )),
            },
            "arguments" => match value {
                Value::Mapping(_) | Value::Null => arguments = Arguments::from_value(value.clone()),
                other => problems.push(place.problem_at(
                    &["arguments"],
                    format!("`arguments:` must be a mapping, found {}", describe(other)),
                )),
            },
            // A note for readers of the file, as in the original Wishbone.
            "description" => {}
            unknown => problems.push(place.problem_at(
                &[unknown],
                format!(
                    "unknown key `{unknown}`; valid keys are {}{}",
                    MODULE_KEYS.join(", "),
                    did_you_mean(unknown, MODULE_KEYS)
                ),
            )),
        }
    }
    (kind_name, arguments)
}

/// A module's declaration, and what the catalog built of it (none when its
/// arguments are wrong: a problem says so).
fn read_module<C: Catalog + ?Sized>(
    name: &str,
    body: &Value,
    section: Section,
    catalog: &C,
    place: &Place,
    problems: &mut Vec<Problem>,
) -> Option<(ModuleDecl, Option<C::Built>)> {
    let Value::Mapping(body) = body else {
        problems.push(place.problem(format!(
            "expected a mapping with `module:` and optional `arguments:`, found {}",
            describe(body)
        )));
        return None;
    };
    let (kind_name, arguments) = read_module_keys(body, place, problems);
    let Some(kind_name) = kind_name else {
        problems.push(
            place.problem(
                "no `module:` key saying which kind of module this is (see `wishbone list`)",
            ),
        );
        return None;
    };
    let found = catalog
        .resolve(kind_name)
        .and_then(|kind| Some((kind, catalog.queues(kind)?)));
    let Some((kind, queues)) = found else {
        problems.push(place.problem_at(&["module"], unknown_kind(kind_name, catalog)));
        return None;
    };
    let built = match catalog.build(kind, &arguments) {
        Ok(built) => Some(built),
        Err(error) => {
            let field = error
                .field_name()
                .into_iter()
                .flat_map(|path| path.split('.'));
            let keys: Vec<&str> = ["arguments"].into_iter().chain(field).collect();
            let message = format!("invalid arguments for {kind}: {error}");
            problems.push(place.problem_at(&keys, message));
            None
        }
    };
    let module = ModuleDecl {
        name: name.to_string(),
        kind,
        queues,
        arguments,
        section,
    };
    Some((module, built))
}

/// What is said of a kind the catalog lacks: the close match when there is
/// one, else every kind it has.
fn unknown_kind<C: Catalog + ?Sized>(kind_name: &str, catalog: &C) -> String {
    let names = catalog.kind_names();
    if let Some(close) = crate::suggest::nearest(kind_name, names.iter().copied()) {
        return format!(
            "unknown module kind `{kind_name}`; did you mean `{close}`? (`wishbone list` shows every kind)"
        );
    }
    let known: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| catalog.resolve(name) == Some(*name))
        .collect();
    format!(
        "unknown module kind `{kind_name}`; this program has: {}",
        known.join(", ")
    )
}

fn read_routes<C: Catalog + ?Sized>(
    value: &Value,
    modules: &[ModuleDecl],
    built: &HashMap<String, C::Built>,
    unresolved: &HashSet<String>,
    catalog: &C,
    problems: &mut Vec<Problem>,
) -> Vec<Route> {
    let modules = Modules {
        in_order: modules,
        by_name: modules
            .iter()
            .map(|module| (module.name.as_str(), module))
            .collect(),
        built,
    };
    let lines = match value {
        Value::Sequence(lines) => lines,
        Value::Null => return Vec::new(),
        other => {
            problems.push(
                Problem::new(
                    "`routingtable:`",
                    format!("expected a list of routes, found {}", describe(other)),
                )
                .under(&["routingtable"]),
            );
            return Vec::new();
        }
    };
    let mut routes = Vec::new();
    let mut connected: HashMap<QueueRef, QueueRef> = HashMap::new();
    for (index, line) in lines.iter().enumerate() {
        let before = problems.len();
        let route = read_route(index + 1, line, &modules, unresolved, catalog, problems);
        let item = index.to_string();
        for problem in &mut problems[before..] {
            *problem = problem.clone().under(&["routingtable", &item]);
        }
        let Some(route) = route else { continue };
        let mut clash = false;
        let place = format!("route {} `{route}`", index + 1);
        for (end, other) in [(&route.from, &route.to), (&route.to, &route.from)] {
            if let Some(existing) = connected.get(end) {
                let hint = if end == &route.to {
                    "; to merge several queues into one, route them into a wishbone.flow.funnel"
                } else {
                    "; to send to several queues, route through a wishbone.flow.fanout or wishbone.flow.roundrobin"
                };
                problems.push(
                    Problem::new(
                        &place,
                        format!("queue `{end}` is already connected to `{existing}`{hint}"),
                    )
                    .under(&["routingtable", &item]),
                );
                clash = true;
            } else {
                connected.insert(end.clone(), other.clone());
            }
        }
        if !clash {
            routes.push(route);
        }
    }
    routes
}

/// One line of the routing table, its ends checked against the modules.
fn read_route<C: Catalog + ?Sized>(
    number: usize,
    line: &Value,
    modules: &Modules<'_, C::Built>,
    unresolved: &HashSet<String>,
    catalog: &C,
    problems: &mut Vec<Problem>,
) -> Option<Route> {
    let Some(text) = line.as_str() else {
        problems.push(Problem::new(
            format!("route {number}"),
            format!(
                "expected `module.queue -> module.queue`, found {}",
                describe(line)
            ),
        ));
        return None;
    };
    let place = format!("route {number} `{text}`");
    let Some(route) = Route::parse(text) else {
        problems.push(Problem::new(
            &place,
            "not of the form `module.queue -> module.queue`",
        ));
        return None;
    };
    // An end whose module has an unknown kind was reported with the module.
    let check = |end: &QueueRef, direction, problems: &mut Vec<Problem>| {
        !unresolved.contains(&end.module)
            && check_end(end, direction, modules, catalog, &place, problems)
    };
    let from_ok = check(&route.from, Direction::From, problems);
    let to_ok = check(&route.to, Direction::To, problems);
    (from_ok && to_ok).then_some(route)
}

/// The modules a route may name: in file order for messages, by name to
/// look each up in constant time (a file may hold tens of thousands).
struct Modules<'a, B> {
    in_order: &'a [ModuleDecl],
    by_name: HashMap<&'a str, &'a ModuleDecl>,
    /// What validation built of each.
    built: &'a HashMap<String, B>,
}

/// How many defined modules a message about an undefined one lists.
const LISTED_NAMES: usize = 20;

#[derive(PartialEq)]
enum Direction {
    From,
    To,
}

fn check_end<C: Catalog + ?Sized>(
    end: &QueueRef,
    direction: Direction,
    modules: &Modules<'_, C::Built>,
    catalog: &C,
    place: &str,
    problems: &mut Vec<Problem>,
) -> bool {
    let Some(module) = modules.by_name.get(end.module.as_str()) else {
        let names = modules.in_order.iter().map(|module| module.name.as_str());
        let listed: Vec<&str> = names.clone().take(LISTED_NAMES).collect();
        let more = modules.in_order.len().saturating_sub(LISTED_NAMES);
        problems.push(Problem::new(
            place,
            format!(
                "module `{}` is not defined{}; defined modules: {}{}",
                end.module,
                did_you_mean(&end.module, names),
                if listed.is_empty() {
                    "none".to_string()
                } else {
                    listed.join(", ")
                },
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ),
        ));
        return false;
    };
    let Some(spec) = catalog.queues(module.kind) else {
        return false;
    };
    let named = match direction {
        Direction::From if spec.any_outgoing => modules
            .built
            .get(&module.name)
            .and_then(|built| catalog.outgoing_queues(built)),
        _ => None,
    };
    let (fits, side, valid) = match (direction, named) {
        (Direction::From, Some(mut names)) => {
            let fits = names.contains(&end.queue) || RESERVED_QUEUES.contains(&end.queue.as_str());
            names.extend(RESERVED_QUEUES.map(String::from));
            (fits, "route from", names.join(", "))
        }
        (Direction::From, None) => (
            spec.has_outgoing(&end.queue),
            "route from",
            spec.describe_outgoing(),
        ),
        (Direction::To, _) => (
            spec.has_incoming(&end.queue),
            "route into",
            spec.describe_incoming(),
        ),
    };
    if !fits {
        problems.push(Problem::new(
            place,
            format!(
                "module `{}` ({}) has no queue `{}` to {side}; it has: {valid}",
                module.name, module.kind, end.queue
            ),
        ));
    }
    fits
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A catalog of two kinds, enough to exercise every check.
    struct TwoKinds;

    impl Catalog for TwoKinds {
        type Built = ();

        fn resolve(&self, kind: &str) -> Option<&'static str> {
            match kind {
                "test.input" => Some("test.input"),
                "test.output" | "test.old.output" => Some("test.output"),
                "test.funnel" => Some("test.funnel"),
                _ => None,
            }
        }
        fn kind_names(&self) -> Vec<&'static str> {
            vec![
                "test.input",
                "test.output",
                "test.old.output",
                "test.funnel",
            ]
        }
        fn queues(&self, kind: &str) -> Option<QueueSpec> {
            match kind {
                "test.input" => Some(QueueSpec::SOURCE),
                "test.output" => Some(QueueSpec::SINK),
                "test.funnel" => Some(QueueSpec {
                    any_incoming: true,
                    ..QueueSpec::SOURCE
                }),
                _ => None,
            }
        }
        fn build(&self, _kind: &str, arguments: &Arguments) -> Result<(), ArgumentError> {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            #[allow(dead_code)]
            struct Config {
                #[serde(default)]
                port: u16,
            }
            arguments.deserialize::<Config>().map(|_| ())
        }
    }

    fn check(text: &str) -> Result<Bootstrap, Vec<String>> {
        validate(Path::new("test.yaml"), text, &TwoKinds)
            .map(|validated| validated.bootstrap)
            .map_err(|error| error.problems().iter().map(ToString::to_string).collect())
    }

    #[test]
    fn a_valid_file_keeps_modules_and_routes_in_order() {
        let bootstrap = check(
            "modules:\n  input: {module: test.input}\n  output: {module: test.old.output, arguments: {port: 1}}\n\
             routingtable:\n  - input.outbox -> output.inbox\n",
        )
        .unwrap();
        assert_eq!(bootstrap.modules[1].kind, "test.output");
        assert_eq!(
            bootstrap.routes[0].to_string(),
            "input.outbox -> output.inbox"
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let problems = check(
            "modules:\n  input: {module: test.inptu}\n  output: {module: test.output, arguments: {prot: 1}}\n\
             routingtabel: []\n",
        )
        .unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert_eq!(
            problems[0],
            "line 2, column 11: module `input`: unknown module kind `test.inptu`; did you mean `test.input`? (`wishbone list` shows every kind)",
            "a close match, and not the whole list"
        );
        assert!(
            problems[1].starts_with("line 3, column 45: module `output`: ")
                && problems[1].contains("unknown field `prot` (did you mean `port`?)"),
            "{}",
            problems[1]
        );
        assert!(
            problems[2].starts_with("line 4, column 1: top level: unknown key `routingtabel`")
                && problems[2].contains("did you mean `routingtable`")
        );
        let far = check("modules:\n  input: {module: kafka}\n").unwrap_err();
        assert!(
            far[0].contains("unknown module kind `kafka`; this program has: test.input, test.output, test.funnel"),
            "no close match: the whole list, {far:?}"
        );
    }

    #[test]
    fn routes_are_checked_for_modules_queues_and_double_connections() {
        let problems = check(
            &[
                "modules:",
                "  input: {module: test.input}",
                "  output: {module: test.output}",
                "  other: {module: test.output}",
                "routingtable:",
                "  - input.outbox -> outptu.inbox",
                "  - input.outbx -> output.inbox",
                "  - input.outbox output.inbox",
                "  - input.outbox -> output.inbox",
                "  - input.outbox -> other.inbox",
                "  - output.inbox -> other.inbox",
            ]
            .join("\n"),
        )
        .unwrap_err();
        assert_eq!(problems.len(), 5, "{problems:#?}");
        assert!(problems[0].contains("module `outptu` is not defined; did you mean `output`?"));
        assert!(
            problems[0].starts_with("line 6, column 5: route 1")
                && problems[4].starts_with("line 11, "),
            "each route's line: {problems:#?}"
        );
        assert!(
            problems[1].contains("has no queue `outbx`") && problems[1].contains("it has: outbox")
        );
        assert!(problems[2].contains("not of the form `module.queue -> module.queue`"));
        assert!(
            problems[3].contains("queue `input.outbox` is already connected to `output.inbox`")
        );
        assert!(problems[4].contains("no queue `inbox` to route from"));
    }

    #[test]
    fn merging_into_one_queue_points_at_the_funnel() {
        let problems = check(
            "modules:\n  a: {module: test.input}\n  b: {module: test.input}\n  out: {module: test.output}\n\
             routingtable:\n  - a.outbox -> out.inbox\n  - b.outbox -> out.inbox\n",
        )
        .unwrap_err();
        assert!(
            problems[0].contains("already connected to `a.outbox`")
                && problems[0].contains("funnel"),
            "{problems:?}"
        );
    }

    #[test]
    fn shapes_that_are_not_bootstraps_are_explained() {
        assert!(check("").unwrap_err()[0].contains("the file is empty"));
        assert!(check("- a\n- b\n").unwrap_err()[0].contains("expected a mapping"));
        assert!(check("modules: 3\n").unwrap_err()[0].contains("found the number `3`"));
        assert!(
            check("modules:\n  a.b: {module: test.input}\n").unwrap_err()[0]
                .contains("a dot would split it")
        );
        assert!(
            check("modules:\n  a: {arguments: {}}\n").unwrap_err()[0].contains("no `module:` key")
        );
        assert!(
            check("modules: {a: {module: test.input}}\nroutingtable: [3]\n").unwrap_err()[0]
                .contains("found the number `3`")
        );
        assert!(check("modules: [\n").unwrap_err()[0].starts_with("syntax"));
    }

    #[test]
    fn metrics_modules_share_the_namespace() {
        let problems =
            check("metrics:\n  a: {module: test.input}\nmodules:\n  a: {module: test.input}\n")
                .unwrap_err();
        assert!(problems[0].contains("defined twice"), "{problems:?}");
    }

    /// A file of `count` modules and as many routes.
    fn many(count: usize) -> String {
        let mut text = String::from("modules:\n");
        for index in 0..count {
            text.push_str(&format!(
                "  in{index}: {{module: test.input}}\n  out{index}: {{module: test.output}}\n"
            ));
        }
        text.push_str("routingtable:\n");
        for index in 0..count {
            text.push_str(&format!("  - in{index}.outbox -> out{index}.inbox\n"));
        }
        text
    }

    /// Validation grows with the size of the file, not its square: eight
    /// times the modules takes about eight times as long (a quadratic
    /// check took sixty-four times; the bound leaves room for noise).
    #[test]
    fn validation_time_is_linear_in_modules_and_routes() {
        let time = |count: usize| {
            let text = many(count);
            let started = std::time::Instant::now();
            let bootstrap = check(&text).unwrap();
            assert_eq!(bootstrap.routes.len(), count);
            started.elapsed().as_secs_f64()
        };
        time(1000);
        let small = (0..3).map(|_| time(2500)).fold(f64::MAX, f64::min);
        let large = (0..3).map(|_| time(20_000)).fold(f64::MAX, f64::min);
        assert!(
            large / small < 24.0,
            "8x the modules took {:.1}x the time ({small:.3} s, {large:.3} s)",
            large / small
        );
    }
}
