//! What `show --docs` says of each builtin kind matches the kind: every
//! field of its `Config` (and every argument it shares with its family) is
//! described, every argument described is taken, each default described is
//! the one the code takes, and its example is a valid bootstrap.

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use wishbone_bootstrap::{ArgumentError, Arguments, field_names as fields};
use wishbone_modules::{flow, input, metrics, output, process};
use wishbone_runtime::ModuleKind;

/// Reads a kind's arguments into what its module runs with, printed.
type Read = fn(&Arguments) -> Result<String, ArgumentError>;

/// One builtin kind: the arguments it takes (its `Config`'s fields and
/// those its family shares) and how they are read.
struct Checked {
    kind: ModuleKind,
    taken: Vec<&'static str>,
    read: Read,
}

fn own<C: DeserializeOwned + Debug>(kind: ModuleKind) -> Checked {
    Checked {
        kind,
        taken: fields::<C>(),
        read: |arguments| {
            arguments
                .deserialize::<C>()
                .map(|config| format!("{config:?}"))
        },
    }
}

/// A listening input whose own port is `PORT`: the shared arguments,
/// then its own.
fn listening<C: DeserializeOwned + Debug, const PORT: u16>(kind: ModuleKind) -> Checked {
    let mut taken = fields::<C>();
    taken.extend(input::LISTENING_ARGUMENTS);
    Checked {
        kind,
        taken,
        read: |arguments| {
            let (listening, own) = wishbone_listen::Listening::split(arguments, PORT)?;
            Ok(format!("{listening:?} {:?}", own.deserialize::<C>()?))
        },
    }
}

/// A delivering output: the shared arguments, then its own.
fn delivering<C: DeserializeOwned + Debug>(kind: ModuleKind) -> Checked {
    let mut taken = fields::<C>();
    taken.extend(wishbone_output::arguments::SHARED);
    Checked {
        kind,
        taken,
        read: |arguments| {
            let (settings, own) = wishbone_output::arguments::Settings::split(arguments)?;
            Ok(format!("{settings:?} {:?}", own.deserialize::<C>()?))
        },
    }
}

fn arguments() -> Vec<Checked> {
    vec![
        listening::<input::tcp::Config, { input::tcp::DEFAULT_PORT }>(input::tcp::KIND),
        own::<input::udp::Config>(input::udp::KIND),
        own::<input::unix::Config>(input::unix::KIND),
        listening::<input::relp::Config, { input::relp::DEFAULT_PORT }>(input::relp::KIND),
        own::<wishbone_files::input::Config>(wishbone_files::input::KIND),
        own::<input::generator::Config>(input::generator::KIND),
        own::<input::metronome::Config>(input::metronome::KIND),
        own::<process::modify::Config>(process::modify::KIND),
        own::<process::decode::Config>(process::decode::KIND),
        own::<process::encode::Config>(process::encode::KIND),
        own::<wishbone_route::jq::Config>(wishbone_route::jq::KIND),
        own::<wishbone_route::filter::Config>(wishbone_route::filter::KIND),
        own::<wishbone_route::queueselect::Config>(wishbone_route::queueselect::KIND),
        own::<flow::roundrobin::Config>(flow::roundrobin::KIND),
        own::<flow::funnel::Config>(flow::funnel::KIND),
        own::<flow::fanout::Config>(flow::fanout::KIND),
        own::<wishbone_wal::Config>(wishbone_wal::KIND),
        delivering::<output::tcp::Config>(output::tcp::KIND),
        own::<output::stdout::Config>(output::stdout::KIND),
        delivering::<wishbone_files::output::Config>(wishbone_files::output::KIND),
        own::<output::null::Config>(output::null::KIND),
        delivering::<output::websocket::Config>(output::websocket::KIND),
        delivering::<output::relp::Config>(output::relp::KIND),
        delivering::<wishbone_http::output::Config>(wishbone_http::output::KIND),
        listening::<wishbone_http::input::Config, { wishbone_http::input::DEFAULT_PORT }>(
            wishbone_http::input::KIND,
        ),
        own::<metrics::graphite::Config>(metrics::graphite::KIND),
        own::<wishbone_nats::input::Config>(wishbone_nats::input::KIND),
        delivering::<wishbone_nats::output::Config>(wishbone_nats::output::KIND),
        own::<wishbone_prometheus::Config>(wishbone_prometheus::KIND),
    ]
}

