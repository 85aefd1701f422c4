//! `clawpatrol-test`: the fixture runner alone, for CI images (no network code linked).

use clap::Parser;

/// Replay recorded fixtures against a Claw Patrol policy (same as `clawpatrol test`).
#[derive(Debug, Parser)]
#[command(name = "clawpatrol-test", version, about)]
struct Cli {
    #[command(flatten)]
    args: clawpatrol_test::cli::TestArgs,
}

fn main() -> std::process::ExitCode {
    clawpatrol_test::cli::run_test(&Cli::parse().args)
}
