//! `clawpatrol audit {tail,show,export,verify}`: read the gateway's audit database.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clawpatrol_core::audit::{to_fixture, AuditRecord};

use crate::audit::store::now_ns;
use crate::audit::time::{format_ts, parse_since};
use crate::audit::{AuditError, AuditStore};

/// Arguments of `audit`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The database is <state dir>/clawpatrol.db; the state directory is --state-dir, \
else $HOME/.clawpatrol. It is never created by these commands.\n\
Exit codes: 0 ok, 1 findings (a broken chain, an unknown row), 2 usage or load errors.\n\n\
Examples:\n  clawpatrol audit tail -n 50\n  clawpatrol audit --state-dir /var/lib/clawpatrol verify\n  \
clawpatrol audit export --fixtures fixtures/recorded --since 24h"
)]
pub struct Args {
    /// The audit database file.
    #[arg(long, global = true, value_name = "PATH")]
    db: Option<PathBuf>,
    /// The gateway state directory holding `clawpatrol.db` [default: $HOME/.clawpatrol].
    #[arg(long, global = true, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Print the latest rows, one line each (time, outcome, endpoint, method, target, rule,
    /// reason).
    #[command(after_help = "Examples:\n  clawpatrol audit tail\n  \
clawpatrol audit tail -n 100 --json | jq .\n  clawpatrol audit tail --follow")]
    Tail(TailArgs),
    /// Print one row as pretty JSON, by row id or action id.
    #[command(after_help = "Exit codes: 0 found, 1 no such row, 2 load errors.\n\n\
Examples:\n  clawpatrol audit show 42\n  clawpatrol audit show 0190f3c2-7a5e-7c31-9b1e-5d0c2f6e8a11")]
    Show(ShowArgs),
    /// Write one `clawpatrol test` fixture per replayable row (`<action_id>.json`).
    #[command(
        after_help = "Rows that are not policy decisions (errors, splices) or that no \
endpoint claimed are skipped and summarised. The fixtures carry the row's credential name, \
so credential-pinned rules replay.\n\n\
Examples:\n  clawpatrol audit export --fixtures fixtures/recorded\n  \
clawpatrol audit export --fixtures /tmp/today --since 2025-01-31T00:00:00Z\n  \
clawpatrol test policy.hcl fixtures/recorded"
    )]
    Export(ExportArgs),
    /// Check the hash chain: every row unmodified, none deleted or reordered.
    #[command(
        after_help = "Exit codes: 0 chain intact, 1 the first problem found (printed \
with its row id), 2 load errors.\n\nExample:\n  clawpatrol audit verify"
    )]
    Verify,
}

#[derive(Debug, clap::Args)]
struct TailArgs {
    /// How many rows.
    #[arg(short = 'n', long = "lines", default_value_t = 20, value_name = "N")]
    n: usize,
    /// Keep printing new rows as they arrive (polls every 500 ms; Ctrl-C to stop).
    #[arg(short, long)]
    follow: bool,
    /// One JSON object per row instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct ShowArgs {
    /// A row id or an action id.
    id: String,
}

#[derive(Debug, clap::Args)]
struct ExportArgs {
    /// The directory to write fixtures into (created if missing; files are overwritten).
    #[arg(long, value_name = "DIR")]
    fixtures: PathBuf,
    /// Only rows since this time: RFC 3339 (`2025-01-31T12:00:00Z`) or a duration ago (`1h`,
    /// `7d`).
    #[arg(long, value_name = "T")]
    since: Option<String>,
}

