//! The `wishbone` command. [`main_with`] runs it over any set of module
//! kinds, so a binary that adds its own modules to the builtin ones offers
//! the same commands:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     wishbone::main_with(wishbone::builtin_set())
//! }
//! ```

mod builtin;
mod carbon;
mod catalog;
mod cli;
mod instances;
mod logging;
mod pidfile;
mod run;
mod stop;
mod tap;
mod testing;

use std::process::ExitCode;

use clap::Parser;
use wishbone_runtime::ModuleSet;

pub use builtin::{builtin, builtin_set};
pub use cli::Cli;

/// Exit status for a bootstrap file or command line that cannot be used.
pub const EXIT_INVALID: u8 = 2;
/// Exit status for a server that failed or was aborted with events undelivered.
pub const EXIT_FAILED: u8 = 1;

/// Parses the command line and runs the command over these module kinds.
pub fn main_with(modules: ModuleSet) -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        cli::Command::Debug(options) => run::debug(&options, &modules),
        cli::Command::Start(options) => run::start(&options, &modules),
        cli::Command::Stop(options) => stop::stop(&options),
        cli::Command::Reload(options) => stop::reload(&options),
        cli::Command::List => catalog::list(&modules),
        cli::Command::Show(options) => catalog::show(&options, &modules),
        cli::Command::Check(options) => catalog::check(&options, &modules),
        cli::Command::Tap(options) => tap::tap(&options),
        cli::Command::Test(options) => testing::test(&options, &modules),
    }
}
