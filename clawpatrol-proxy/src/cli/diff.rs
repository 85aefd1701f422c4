//! `clawpatrol diff <old config> <new config> <fixtures | audit database>`.

use std::path::PathBuf;
use std::process::ExitCode;

use clawpatrol_core::audit::to_fixture;
use clawpatrol_core::Policy;
use clawpatrol_test::diff::{diff, diff_fixtures, DiffReport};
use clawpatrol_test::discover::fixture_files;
use clawpatrol_test::Fixture;

use crate::audit::store::is_sqlite_file;
use crate::audit::AuditStore;

/// Arguments of `diff`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 no decision changes, 1 some change, 2 usage or load errors.\n\n\
The third argument may also be the gateway's audit database (`<state dir>/clawpatrol.db`): \
every replayable row is turned into a fixture (as `clawpatrol audit export` does) and replayed.\n\n\
Examples:\n  git show HEAD:policy.hcl > /tmp/old.hcl\n  clawpatrol diff /tmp/old.hcl policy.hcl fixtures/\n  \
clawpatrol diff /tmp/old.hcl policy.hcl ~/.clawpatrol/clawpatrol.db"
)]
pub struct Args {
    /// The policy before the change.
    old: PathBuf,
    /// The policy after the change.
    new: PathBuf,
    /// A fixture file or directory, or an audit database, whose actions are replayed against
    /// both.
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
    let report = if is_sqlite_file(&args.fixtures) {
        match audit_diff(&old, &new, &args.fixtures) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        }
    } else {
        let files = match fixture_files(&args.fixtures, args.recursive) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        };
        diff(&old, &new, &files)
    };
    print!("{}", report.text());
    if report.changed() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Replays every exportable row of an audit database against both policies.
fn audit_diff(old: &Policy, new: &Policy, db: &std::path::Path) -> Result<DiffReport, String> {
    let store = AuditStore::open_existing(db).map_err(|e| e.to_string())?;
    let mut fixtures = Vec::new();
    let mut skipped = 0usize;
    store
        .scan_since(i64::MIN, |rec| {
            match to_fixture(&rec) {
                Ok(e) => {
                    let label = format!("audit row {} ({})", rec.id, rec.action_id);
                    let text = e.fixture.to_string();
                    fixtures.push((label, Fixture::parse(&text).map_err(|e| e.0)));
                }
                Err(_) => skipped += 1,
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
    if skipped > 0 {
        eprintln!("{skipped} audit row(s) are not replayable policy decisions and were skipped");
    }
    Ok(diff_fixtures(old, new, fixtures))
}
