//! The `hearth` binary. Thin: the command line lives in the library (`src/cli/`).

use std::process::ExitCode;

/// mimalloc instead of the system allocator: measured on the job-queue bench, glibc malloc
/// and free were a quarter of all CPU time (many small, short-lived allocations across
/// threads), which is mimalloc's strength. The library does not impose it on embedders.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    hearth::cli::main()
}
