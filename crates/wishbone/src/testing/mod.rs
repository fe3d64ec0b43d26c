//! `wishbone test`: runs a suite of cases against a bootstrap's processing
//! and flow modules, without its inputs and outputs, and reports each
//! case's differences.

mod compare;
mod harness;

use std::process::ExitCode;

use wishbone_bootstrap::{Case, load_suite};
use wishbone_runtime::ModuleSet;

use crate::cli::TestOptions;
use crate::{EXIT_FAILED, EXIT_INVALID, catalog};

/// Runs the command: exit 0 when every case passes, 1 when one fails, 2
/// for a file that cannot be used.
pub fn test(options: &TestOptions, modules: &ModuleSet) -> ExitCode {
    // Each case runs modules of its own, built for it.
    let bootstrap = match catalog::load(&options.config, modules) {
        Ok(loaded) => loaded.bootstrap,
        Err(code) => return code,
    };
    let suite = match load_suite(&options.tests) {
        Ok(suite) => suite,
        Err(problem) => {
            eprintln!("error: {problem}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    for case in &suite.tests {
        if let Err(problem) = harness::check_input(&bootstrap, modules, &case.input.queue) {
            eprintln!("error: test `{}`: input: {problem}", case.name);
            return ExitCode::from(EXIT_INVALID);
        }
    }
    let system = actix_rt::System::new();
    let failed = system.block_on(async {
        let mut failed = 0;
        for case in &suite.tests {
            match run_case(&bootstrap, modules, case).await {
                Ok(()) => println!("ok      {}", case.name),
                Err(differences) => {
                    failed += 1;
                    println!("FAILED  {}\n{differences}", case.name);
                }
            }
        }
        failed
    });
    let total = suite.tests.len();
    println!("{} of {total} tests passed", total - failed);
    match failed {
        0 => ExitCode::SUCCESS,
        _ => ExitCode::from(EXIT_FAILED),
    }
}

/// One case: the differences, indented, when it fails.
async fn run_case(
    bootstrap: &wishbone_bootstrap::Bootstrap,
    modules: &ModuleSet,
    case: &Case,
) -> Result<(), String> {
    let recorded = harness::run(bootstrap, modules, &case.input.queue, &case.input.events)
        .await
        .map_err(|problem| format!("    {problem}"))?;
    let differences: Vec<String> = case
        .expect
        .iter()
        .filter_map(|expectation| {
            let got = recorded
                .get(&expectation.queue)
                .map(Vec::as_slice)
                .unwrap_or_default();
            compare::difference(expectation, got)
        })
        .map(|difference| format!("    {difference}"))
        .collect();
    match differences.is_empty() {
        true => Ok(()),
        false => Err(differences.join("\n")),
    }
}
