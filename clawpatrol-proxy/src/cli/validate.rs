//! `clawpatrol validate <config>`.

use std::path::PathBuf;
use std::process::ExitCode;

use clawpatrol_core::Policy;

/// Arguments of `validate`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  clawpatrol validate policy.hcl\n  clawpatrol validate ./policies/   # every *.hcl in name order"
)]
pub struct Args {
    /// A config file, or a directory whose `*.hcl` files are merged in name order.
    config: PathBuf,
}

/// Loads and compiles; exit 0 when it loads, 2 on any error.
pub fn run(args: Args) -> ExitCode {
    match Policy::load(&args.config) {
        Ok(policy) => {
            for w in policy.warnings() {
                eprint!("{w}");
            }
            let c = policy.config();
            println!(
                "ok: {}: {} endpoint(s), {} rule(s), {} credential(s), {} profile(s)",
                args.config.display(),
                c.endpoints.len(),
                c.rules.len(),
                c.credentials.len(),
                c.profiles.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
