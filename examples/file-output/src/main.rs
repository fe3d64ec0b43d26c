//! A wishbone binary with one output of its own: every command of
//! `wishbone` over the builtin modules plus `example.output.file`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let modules = wishbone::builtin_set().with([wishbone_example_file_output::KIND]);
    wishbone::main_with(modules)
}
