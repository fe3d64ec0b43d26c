//! A wishbone binary with one module of its own: every command of
//! `wishbone` (debug, start, stop, list, show, check) over the builtin
//! modules plus `example.uppercase`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let modules = wishbone::builtin_set().with([wishbone_example_uppercase::KIND]);
    wishbone::main_with(modules)
}
