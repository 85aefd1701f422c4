//! The `clawpatrol` command line.

use clap::Parser;

mod cli;
mod defaults;
mod state;
mod tls;

fn main() -> std::process::ExitCode {
    cli::run(cli::Cli::parse())
}
