//! The `test` command line, shared by `clawpatrol test` and the standalone `clawpatrol-test`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clawpatrol_core::Policy;

use crate::coverage::Coverage;
use crate::discover::fixture_files;
use crate::report;
use crate::runner::replay_files;

/// Output format of `test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The reference's text lines (`ok   path`, `FAIL path`, summary).
    Text,
    /// One JSON object per fixture, then a summary object (always on stdout).
    Json,
}

/// Arguments of `test`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Exit codes: 0 every fixture matched (report on stdout); 1 a mismatch or a \
broken fixture (whole report on stderr); 2 usage, config or fixture-path errors.\n\n\
Examples:\n  clawpatrol test policy.hcl fixtures/\n  clawpatrol test -r --coverage policy.hcl fixtures/\n  \
clawpatrol test --explain policy.hcl fixtures/github/delete-repo.json\n  \
clawpatrol test --format json policy.hcl fixtures/ | jq ."
)]
pub struct TestArgs {
    /// A config file, or a directory whose `*.hcl` files are merged in name order.
    pub config: PathBuf,
    /// A fixture file, or a directory of `*.json` fixtures.
    pub fixtures: PathBuf,
    /// Also replay fixtures in subdirectories.
    #[arg(short = 'r', long)]
    pub recursive: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// After the report, list per endpoint the rules no fixture exercised and the endpoints
    /// no fixture reached.
    #[arg(long)]
    pub coverage: bool,
    /// For each failure, show every rule evaluated in order and its result.
    #[arg(long)]
    pub explain: bool,
}

/// Runs `test` and returns its exit code.
pub fn run_test(args: &TestArgs) -> ExitCode {
    let policy = match Policy::load(&args.config) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("load config: {e}");
            return ExitCode::from(2);
        }
    };
    let files = match fixture_files(&args.fixtures, args.recursive) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let results = replay_files(&policy, &files);
    let failed = results.iter().any(|r| r.outcome.failed());
    let coverage = args.coverage.then(|| Coverage::compute(&policy, &results));
    match args.format {
        Format::Json => {
            let mut out = report::json_lines(&results, args.explain);
            if let Some(c) = &coverage {
                out.push_str(&c.json().to_string());
                out.push('\n');
            }
            write_all(std::io::stdout(), &out);
        }
        Format::Text => {
            let mut out = report::text(&results, args.explain);
            if let Some(c) = &coverage {
                out.push_str(&c.text());
            }
            if failed {
                write_all(std::io::stderr(), &out);
            } else {
                write_all(std::io::stdout(), &out);
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn write_all(mut w: impl Write, s: &str) {
    // A closed pipe (e.g. `| head`) is not an error worth a panic.
    let _ = w.write_all(s.as_bytes());
    let _ = w.flush();
}
