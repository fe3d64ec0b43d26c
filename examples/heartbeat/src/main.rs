//! A wishbone binary with an input and a flow module of its own: every
//! command of `wishbone` over the builtin modules plus
//! `example.input.heartbeat` and `example.flow.sample`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let modules = wishbone::builtin_set().with([
        wishbone_example_heartbeat::heartbeat::KIND,
        wishbone_example_heartbeat::sample::KIND,
    ]);
    wishbone::main_with(modules)
}
