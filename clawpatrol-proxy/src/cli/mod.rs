//! Subcommands of the `clawpatrol` binary.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// clawpatrol: a security firewall for AI agents.
#[derive(Debug, Parser)]
#[command(name = "clawpatrol", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {}
}
