//! Subcommands of the `clawpatrol` binary.

mod approvals;
mod audit;
mod ca;
mod diff;
mod env;
mod eval;
mod gateway;
mod lint;
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
    /// Replay recorded fixtures against a policy and report mismatches.
    Test(clawpatrol_test::cli::TestArgs),
    /// Static analysis: unreachable rules, constant conditions, unused declarations, …
    Lint(lint::Args),
    /// Run the gateway: intercept agent traffic, decide, inject credentials, audit.
    Gateway(gateway::Args),
    /// Replay fixtures against two versions of a policy and list changed decisions.
    Diff(diff::Args),
    /// Print the gateway CA (path, fingerprint, PEM), creating it if missing.
    Ca(ca::Args),
    /// Print the `export` lines an agent needs: proxy with token, CA bundle, placeholders.
    Env(env::Args),
    /// Decide actions parked for a human: list, show, approve, deny.
    Approvals(approvals::Args),
    /// Read the gateway's audit log: tail, show a row, export fixtures, verify the hash chain.
    Audit(audit::Args),
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Validate(a) => validate::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Test(a) => clawpatrol_test::cli::run_test(&a),
        Command::Lint(a) => lint::run(a),
        Command::Diff(a) => diff::run(a),
        Command::Gateway(a) => gateway::run(a),
        Command::Ca(a) => ca::run(a),
        Command::Env(a) => env::run(a),
        Command::Audit(a) => audit::run(a),
        Command::Approvals(a) => approvals::run(a),
    }
}

/// Sends `tracing` events to standard error (level from `RUST_LOG`, default `warn`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Another subscriber may already be installed; keep it.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter)
        .with_target(false)
        .without_time()
        .try_init();
}
