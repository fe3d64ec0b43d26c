use std::process::ExitCode;

fn main() -> ExitCode {
    wishbone::main_with(wishbone_modules::builtin_set())
}
