//! The order modules start in: downstream first, so an output is ready
//! before anything can send to it, and inputs last; and which modules are
//! joined by routes, so as to run on one thread.

use std::collections::HashMap;

/// Orders `modules` so that for every `(from, to)` link, `to` comes before
/// `from`. Cycles (a failed queue routed back upstream) are broken where
/// they are met; every module appears once.
pub(crate) fn downstream_first<'a>(
    modules: &[&'a str],
    links: &[(&'a str, &'a str)],
) -> Vec<&'a str> {
    let mut next: HashMap<&str, Vec<&str>> = HashMap::new();
    for (from, to) in links {
        next.entry(from).or_default().push(to);
    }
    let mut state: HashMap<&str, bool> = HashMap::new(); // false: visiting, true: done
    let mut order = Vec::with_capacity(modules.len());
    for module in modules {
        visit(module, &next, &mut state, &mut order);
    }
    order
}

/// For each module, the first module (in `modules`' order) of the
/// modules joined to it by links, in either direction: one name for every
/// pipeline of the file.
pub(crate) fn components<'a>(
    modules: &[&'a str],
    links: &[(&'a str, &'a str)],
) -> HashMap<&'a str, &'a str> {
    let mut first: HashMap<&str, &str> = modules.iter().map(|module| (*module, *module)).collect();
    // Merges until nothing changes: files hold tens of modules.
    let mut changed = true;
    while changed {
        changed = false;
        for (from, to) in links {
            let (Some(&a), Some(&b)) = (first.get(from), first.get(to)) else {
                continue;
            };
            if a == b {
                continue;
            }
            let rank = |name: &str| modules.iter().position(|module| *module == name);
            let (keep, gone) = if rank(a) <= rank(b) { (a, b) } else { (b, a) };
            first
                .values_mut()
                .filter(|name| **name == gone)
                .for_each(|name| *name = keep);
            changed = true;
        }
    }
    first
}

fn visit<'a>(
    module: &'a str,
    next: &HashMap<&'a str, Vec<&'a str>>,
    state: &mut HashMap<&'a str, bool>,
    order: &mut Vec<&'a str>,
) {
    if state.contains_key(module) {
        return;
    }
    state.insert(module, false);
    for to in next.get(module).into_iter().flatten() {
        visit(to, next, state, order);
    }
    state.insert(module, true);
    order.push(module);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_come_before_what_feeds_them() {
        let order = downstream_first(
            &["input", "roundrobin", "output_1", "output_2", "funnel"],
            &[
                ("input", "roundrobin"),
                ("roundrobin", "funnel"),
                ("roundrobin", "output_2"),
                ("output_2", "funnel"),
                ("funnel", "output_1"),
            ],
        );
        let at = |name| order.iter().position(|m| *m == name).unwrap();
        assert!(at("output_1") < at("funnel") && at("funnel") < at("output_2"));
        assert!(at("output_2") < at("roundrobin") && at("roundrobin") < at("input"));
        assert_eq!(order.len(), 5);
    }

    #[test]
    fn modules_joined_by_routes_share_the_first_ones_name() {
        let modules = ["metrics", "in_b", "out_a", "in_a", "rr", "out_b", "carbon"];
        let parts = components(
            &modules,
            &[
                ("in_a", "out_a"),
                ("in_b", "rr"),
                ("rr", "out_b"),
                ("metrics", "carbon"),
            ],
        );
        let of = |name| parts[name];
        assert_eq!([of("in_b"), of("rr"), of("out_b")], ["in_b"; 3]);
        assert_eq!([of("in_a"), of("out_a")], ["out_a"; 2]);
        assert_eq!([of("metrics"), of("carbon")], ["metrics"; 2]);
        let alone = components(&["a", "b"], &[]);
        assert_eq!((alone["a"], alone["b"]), ("a", "b"));
    }

    #[test]
    fn a_cycle_still_lists_every_module_once() {
        let order = downstream_first(&["a", "b"], &[("a", "b"), ("b", "a")]);
        assert_eq!(order.len(), 2);
    }
}
