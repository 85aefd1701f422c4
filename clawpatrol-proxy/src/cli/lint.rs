//! `clawpatrol lint <config>`.

use std::path::PathBuf;
use std::process::ExitCode;

use clawpatrol_core::Policy;
use clawpatrol_test::lint::{lint, Level};

/// Arguments of `lint`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Findings: shadowed-rule, constant-condition, regex-never-matches (errors); \
no-catch-all, unbound-credential, unreached-endpoint, unused-approver (warnings).\n\
Exit codes: 0 no error-level finding, 1 at least one, 2 the config does not load.\n\n\
Example:\n  clawpatrol lint policy.hcl"
)]
pub struct Args {
    /// A config file or directory.
    config: PathBuf,
}

/// Prints every finding; exit 1 on any error-level finding.
pub fn run(args: Args) -> ExitCode {
    let policy = match Policy::load(&args.config) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let findings = lint(&policy);
    for f in &findings {
        println!("{f}\n");
    }
    let errors = findings.iter().filter(|f| f.level == Level::Error).count();
    println!(
        "{} finding(s): {errors} error(s), {} warning(s)",
        findings.len(),
        findings.len() - errors
    );
    if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
