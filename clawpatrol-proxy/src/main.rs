//! The `clawpatrol` command line.

use clap::Parser;

// The audit store and writer are API for the gateway's request loop; parts of them are used
// only by tests until the gateway calls them.
#[allow(dead_code, unused_imports)]
mod audit;
mod cli;

fn main() -> std::process::ExitCode {
    cli::run(cli::Cli::parse())
}
