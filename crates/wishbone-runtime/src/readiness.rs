//! Whether a server is ready for traffic: every module started, and every
//! output connected to its peer at least once. The operator listener's
//! `/ready` answers from it; modules report through
//! [`ModuleContext::readiness`](crate::ModuleContext::readiness).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// What each running module said of itself: nothing (ready), or why not.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<Mutex<BTreeMap<String, Option<String>>>>);

const NOT_STARTED: &str = "not started yet";

impl Readiness {
    fn with<T>(&self, change: impl FnOnce(&mut BTreeMap<String, Option<String>>) -> T) -> T {
        change(
            &mut self
                .0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    /// A module is about to start.
    pub(crate) fn starting(&self, module: &str) {
        self.with(|modules| modules.insert(module.to_string(), Some(NOT_STARTED.into())));
    }

    /// A module runs: ready, unless it says otherwise from then on.
    pub(crate) fn started(&self, module: &str) {
        self.with(|modules| {
            if let Some(state) = modules.get_mut(module)
                && state.as_deref() == Some(NOT_STARTED)
            {
                *state = None;
            }
        });
    }

    /// A module stopped, for good or to be replaced.
    pub(crate) fn remove(&self, module: &str) {
        self.with(|modules| modules.remove(module));
    }

    /// Why the server is not ready: one reason per module that is not, in
    /// name order; empty when it is. None before any module was started.
    pub fn reasons(&self) -> Option<Vec<String>> {
        self.with(|modules| {
            if modules.is_empty() {
                return None;
            }
            Some(
                modules
                    .iter()
                    .filter_map(|(name, state)| {
                        Some(format!("module `{name}`: {}", state.as_ref()?))
                    })
                    .collect(),
            )
        })
    }
}

/// One module's say in [`Readiness`].
#[derive(Clone, Debug)]
pub struct ModuleReadiness {
    module: String,
    readiness: Readiness,
}

impl ModuleReadiness {
    pub(crate) fn new(module: &str, readiness: Readiness) -> Self {
        Self {
            module: module.to_string(),
            readiness,
        }
    }

    /// Not ready, for this reason (an output before its first
    /// connection).
    pub fn waiting(&self, reason: &str) {
        self.readiness.with(|modules| {
            if let Some(state) = modules.get_mut(&self.module) {
                *state = Some(reason.to_string());
            }
        });
    }

    /// Ready.
    pub fn ready(&self) {
        self.readiness.with(|modules| {
            if let Some(state) = modules.get_mut(&self.module) {
                *state = None;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_once_every_module_started_and_none_waits() {
        let readiness = Readiness::default();
        assert_eq!(readiness.reasons(), None, "nothing started");
        readiness.starting("input");
        readiness.starting("output");
        assert_eq!(readiness.reasons().unwrap().len(), 2);
        readiness.started("input");
        let output = ModuleReadiness::new("output", readiness.clone());
        output.waiting("not connected yet");
        readiness.started("output");
        assert_eq!(
            readiness.reasons().unwrap(),
            ["module `output`: not connected yet"],
            "started, but waiting for its peer"
        );
        output.ready();
        assert_eq!(readiness.reasons(), Some(vec![]));
        readiness.remove("output");
        output.waiting("gone");
        assert_eq!(
            readiness.reasons(),
            Some(vec![]),
            "a stopped module says nothing"
        );
    }
}
