//! `clawpatrol diff <old config> <new config> <fixtures>`.

use std::path::PathBuf;
use std::process::ExitCode;

use clawpatrol_core::Policy;
use clawpatrol_test::diff::diff;
use clawpatrol_test::discover::fixture_files;

/// Arguments of `diff`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 no decision changes, 1 some change, 2 usage or load errors.\n\n\
Example:\n  git show HEAD:policy.hcl > /tmp/old.hcl\n  clawpatrol diff /tmp/old.hcl policy.hcl fixtures/"
)]
pub struct Args {
    /// The policy before the change.
    old: PathBuf,
    /// The policy after the change.
    new: PathBuf,
    /// A fixture file or directory whose actions are replayed against both.
    fixtures: PathBuf,
    /// Also read fixtures in subdirectories.
    #[arg(short = 'r', long)]
    recursive: bool,
}

/// Lists changed decisions grouped by endpoint; exit 1 when anything changed.
pub fn run(args: Args) -> ExitCode {
    let load = |p: &PathBuf| {
        Policy::load(p).map_err(|e| {
            eprintln!("load config {}: {e}", p.display());
        })
    };
    let (Ok(old), Ok(new)) = (load(&args.old), load(&args.new)) else {
        return ExitCode::from(2);
    };
    let files = match fixture_files(&args.fixtures, args.recursive) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let report = diff(&old, &new, &files);
    print!("{}", report.text());
    if report.changed() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
