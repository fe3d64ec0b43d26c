//! What a reload changes: the running bootstrap and the new one compared
//! module by module, plain logic tested without a server.
//!
//! A module is **kept** when its kind, its arguments and the names of its
//! connected queues (its outgoing ones in the order of the routing table,
//! which a flow module's destinations follow) are the same: it runs on
//! untouched. When the module at the other end of one of its routes
//! changed, it is also **rewired**: its queues now lead to and from other
//! modules, and it keeps running. Any other module of both files is
//! **replaced**, one only in the running file is **stopped**, one only in
//! the new file is **started**.

use std::collections::HashMap;

use wishbone_bootstrap::{Bootstrap, ModuleDecl};

/// What a reload does to each module.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Runs on untouched (the rewired ones among them too).
    pub kept: Vec<String>,
    /// Kept, with routes into or out of it that lead elsewhere now.
    pub rewired: Vec<String>,
    /// Runs on, given new values of its live arguments.
    pub updated: Vec<String>,
    /// Stops, and a new module of the same name takes its place.
    pub replaced: Vec<String>,
    /// Stops for good.
    pub stopped: Vec<String>,
    /// New.
    pub started: Vec<String>,
}

/// What makes a module the same: kind, arguments, and its connected
/// queues, outgoing in order.
#[derive(PartialEq)]
struct Identity<'a> {
    kind: &'static str,
    arguments: &'a wishbone_bootstrap::Arguments,
    incoming: Vec<&'a str>,
    outgoing: Vec<&'a str>,
}

/// A module and its routes: what it is, and where its queues lead.
struct Placed<'a> {
    identity: Identity<'a>,
    routes: Vec<String>,
}

fn placed<'a>(bootstrap: &'a Bootstrap, decl: &'a ModuleDecl) -> Placed<'a> {
    let mut incoming: Vec<&str> = bootstrap
        .routes
        .iter()
        .filter(|route| route.to.module == decl.name)
        .map(|route| route.to.queue.as_str())
        .collect();
    incoming.sort_unstable();
    Placed {
        identity: Identity {
            kind: decl.kind,
            arguments: &decl.arguments,
            incoming,
            outgoing: bootstrap
                .routes
                .iter()
                .filter(|route| route.from.module == decl.name)
                .map(|route| route.from.queue.as_str())
                .collect(),
        },
        routes: bootstrap
            .routes
            .iter()
            .filter(|route| route.from.module == decl.name || route.to.module == decl.name)
            .map(ToString::to_string)
            .collect(),
    }
}

fn every_placed(bootstrap: &Bootstrap) -> HashMap<&str, Placed<'_>> {
    bootstrap
        .modules
        .iter()
        .map(|decl| (decl.name.as_str(), placed(bootstrap, decl)))
        .collect()
}

