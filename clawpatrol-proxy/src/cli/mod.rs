//! Subcommands of the `clawpatrol` binary.

mod eval;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// clawpatrol: a security firewall for AI agents.
///
/// Exit codes: 0 ok, 1 findings or mismatches, 2 usage or load errors.
#[derive(Debug, Parser)]
#[command(name = "clawpatrol", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load and compile a policy; print every error with file:line:col, and warnings.
    Validate(validate::Args),
    /// Decide one action (fixture `action` JSON) and print the decision with its trace.
    Eval(eval::Args),
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Validate(a) => validate::run(a),
        Command::Eval(a) => eval::run(a),
    }
}
