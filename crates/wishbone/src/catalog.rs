//! `list`, `show` and `check`: what this binary knows of module kinds and
//! bootstrap files.

use std::path::Path;
use std::process::ExitCode;

use wishbone_bootstrap::{LoadError, nearest};
use wishbone_runtime::{Loaded, ModuleSet};

use crate::EXIT_INVALID;
use crate::cli::{CheckOptions, ShowOptions};
use crate::logging::Format;

/// Loads and validates a bootstrap file (building each module once, to
/// check its arguments); on failure prints every problem to standard error
/// and gives the exit status.
pub fn load(path: &Path, modules: &ModuleSet) -> Result<Loaded, ExitCode> {
    load_as(path, modules, Format::Text)
}

/// [`load`], with the problems written as the logs are: with
/// `--log-format json`, one JSON object a problem (`place`, `problem`).
pub fn load_as(path: &Path, modules: &ModuleSet, format: Format) -> Result<Loaded, ExitCode> {
    wishbone_bootstrap::load(path, modules).map_err(|error| {
        match (format, error.problems()) {
            (Format::Json, []) => tracing::error!(config = %path.display(), %error, "cannot use the bootstrap file"),
            (Format::Json, problems) => {
                for problem in problems {
                    tracing::error!(config = %path.display(), place = %problem.place, problem = %problem.message, "invalid bootstrap file");
                }
            }
            (Format::Text, _) => {
                eprintln!("error: {error}");
                if let LoadError::Invalid { .. } = error {
                    eprintln!("(`wishbone list` shows every module kind; `wishbone show --docs KIND` its arguments)");
                }
            }
        }
        ExitCode::from(EXIT_INVALID)
    })
}

pub fn check(options: &CheckOptions, modules: &ModuleSet) -> ExitCode {
    match load(&options.config, modules) {
        Ok(Loaded { bootstrap, .. }) => {
            println!(
                "{} is valid: {} modules, {} routes",
                options.config.display(),
                bootstrap.modules.len(),
                bootstrap.routes.len()
            );
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

pub fn list(modules: &ModuleSet) -> ExitCode {
    let width = modules
        .kinds()
        .iter()
        .flat_map(|kind| std::iter::once(kind.name).chain(kind.aliases.iter().copied()))
        .map(str::len)
        .max()
        .unwrap_or(0);
    println!("{:width$}  DESCRIPTION", "KIND");
    for kind in modules.kinds() {
        println!("{:width$}  {}", kind.name, kind.description);
        for alias in kind.aliases {
            println!("{:width$}  (older name of {})", alias, kind.name);
        }
    }
    ExitCode::SUCCESS
}

pub fn show(options: &ShowOptions, modules: &ModuleSet) -> ExitCode {
    match modules.find(&options.docs) {
        Some(kind) => {
            print!("{}", kind.docs);
            println!(
                "\nEvery module also has the queues `failed` and `success`; what a module\nputs on one no route connects is dropped and counted. Log records go to\nstandard error, metrics to the metrics recorder (there are no `logs` or\n`metrics` queues)."
            );
            if !kind.aliases.is_empty() {
                println!("\nAlso accepted as: {}", kind.aliases.join(", "));
            }
            ExitCode::SUCCESS
        }
        None => {
            let names = modules
                .kinds()
                .iter()
                .flat_map(|kind| std::iter::once(kind.name).chain(kind.aliases.iter().copied()));
            let hint = nearest(&options.docs, names)
                .map(|name| format!("; did you mean `{name}`?"))
                .unwrap_or_default();
            eprintln!(
                "error: unknown module kind `{}`{hint} (`wishbone list` shows every kind)",
                options.docs
            );
            ExitCode::from(EXIT_INVALID)
        }
    }
}
