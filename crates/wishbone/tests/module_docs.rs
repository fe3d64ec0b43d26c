//! What `show --docs` says of each builtin kind matches the kind: every
//! field of its `Config` (and every argument it shares with its family) is
//! described, every argument described is taken, and its example is a
//! valid bootstrap.

use wishbone_bootstrap::field_names as fields;
use wishbone_modules::{flow, input, metrics, output, process};
use wishbone_runtime::ModuleKind;

/// Each builtin kind with the arguments it takes: its `Config`'s fields and
/// those its family shares.
fn arguments() -> Vec<(ModuleKind, Vec<&'static str>)> {
    let listening = |mut own: Vec<&'static str>| {
        own.extend(input::LISTENING_ARGUMENTS);
        own
    };
    let delivering = |mut own: Vec<&'static str>| {
        own.extend(wishbone_output::arguments::SHARED);
        own
    };
    vec![
        (input::tcp::KIND, listening(fields::<input::tcp::Config>())),
        (input::udp::KIND, fields::<input::udp::Config>()),
        (input::unix::KIND, fields::<input::unix::Config>()),
        (
            input::relp::KIND,
            listening(fields::<input::relp::Config>()),
        ),
        (
            wishbone_files::input::KIND,
            fields::<wishbone_files::input::Config>(),
        ),
        (input::generator::KIND, fields::<input::generator::Config>()),
        (input::metronome::KIND, fields::<input::metronome::Config>()),
        (process::modify::KIND, fields::<process::modify::Config>()),
        (process::decode::KIND, fields::<process::decode::Config>()),
        (process::encode::KIND, fields::<process::encode::Config>()),
        (
            wishbone_route::filter::KIND,
            fields::<wishbone_route::filter::Config>(),
        ),
        (
            wishbone_route::queueselect::KIND,
            fields::<wishbone_route::queueselect::Config>(),
        ),
        (flow::roundrobin::KIND, fields::<flow::roundrobin::Config>()),
        (flow::funnel::KIND, fields::<flow::funnel::Config>()),
        (flow::fanout::KIND, fields::<flow::fanout::Config>()),
        (wishbone_wal::KIND, fields::<wishbone_wal::Config>()),
        (
            output::tcp::KIND,
            delivering(fields::<output::tcp::Config>()),
        ),
        (output::stdout::KIND, fields::<output::stdout::Config>()),
        (
            wishbone_files::output::KIND,
            delivering(fields::<wishbone_files::output::Config>()),
        ),
        (output::null::KIND, fields::<output::null::Config>()),
        (
            output::websocket::KIND,
            delivering(fields::<output::websocket::Config>()),
        ),
        (
            output::relp::KIND,
            delivering(fields::<output::relp::Config>()),
        ),
        (
            wishbone_http::output::KIND,
            delivering(fields::<wishbone_http::output::Config>()),
        ),
        (
            wishbone_http::input::KIND,
            listening(fields::<wishbone_http::input::Config>()),
        ),
        (
            metrics::graphite::KIND,
            fields::<metrics::graphite::Config>(),
        ),
        (
            wishbone_nats::input::KIND,
            fields::<wishbone_nats::input::Config>(),
        ),
        (
            wishbone_nats::output::KIND,
            delivering(fields::<wishbone_nats::output::Config>()),
        ),
        (
            wishbone_prometheus::KIND,
            fields::<wishbone_prometheus::Config>(),
        ),
    ]
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
    let checked: Vec<&str> = arguments().iter().map(|(kind, _)| kind.name).collect();
    for kind in wishbone::builtin() {
        assert!(checked.contains(&kind.name), "{} is not checked", kind.name);
    }
}

#[test]
fn every_argument_is_described() {
    let mut missing = Vec::new();
    for (kind, names) in arguments() {
        let described = kind.described_arguments();
        for name in names {
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
    for (kind, names) in arguments() {
        for name in kind.described_arguments() {
            if !names.contains(&name) {
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
        let bootstrap = if yaml.contains("routingtable:") {
            yaml
        } else {
            format!("{yaml}routingtable: []\n")
        };
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
