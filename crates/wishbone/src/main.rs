use std::process::ExitCode;

fn main() -> ExitCode {
    wishbone::main_with(wishbone::builtin_set())
}
