//! The `clawpatrol` command line.

use clap::Parser;

mod cli;
// TEMPORARY: the gateway does not use the store yet; remove this attribute when it does.
#[cfg_attr(not(test), allow(dead_code))]
mod secrets;

fn main() -> std::process::ExitCode {
    cli::run(cli::Cli::parse())
}
