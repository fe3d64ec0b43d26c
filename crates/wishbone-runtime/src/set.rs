use wishbone_bootstrap::{ArgumentError, Arguments, Catalog};
use wishbone_event::QueueSpec;

use crate::{Module, ModuleKind};

/// The kinds of module one binary offers. As the [`Catalog`] of
/// validation it builds each module of a file once, to check its
/// arguments; validation hands the modules built back with the file
/// ([`wishbone_bootstrap::Validated`]), and those are the ones that run.
#[derive(Clone, Debug, Default)]
pub struct ModuleSet {
    kinds: Vec<ModuleKind>,
}

impl ModuleSet {
    /// A set of these kinds.
    pub fn new(kinds: Vec<ModuleKind>) -> Self {
        Self { kinds }
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
    type Built = Box<dyn Module>;

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

    fn build(&self, kind: &str, arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
        match self.find(kind) {
            Some(found) => (found.build)(arguments),
            None => Err(ArgumentError::new(format!("unknown module kind `{kind}`"))),
        }
    }

    fn outgoing_queues(&self, built: &Box<dyn Module>) -> Option<Vec<String>> {
        built.outgoing_queues()
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
    fn validation_builds_each_module_once_and_hands_it_back() {
        let set = ModuleSet::new(vec![ModuleKind {
            name: "test.counting",
            aliases: &["test.older"],
            description: "",
            docs: "",
            queues: QueueSpec::SINK,
            build,
        }]);
        let text = "modules:\n  a: {module: test.older, arguments: {n: 1}}\n  \
                    b: {module: test.counting, arguments: {n: 2}}\nroutingtable: []\n";
        let validated =
            wishbone_bootstrap::validate(std::path::Path::new("t.yaml"), text, &set).unwrap();
        assert_eq!(BUILDS.load(Ordering::SeqCst), 2, "one build a module");
        let mut names: Vec<&String> = validated.built.keys().collect();
        names.sort();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(validated.built["b"].listens(), None);
        let wrong = "modules:\n  a: {module: test.counting}\nroutingtable: []\n";
        assert!(wishbone_bootstrap::validate(std::path::Path::new("t.yaml"), wrong, &set).is_err());
        assert_eq!(
            BUILDS.load(Ordering::SeqCst),
            2,
            "arguments refused build nothing"
        );
    }
}
