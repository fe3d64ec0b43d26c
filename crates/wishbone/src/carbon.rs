//! `--graphite HOST:PORT`: the metrics route the article writes in a
//! bootstrap file (`wishbone.metrics.graphite` into a `wishbone.output.tcp`
//! pointed at carbon), added to the loaded file by the command line. It is
//! the one way metrics reach carbon: the same modules, queues, backoff and
//! outage logs as a route written by hand, and their own queues and
//! counters in the reports (`queue.wishbone_carbon.inbox.*`,
//! `module.wishbone_carbon.*`).
//!
//! While carbon is down, reports are dropped and counted (the tcp output
//! has `failed: true` and nothing takes `failed`), so metrics never hold
//! the event flow, and never a stop.

use wishbone_bootstrap::{ArgumentError, Arguments, Catalog, ModuleDecl, Route, Section};
use wishbone_runtime::{Loaded, ModuleSet};

/// The module that turns what the server records into Graphite lines.
pub const METRICS: &str = "wishbone_metrics";
/// The tcp output that writes them to carbon.
pub const CARBON: &str = "wishbone_carbon";

/// Where `--graphite` sends, and under which first path segment.
pub struct Carbon<'a> {
    /// `HOST:PORT`, checked by the command line's parser.
    pub address: &'a str,
    /// `--graphite-prefix`.
    pub prefix: &'a str,
}

impl Carbon<'_> {
    /// Adds the two modules and their route to a loaded bootstrap. A file
    /// that already names a module like one of them cannot take them.
    pub fn add_to(&self, loaded: &mut Loaded, modules: &ModuleSet) -> Result<(), String> {
        for name in [METRICS, CARBON] {
            if loaded
                .bootstrap
                .modules
                .iter()
                .any(|decl| decl.name == name)
            {
                return Err(format!(
                    "--graphite adds a module named `{name}`, and the bootstrap file has one: rename it, or route metrics in the file instead"
                ));
            }
        }
        let (host, port) = crate::cli::split_host_and_port(self.address)
            .ok_or_else(|| format!("`{}` is not HOST:PORT", self.address))?;
        let metrics = serde_json::json!({"prefix": self.prefix, "include_hostname": true});
        let carbon = serde_json::json!({"host": host, "port": port, "failed": true});
        for (name, kind, arguments) in [
            (METRICS, "wishbone.metrics.graphite", metrics),
            (CARBON, "wishbone.output.tcp", carbon),
        ] {
            let explain = |error: ArgumentError| format!("--graphite: module `{name}`: {error}");
            let kind = modules
                .find(kind)
                .ok_or_else(|| format!("--graphite needs the module kind `{kind}`"))?;
            let arguments = Arguments::from_serialize(&arguments).map_err(explain)?;
            let built = modules.build(kind.name, &arguments).map_err(explain)?;
            loaded.bootstrap.modules.push(ModuleDecl {
                name: name.to_string(),
                kind: kind.name,
                queues: kind.queues,
                arguments,
                section: Section::Metrics,
            });
            loaded.built.insert(name.to_string(), built);
        }
        let route = Route::parse(&format!("{METRICS}.outbox -> {CARBON}.inbox"))
            .expect("the names are valid queue names");
        loaded.bootstrap.routes.push(route);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(text: &str) -> Loaded {
        let modules = crate::builtin_set();
        wishbone_bootstrap::validate(std::path::Path::new("test.yaml"), text, &modules)
            .unwrap_or_else(|error| panic!("{error}"))
    }

    const FILE: &str = "modules:\n  input: {module: wishbone.input.generator}\n  output: {module: wishbone.output.null}\nroutingtable:\n  - input.outbox -> output.inbox\n";

    #[test]
    fn adds_the_metrics_module_a_tcp_output_and_their_route() {
        let mut loaded = loaded(FILE);
        let carbon = Carbon {
            address: "[::1]:2003",
            prefix: "direct",
        };
        carbon.add_to(&mut loaded, &crate::builtin_set()).unwrap();
        let kinds: Vec<(&str, &str)> = loaded
            .bootstrap
            .modules
            .iter()
            .map(|decl| (decl.name.as_str(), decl.kind))
            .collect();
        assert_eq!(
            kinds[2..],
            [
                (METRICS, "wishbone.metrics.graphite"),
                (CARBON, "wishbone.output.tcp")
            ]
        );
        let carbon_arguments = &loaded.bootstrap.modules[3].arguments;
        let parsed: serde_json::Value = carbon_arguments.deserialize().unwrap();
        assert_eq!(parsed["host"], "::1");
        assert_eq!(parsed["port"], 2003);
        assert_eq!(parsed["failed"], true);
        assert!(loaded.built.contains_key(METRICS) && loaded.built.contains_key(CARBON));
        assert_eq!(
            loaded.bootstrap.routes.last().unwrap().to_string(),
            "wishbone_metrics.outbox -> wishbone_carbon.inbox"
        );
    }

    #[test]
    fn a_file_with_a_module_of_the_same_name_cannot_take_them() {
        let mut loaded = loaded(
            &FILE
                .replace("output:", "wishbone_carbon:")
                .replace("output.inbox", "wishbone_carbon.inbox"),
        );
        let carbon = Carbon {
            address: "127.0.0.1:2003",
            prefix: "wishbone",
        };
        let error = carbon
            .add_to(&mut loaded, &crate::builtin_set())
            .unwrap_err();
        assert!(error.contains("`wishbone_carbon`"), "{error}");
    }
}