/// Runs an `audit` subcommand.
pub fn run(args: Args) -> ExitCode {
    let path = match db_path(args.db, args.state_dir) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let store = match AuditStore::open_existing(&path) {
        Ok(s) => s,
        Err(AuditError::Missing { path }) => {
            eprintln!(
                "audit database `{}` does not exist (run the gateway first, or pass --db or --state-dir)",
                path.display()
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let result = match args.command {
        Command::Tail(a) => tail(&store, &a),
        Command::Show(a) => show(&store, &a.id),
        Command::Export(a) => export(&store, &a),
        Command::Verify => verify(&store),
    };
    result.unwrap_or_else(|e| {
        eprintln!("{e}");
        ExitCode::from(if e.is_tampering() { 1 } else { 2 })
    })
}

/// `--db`, else `--state-dir`/clawpatrol.db, else `$HOME/.clawpatrol/clawpatrol.db`.
pub fn db_path(db: Option<PathBuf>, state_dir: Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(db) = db {
        if state_dir.is_some() {
            return Err("pass either --db or --state-dir, not both".to_string());
        }
        return Ok(db);
    }
    let dir = match state_dir {
        Some(d) => d,
        None => match std::env::var_os("HOME") {
            Some(home) if !home.is_empty() => PathBuf::from(home).join(".clawpatrol"),
            _ => return Err("HOME is not set: pass --db or --state-dir".to_string()),
        },
    };
    Ok(dir.join("clawpatrol.db"))
}

fn tail(store: &AuditStore, a: &TailArgs) -> Result<ExitCode, AuditError> {
    let rows = store.tail(a.n)?;
    let mut last_id = rows.last().map_or(0, |r| r.id);
    if !print_rows(&rows, a.json) {
        return Ok(ExitCode::SUCCESS);
    }
    if !a.follow {
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let rows = store.after(last_id, 1000)?;
        if let Some(r) = rows.last() {
            last_id = r.id;
        }
        if !print_rows(&rows, a.json) {
            return Ok(ExitCode::SUCCESS);
        }
    }
}

/// Prints rows; false when stdout is gone (e.g. a closed pipe).
fn print_rows(rows: &[AuditRecord], json: bool) -> bool {
    let mut out = std::io::stdout().lock();
    for r in rows {
        let line = if json {
            serde_json::to_string(r).unwrap_or_default()
        } else {
            line(r)
        };
        if writeln!(out, "{line}").is_err() {
            return false;
        }
    }
    out.flush().is_ok()
}

/// One text line per row; agent-controlled text is escaped so it cannot drive the terminal.
fn line(r: &AuditRecord) -> String {
    let or_dash = |s: Option<&str>| match s {
        Some(s) if !s.is_empty() => clean(s),
        _ => "-".to_string(),
    };
    let mut out = format!(
        "{}  {:<8} {:<20} {:<7} {}{}  {}",
        format_ts(r.ts_ns),
        clean(if r.action.is_empty() { "-" } else { &r.action }),
        or_dash(r.endpoint.as_deref()),
        or_dash(Some(&r.method)),
        clean(&r.host),
        clean(&r.path),
        or_dash(r.rule.as_deref()),
    );
    if !r.reason.is_empty() {
        out.push_str("  ");
        out.push_str(&clean(&r.reason));
    }
    out
}

fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn show(store: &AuditStore, id: &str) -> Result<ExitCode, AuditError> {
    match store.get(id)? {
        Some(r) => {
            let text = serde_json::to_string_pretty(&r).unwrap_or_default();
            println!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("no audit row with id or action id `{}`", clean(id));
            Ok(ExitCode::from(1))
        }
    }
}

fn export(store: &AuditStore, a: &ExportArgs) -> Result<ExitCode, AuditError> {
    let since = match &a.since {
        Some(t) => match parse_since(t, now_ns()) {
            Ok(ns) => ns,
            Err(e) => {
                eprintln!("--since: {e}");
                return Ok(ExitCode::from(2));
            }
        },
        None => i64::MIN,
    };
    if let Err(e) = std::fs::create_dir_all(&a.fixtures) {
        eprintln!("create `{}`: {e}", a.fixtures.display());
        return Ok(ExitCode::from(2));
    }
    let mut exported = 0usize;
    let mut skipped: BTreeMap<String, usize> = BTreeMap::new();
    let mut write_error: Option<String> = None;
    store.scan_since(since, |rec| {
        if write_error.is_some() {
            return Ok(());
        }
        let e = match to_fixture(&rec) {
            Ok(e) => e,
            Err(err) => {
                tracing::debug!(row = rec.id, "{err}");
                *skipped.entry(err.summary()).or_default() += 1;
                return Ok(());
            }
        };
        if !safe_file_stem(&rec.action_id) {
            *skipped
                .entry("action id unusable as a file name".to_string())
                .or_default() += 1;
            return Ok(());
        }
        let file = a.fixtures.join(format!("{}.json", rec.action_id));
        let mut text = serde_json::to_string_pretty(&e.fixture).unwrap_or_default();
        text.push('\n');
        if let Err(err) = std::fs::write(&file, text) {
            write_error = Some(format!("write `{}`: {err}", file.display()));
            return Ok(());
        }
        if let Some(w) = e.warning() {
            eprintln!("warning: {}: {w}", file.display());
        }
        exported += 1;
        Ok(())
    })?;
    if let Some(e) = write_error {
        eprintln!("{e}");
        return Ok(ExitCode::from(2));
    }
    println!("exported {exported} fixture(s) to {}", a.fixtures.display());
    let total: usize = skipped.values().sum();
    if total > 0 {
        println!("skipped {total} row(s):");
        for (why, n) in &skipped {
            println!("  {n}  {why}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// An action id usable as a file name: UUID-like characters only, no leading dot.
fn safe_file_stem(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn verify(store: &AuditStore) -> Result<ExitCode, AuditError> {
    match store.verify() {
        Ok(n) => {
            println!("ok: {n} rows, chain intact");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if e.is_tampering() => {
            println!("audit chain broken: {e}");
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_path_resolution() {
        assert_eq!(
            db_path(Some("/x/a.db".into()), None),
            Ok(PathBuf::from("/x/a.db"))
        );
        assert_eq!(
            db_path(None, Some("/s".into())),
            Ok(PathBuf::from("/s/clawpatrol.db"))
        );
        assert!(db_path(Some("a".into()), Some("b".into())).is_err());
    }

    #[test]
    fn lines_escape_control_characters() {
        let r = AuditRecord {
            ts_ns: 0,
            action: "deny".into(),
            endpoint: Some("https.github".into()),
            method: "GET".into(),
            host: "api.github.com".into(),
            path: "/x\u{1b}[31m".into(),
            rule: None,
            reason: "no\nway".into(),
            ..Default::default()
        };
        assert_eq!(
            line(&r),
            "1970-01-01T00:00:00.000Z  deny     https.github         GET     api.github.com/x\\u{1b}[31m  -  no\\nway"
        );
    }

    #[test]
    fn file_stems() {
        assert!(safe_file_stem("0190f3c2-7a5e-7c31-9b1e-5d0c2f6e8a11"));
        for bad in ["", "../x", "a/b", ".hidden", "a\0b"] {
            assert!(!safe_file_stem(bad), "{bad:?}");
        }
    }
}
