//! Names of the counters modules record through the `metrics` facade.

/// `module.<module>.<counter>`. A bootstrap's module names hold only
/// letters, digits, `_` and `-`, so they never add a path segment.
pub(crate) fn module_counter(module: &str, counter: &str) -> String {
    format!("module.{module}.{counter}")
}