impl Plan {
    /// From the running bootstrap to the new one; `live` gives the
    /// arguments a module of the new file takes while it runs
    /// ([`Module::live_arguments`](crate::Module::live_arguments)).
    pub fn new(
        running: &Bootstrap,
        new: &Bootstrap,
        live: impl Fn(&ModuleDecl) -> &'static [&'static str],
    ) -> Self {
        let (before, after) = (every_placed(running), every_placed(new));
        let mut plan = Plan::default();
        for decl in &running.modules {
            let name = decl.name.clone();
            let (Some(old), Some(next)) = (
                before.get(decl.name.as_str()),
                after.get(decl.name.as_str()),
            ) else {
                plan.stopped.push(name);
                continue;
            };
            let (old_id, next_id) = (&old.identity, &next.identity);
            if old_id == next_id {
                if old.routes != next.routes {
                    plan.rewired.push(name.clone());
                }
                plan.kept.push(name);
                continue;
            }
            let declared = new.modules.iter().find(|other| other.name == decl.name);
            let fixed = |arguments: &wishbone_bootstrap::Arguments, live| arguments.split(live).1;
            match declared.map(&live) {
                Some(live)
                    if !live.is_empty()
                        && old_id.kind == next_id.kind
                        && old.routes == next.routes
                        && fixed(old_id.arguments, live) == fixed(next_id.arguments, live) =>
                {
                    plan.updated.push(name)
                }
                _ => plan.replaced.push(name),
            }
        }
        plan.started = new
            .modules
            .iter()
            .filter(|decl| !before.contains_key(decl.name.as_str()))
            .map(|decl| decl.name.clone())
            .collect();
        plan
    }

    /// The modules that stop: replaced and stopped.
    pub fn stopping(&self) -> impl Iterator<Item = &String> {
        self.replaced.iter().chain(&self.stopped)
    }

    /// The modules that start: replacements and new ones.
    pub fn starting(&self) -> impl Iterator<Item = &String> {
        self.replaced.iter().chain(&self.started)
    }

    /// Nothing changes.
    pub fn is_empty(&self) -> bool {
        self.rewired.is_empty()
            && self.updated.is_empty()
            && self.replaced.is_empty()
            && self.stopped.is_empty()
            && self.started.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Module, ModuleContext, ModuleError, ModuleKind, ModuleSet};
    use futures::future::LocalBoxFuture;
    use wishbone_bootstrap::{ArgumentError, Arguments};
    use wishbone_event::QueueSpec;

    struct Idle;

    impl Module for Idle {
        fn run(
            self: Box<Self>,
            _: ModuleContext,
        ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
            Box::pin(async { Ok(()) })
        }
    }

    fn build(_: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
        Ok(Box::new(Idle))
    }

    fn kind(name: &'static str, queues: QueueSpec) -> ModuleKind {
        ModuleKind {
            name,
            aliases: &[],
            description: "",
            docs: "",
            queues,
            build,
        }
    }

    fn bootstrap(text: &str) -> Bootstrap {
        let set = ModuleSet::new(vec![
            kind("test.input", QueueSpec::SOURCE),
            kind(
                "test.flow",
                QueueSpec {
                    incoming: &["inbox"],
                    outgoing: &[],
                    any_incoming: false,
                    any_outgoing: true,
                },
            ),
            kind("test.output", QueueSpec::SINK),
        ]);
        wishbone_bootstrap::validate(std::path::Path::new("test.yaml"), text, &set)
            .map(|validated| validated.bootstrap)
            .unwrap_or_else(|error| panic!("{error}"))
    }

    const TWO: &str = "modules:\n  input: {module: test.input, arguments: {port: 1}}\n  rr: {module: test.flow}\n  a: {module: test.output}\n  b: {module: test.output}\nroutingtable:\n  - input.outbox -> rr.inbox\n  - rr.one -> a.inbox\n  - rr.two -> b.inbox\n";

    /// No module takes any argument while it runs.
    const NONE: fn(&ModuleDecl) -> &'static [&'static str] = |_| &[];

    #[test]
    fn only_live_arguments_changed_update_a_running_module() {
        let live = |decl: &ModuleDecl| -> &'static [&'static str] {
            if decl.kind == "test.input" {
                &["limit"]
            } else {
                &[]
            }
        };
        let before = TWO.replace("port: 1", "port: 1, limit: 5");
        let after = TWO.replace("port: 1", "port: 1, limit: 9");
        let plan = Plan::new(&bootstrap(&before), &bootstrap(&after), live);
        assert_eq!(plan.updated, ["input"]);
        assert!(plan.replaced.is_empty());
        assert!(!plan.is_empty());
        let both = TWO.replace("port: 1", "port: 2, limit: 9");
        let plan = Plan::new(&bootstrap(&before), &bootstrap(&both), live);
        assert_eq!(plan.replaced, ["input"], "a fixed argument changed too");
    }

    #[test]
    fn the_same_file_keeps_everything() {
        let plan = Plan::new(&bootstrap(TWO), &bootstrap(TWO), NONE);
        assert!(plan.is_empty());
        assert_eq!(plan.kept, ["input", "rr", "a", "b"]);
        assert!(plan.rewired.is_empty());
    }

    #[test]
    fn a_third_output_replaces_the_flow_feeding_it_and_keeps_the_rest() {
        let three = format!(
            "{}  c: {{module: test.output}}\nroutingtable:\n  - input.outbox -> rr.inbox\n  - rr.one -> a.inbox\n  - rr.two -> b.inbox\n  - rr.three -> c.inbox\n",
            TWO.split("routingtable").next().unwrap()
        );
        let plan = Plan::new(&bootstrap(TWO), &bootstrap(&three), NONE);
        assert_eq!(plan.kept, ["input", "a", "b"]);
        assert_eq!(plan.replaced, ["rr"]);
        assert_eq!(plan.started, ["c"]);
        assert!(plan.stopped.is_empty());
        assert!(plan.rewired.is_empty(), "no route of theirs changed");
        let back = Plan::new(&bootstrap(&three), &bootstrap(TWO), NONE);
        assert_eq!(
            (back.replaced, back.stopped),
            (vec!["rr".to_string()], vec!["c".to_string()])
        );
    }

    const ONE: &str = "modules:\n  input: {module: test.input, arguments: {port: 1}}\n  a: {module: test.output}\nroutingtable:\n  - input.outbox -> a.inbox\n";

    #[test]
    fn a_flow_put_in_front_of_an_output_rewires_both_ends_and_keeps_them() {
        let fanned = "modules:\n  input: {module: test.input, arguments: {port: 1}}\n  fan: {module: test.flow}\n  a: {module: test.output}\n  b: {module: test.output}\nroutingtable:\n  - input.outbox -> fan.inbox\n  - fan.one -> a.inbox\n  - fan.two -> b.inbox\n";
        let plan = Plan::new(&bootstrap(ONE), &bootstrap(fanned), NONE);
        assert_eq!(plan.kept, ["input", "a"]);
        assert_eq!(plan.rewired, ["input", "a"]);
        assert_eq!(plan.started, ["fan", "b"]);
        assert!(plan.replaced.is_empty() && plan.stopped.is_empty());
        let back = Plan::new(&bootstrap(fanned), &bootstrap(ONE), NONE);
        assert_eq!(back.rewired, ["input", "a"]);
        assert_eq!(back.stopped, ["fan", "b"]);
        let unrouted = "modules:\n  input: {module: test.input, arguments: {port: 1}}\n  a: {module: test.output}\nroutingtable: []\n";
        let plan = Plan::new(&bootstrap(ONE), &bootstrap(unrouted), NONE);
        assert_eq!(
            plan.replaced,
            ["input", "a"],
            "a queue connected or no longer is a change of the module"
        );
    }

    #[test]
    fn changed_arguments_or_route_order_replace_a_module() {
        let arguments = TWO.replace("port: 1", "port: 2");
        let plan = Plan::new(&bootstrap(TWO), &bootstrap(&arguments), NONE);
        assert_eq!(plan.replaced, ["input"]);
        let reordered = TWO.replace(
            "  - rr.one -> a.inbox\n  - rr.two -> b.inbox\n",
            "  - rr.two -> b.inbox\n  - rr.one -> a.inbox\n",
        );
        let plan = Plan::new(&bootstrap(TWO), &bootstrap(&reordered), NONE);
        assert_eq!(
            plan.replaced,
            ["rr"],
            "destinations follow the table's order"
        );
        assert_eq!(plan.kept, ["input", "a", "b"]);
    }
}
