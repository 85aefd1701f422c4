//! The `clawpatrol` command line.

use clap::Parser;

fn main() -> std::process::ExitCode {
    clawpatrol_proxy::cli::run(clawpatrol_proxy::cli::Cli::parse())
}
