use std::process::ExitCode;

/// Events are made on one thread and freed on another once modules run on
/// several (`--threads`); mimalloc frees across threads without the arena
/// locks of the system allocator, and spends less per allocation on one
/// thread too (`docs/performance.md`). Its `MIMALLOC_*` variables apply
/// (`docs/operations.md`, "Memory").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Returns mimalloc's free pages to the system (after a burst of sessions).
fn give_back() {
    // SAFETY: mi_collect only walks mimalloc's own heaps.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

fn main() -> ExitCode {
    wishbone_runtime::memory::set_give_back(give_back);
    wishbone::main_with(wishbone::builtin_set())
}
