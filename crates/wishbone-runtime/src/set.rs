use std::sync::{Arc, Mutex};

use wishbone_bootstrap::{ArgumentError, Arguments, Catalog};
use wishbone_event::QueueSpec;

use crate::{Module, ModuleKind};

/// The kinds of module one binary offers, and the modules validation
/// built: each module of a process is built once, when its bootstrap is
/// checked, and that same module is the one that runs.
#[derive(Clone, Debug, Default)]
pub struct ModuleSet {
    kinds: Vec<ModuleKind>,
    built: Built,
}

/// A module built, with its kind and the arguments it was built from.
type BuiltModule = (&'static str, Arguments, Box<dyn Module>);

/// Modules built and not yet taken. Clones of a set share them.
#[derive(Clone, Default)]
struct Built(Arc<Mutex<Vec<BuiltModule>>>);

impl std::fmt::Debug for Built {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.0.lock().map_or(0, |built| built.len());
        write!(formatter, "{count} modules built")
    }
}

impl ModuleSet {
    /// A set of these kinds.
    pub fn new(kinds: Vec<ModuleKind>) -> Self {
        Self {
            kinds,
            built: Built::default(),
        }
    }

    /// The module of kind `kind` with these arguments: the one validation
    /// built, if it did, else built now.
    pub fn build(
        &self,
        kind: &str,
        arguments: &Arguments,
    ) -> Result<Box<dyn Module>, ArgumentError> {
        let kind = self
            .find(kind)
            .ok_or_else(|| ArgumentError::new(format!("unknown module kind `{kind}`")))?;
        let mut built = self
            .built
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let cached = built
            .iter()
            .position(|(name, given, _)| *name == kind.name && given == arguments);
        match cached {
            Some(index) => Ok(built.swap_remove(index).2),
            None => (kind.build)(arguments),
        }
    }

    /// Asks `look` about the module of kind `kind` with these arguments,
    /// building it (once) if validation did not.
    pub fn inspect<R>(
        &self,
        kind: &str,
        arguments: &Arguments,
        look: impl FnOnce(&dyn Module) -> R,
    ) -> Result<R, ArgumentError> {
        let module = self.build(kind, arguments)?;
        let answer = look(module.as_ref());
        self.keep(kind, arguments, module);
        Ok(answer)
    }

    /// Keeps a module built for these arguments, for [`ModuleSet::build`].
    fn keep(&self, kind: &str, arguments: &Arguments, module: Box<dyn Module>) {
        if let Some(kind) = self.find(kind) {
            let mut built = self
                .built
                .0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            built.push((kind.name, arguments.clone(), module));
        }
    }

    /// Drops the modules validation built and nobody took: after a reload,
    /// the new file's modules that were kept running instead.
    pub fn forget_built(&self) {
        self.built
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }

    /// Adds more kinds, a user's own next to the builtin ones.
    pub fn with(mut self, kinds: impl IntoIterator<Item = ModuleKind>) -> Self {
        self.kinds.extend(kinds);
        self
    }

    /// Every kind, in the order given.
    pub fn kinds(&self) -> &[ModuleKind] {
        &self.kinds
    }

    /// The kind known by this name or one of its older names.
    pub fn find(&self, name: &str) -> Option<&ModuleKind> {
        self.kinds
            .iter()
            .find(|kind| kind.name == name || kind.aliases.contains(&name))
    }
}

impl Catalog for ModuleSet {
    fn resolve(&self, kind: &str) -> Option<&'static str> {
        self.find(kind).map(|kind| kind.name)
    }

    fn kind_names(&self) -> Vec<&'static str> {
        self.kinds
            .iter()
            .flat_map(|kind| std::iter::once(kind.name).chain(kind.aliases.iter().copied()))
            .collect()
    }

    fn queues(&self, kind: &str) -> Option<QueueSpec> {
        self.find(kind).map(|kind| kind.queues)
    }

    fn outgoing_queues(&self, kind: &str, arguments: &Arguments) -> Option<Vec<String>> {
        self.inspect(kind, arguments, |module| module.outgoing_queues())
            .ok()
            .flatten()
    }

    fn check_arguments(&self, kind: &str, arguments: &Arguments) -> Result<(), ArgumentError> {
        let module = match self.find(kind) {
            Some(found) => (found.build)(arguments)?,
            None => return Err(ArgumentError::new(format!("unknown module kind `{kind}`"))),
        };
        self.keep(kind, arguments, module);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::future::LocalBoxFuture;

    use super::*;
    use crate::{ModuleContext, ModuleError};

    static BUILDS: AtomicUsize = AtomicUsize::new(0);

    struct Counting;

    impl Module for Counting {
        fn run(
            self: Box<Self>,
            _: ModuleContext,
        ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
            Box::pin(async { Ok(()) })
        }

        fn listens(&self) -> Option<crate::ListenAddress> {
            None
        }
    }

    fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
        let config: std::collections::BTreeMap<String, u64> = arguments.deserialize()?;
        if !config.contains_key("n") {
            return Err(ArgumentError::field("n", "is required"));
        }
        BUILDS.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(Counting))
    }

    #[test]
    fn a_module_checked_by_validation_is_the_one_that_runs() {
        let set = ModuleSet::new(vec![ModuleKind {
            name: "test.counting",
            aliases: &["test.older"],
            description: "",
            docs: "",
            queues: QueueSpec::SINK,
            build,
        }]);
        let one = Arguments::from_yaml("{n: 1}").unwrap();
        let two = Arguments::from_yaml("{n: 2}").unwrap();
        set.check_arguments("test.older", &one).unwrap();
        set.check_arguments("test.counting", &one).unwrap();
        set.check_arguments("test.counting", &two).unwrap();
        assert!(
            set.check_arguments("test.counting", &Arguments::default())
                .is_err()
        );
        assert_eq!(
            BUILDS.load(Ordering::SeqCst),
            3,
            "validation builds each module once"
        );
        assert_eq!(
            set.inspect("test.counting", &two, |module| module.listens())
                .unwrap(),
            None
        );
        for arguments in [&one, &two, &one] {
            set.build("test.counting", arguments).unwrap();
        }
        assert_eq!(
            BUILDS.load(Ordering::SeqCst),
            3,
            "running builds none again"
        );
        set.build("test.counting", &two).unwrap();
        assert_eq!(
            BUILDS.load(Ordering::SeqCst),
            4,
            "a module not checked is built"
        );
    }
}