/// The bootstrap a kind's docs give as their example.
fn example(kind: &ModuleKind) -> String {
    let example = kind
        .docs
        .split("\nExample")
        .nth(1)
        .and_then(|rest| rest.split_once('\n'))
        .unwrap_or_else(|| panic!("{}: no Example section", kind.name))
        .1;
    let yaml: String = example
        .lines()
        .take_while(|line| line.is_empty() || line.starts_with("  "))
        .map(|line| format!("{}\n", line.get(2..).unwrap_or_default()))
        .collect();
    if yaml.contains("routingtable:") {
        yaml
    } else {
        format!("{yaml}routingtable: []\n")
    }
}

#[test]
fn field_names_are_read_from_a_config() {
    assert_eq!(
        fields::<output::tcp::Config>(),
        ["host", "port", "delimiter", "framing", "tls"]
    );
}

#[test]
fn every_builtin_kind_is_checked_here() {
    let checked: Vec<&str> = arguments()
        .iter()
        .map(|checked| checked.kind.name)
        .collect();
    for kind in wishbone::builtin() {
        assert!(checked.contains(&kind.name), "{} is not checked", kind.name);
    }
}

#[test]
fn every_argument_is_described() {
    let mut missing = Vec::new();
    for Checked { kind, taken, .. } in arguments() {
        let described = kind.described_arguments();
        for name in taken {
            if !described.contains(&name) {
                missing.push(format!("{}: `{name}`", kind.name));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "undocumented arguments:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_described_argument_is_taken() {
    let mut unknown = Vec::new();
    for Checked { kind, taken, .. } in arguments() {
        for name in kind.described_arguments() {
            if !taken.contains(&name) {
                unknown.push(format!("{}: `{name}`", kind.name));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "described but not taken:\n{}",
        unknown.join("\n")
    );
}

#[test]
fn every_example_is_a_valid_bootstrap() {
    let modules = wishbone::builtin_set();
    let mut invalid = Vec::new();
    for kind in wishbone::builtin() {
        let bootstrap = example(&kind);
        let path = std::path::Path::new(kind.name);
        if let Err(error) = wishbone_bootstrap::validate(path, &bootstrap, &modules) {
            invalid.push(format!("{bootstrap}{error}"));
        }
    }
    assert!(
        invalid.is_empty(),
        "invalid examples:\n\n{}",
        invalid.join("\n\n")
    );
}

/// Each default `show --docs` gives is what the module runs with when the
/// argument is left out of its example's arguments.
#[test]
fn every_described_default_is_the_code_s() {
    let modules = wishbone::builtin_set();
    let mut wrong = Vec::new();
    for Checked { kind, read, .. } in arguments() {
        let bootstrap = example(&kind);
        let loaded =
            wishbone_bootstrap::validate(std::path::Path::new(kind.name), &bootstrap, &modules)
                .unwrap_or_else(|error| panic!("{error}"));
        let arguments = loaded
            .bootstrap
            .modules
            .iter()
            .find(|decl| decl.kind == kind.name)
            .map(|decl| decl.arguments.clone())
            .unwrap_or_else(|| panic!("{}: the example has no such module", kind.name));
        if let Err(problem) = kind.defaults_match(&arguments, read) {
            wrong.push(problem);
        }
    }
    assert!(wrong.is_empty(), "defaults:\n\n{}", wrong.join("\n\n"));
}
