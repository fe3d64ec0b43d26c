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

/// Faults this process's memory in 4 KiB pages: mimalloc asks for
/// transparent huge pages, and the kernel then zeroes 2 MiB at each first
/// touch, again after each purge (without them a central server taking
/// a million messages over TCP used a sixth less CPU;
/// `docs/performance.md`).
fn without_huge_pages() {
    // SAFETY: prctl with PR_SET_THP_DISABLE only sets a flag of this
    // process; a kernel without it returns an error, which changes nothing.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

fn main() -> ExitCode {
    without_huge_pages();
    wishbone_runtime::memory::set_give_back(give_back);
    wishbone::main_with(wishbone::builtin_set())
}
