//! The `clawpatrol` command line.

use clap::Parser;

/// mimalloc instead of the system allocator: the gateway allocates per statement and per
/// request from several threads, and glibc malloc showed up at ~10 % of its CPU under pgbench.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    clawpatrol_proxy::cli::run(clawpatrol_proxy::cli::Cli::parse())
}
