use wishbone_bootstrap::{ArgumentError, Arguments, Catalog};
use wishbone_event::QueueSpec;

use crate::ModuleKind;

/// The kinds of module one binary offers.
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

    fn check_arguments(&self, kind: &str, arguments: &Arguments) -> Result<(), ArgumentError> {
        match self.find(kind) {
            Some(kind) => (kind.build)(arguments).map(drop),
            None => Err(ArgumentError::new(format!("unknown module kind `{kind}`"))),
        }
    }
}
