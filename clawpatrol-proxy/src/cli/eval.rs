//! `clawpatrol eval <config> [--action FILE|-]`.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clawpatrol_core::{Action, Policy};

/// Arguments of `eval`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  echo '{\"host\":\"api.github.com\",\"http\":{\"method\":\"DELETE\",\"path\":\"/repos/a/b\"}}' \\\n    | clawpatrol eval policy.hcl\n  clawpatrol eval policy.hcl --action action.json"
)]
pub struct Args {
    /// A config file or directory.
    config: PathBuf,
    /// The action JSON (the fixture `action` object); `-` or absent reads standard input.
    #[arg(long, value_name = "FILE|-")]
    action: Option<String>,
}

/// Decides the action and prints the decision JSON; exit 2 on load or input errors.
pub fn run(args: Args) -> ExitCode {
    let policy = match Policy::load(&args.config) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let text = match args.action.as_deref() {
        None | Some("-") => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).map(|_| s)
        }
        Some(path) => std::fs::read_to_string(path),
    };
    let text = match text {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read the action: {e}");
            return ExitCode::from(2);
        }
    };
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: the action is not JSON: {e}");
            return ExitCode::from(2);
        }
    };
    let action = match Action::from_json(&value) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let decision = policy.decide_traced(&action);
    match serde_json::to_string_pretty(&decision.to_json()) {
        Ok(s) => {
            println!("{s}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
