//! The one list of every builtin kind of module: what `wishbone list`
//! shows and a bootstrap may name. A kind from another crate (the NATS
//! modules bring their client, the jq modules their jq engine) is listed here too.

use wishbone_runtime::{ModuleKind, ModuleSet};

/// Every builtin kind of module.
pub fn builtin() -> Vec<ModuleKind> {
    vec![
        wishbone_modules::input::tcp::KIND,
        wishbone_modules::input::udp::KIND,
        wishbone_modules::input::unix::KIND,
        wishbone_modules::input::relp::KIND,
        wishbone_files::input::KIND,
        wishbone_modules::input::generator::KIND,
        wishbone_modules::input::metronome::KIND,
        wishbone_modules::process::modify::KIND,
        wishbone_modules::process::decode::KIND,
        wishbone_modules::process::encode::KIND,
        wishbone_route::jq::KIND,
        wishbone_modules::flow::roundrobin::KIND,
        wishbone_modules::flow::funnel::KIND,
        wishbone_modules::flow::fanout::KIND,
        wishbone_route::filter::KIND,
        wishbone_route::queueselect::KIND,
        wishbone_wal::KIND,
        wishbone_modules::output::tcp::KIND,
        wishbone_files::output::KIND,
        wishbone_modules::output::stdout::KIND,
        wishbone_modules::output::null::KIND,
        wishbone_modules::output::websocket::KIND,
        wishbone_modules::output::relp::KIND,
        wishbone_http::output::KIND,
        wishbone_http::input::KIND,
        wishbone_modules::metrics::graphite::KIND,
        wishbone_nats::input::KIND,
        wishbone_nats::output::KIND,
        wishbone_prometheus::KIND,
    ]
}

/// The builtin kinds as a set, ready to validate bootstraps and run servers.
pub fn builtin_set() -> ModuleSet {
    ModuleSet::new(builtin())
}
