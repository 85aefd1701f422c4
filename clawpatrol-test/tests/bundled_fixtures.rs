//! Every bundled example policy and its fixtures replay clean (what CI guards), and SQL
//! fixtures are derived by the gateway's parser, including the §7.3 agreement rule.

use std::path::{Path, PathBuf};

use clawpatrol_core::Policy;
use clawpatrol_test::discover::fixture_files;
use clawpatrol_test::replay::{replay_text, Outcome};
use clawpatrol_test::runner::replay_files;

fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// (policy, fixture directory) pairs under `fixtures/`: `<dir>/policy.hcl` with each
/// `<dir>/fixtures*` directory.
fn suites() -> Vec<(PathBuf, PathBuf)> {
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures_root())
        .expect("fixtures/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("policy.hcl").is_file())
        .collect();
    dirs.sort();
    for d in dirs {
        let mut fx: Vec<PathBuf> = std::fs::read_dir(&d)
            .expect("dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_dir()
                    && p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("fixtures"))
            })
            .collect();
        fx.sort();
        for f in fx {
            out.push((d.join("policy.hcl"), f));
        }
    }
    out
}

#[test]
fn every_bundled_fixture_passes() {
    let mut total = 0;
    let mut families = std::collections::BTreeSet::new();
    let mut verdicts = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    for (policy, dir) in suites() {
        let p = Policy::load(&policy).unwrap_or_else(|e| panic!("{}: {e}", policy.display()));
        assert!(
            p.warnings().is_empty(),
            "{}: {:?}",
            policy.display(),
            p.warnings()
        );
        let files = fixture_files(&dir, false).expect("fixtures");
        for r in replay_files(&p, &files) {
            total += 1;
            if let Some(e) = &r.expect {
                verdicts.insert(e.verdict.clone());
            }
            if let Some(g) = r.outcome.produced() {
                families.insert(g.endpoint.split('.').next().unwrap_or("").to_string());
            }
            if r.outcome.failed() {
                failures.push(format!("{}: {:?}", r.path, r.outcome));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(total >= 150, "only {total} fixtures");
    for v in ["allow", "deny", "approve"] {
        assert!(verdicts.contains(v), "no {v} fixture");
    }
    for f in [
        "https",
        "kubernetes",
        "postgres",
        "clickhouse_native",
        "ssh",
    ] {
        assert!(
            families.contains(f),
            "no fixture on a {f} endpoint: {families:?}"
        );
    }
}

const SQL_POLICY: &str = r#"
endpoint "postgres" "pg" { host = "pg.internal:5432" }
endpoint "clickhouse_https" "chh" { hosts = ["ch.example.com"] }
rule "no-drop" {
  endpoint  = postgres.pg
  condition = "sql.verb == 'drop'"
  verdict   = "deny"
}
rule "reads" {
  endpoint  = postgres.pg
  condition = "sql.verb == 'select'"
  verdict   = "allow"
}
"#;

fn replay(fixture: &str) -> Outcome {
    let p = Policy::from_source("sql.hcl", SQL_POLICY).expect("policy");
    replay_text(&p, fixture).1
}

#[test]
fn sql_fixtures_use_the_parser_and_check_agreement() {
    // The second statement decides the frame.
    let o = replay(
        r#"{"action":{"host":"pg.internal","sql":{"statement":"SELECT 1; DROP TABLE users"}},
                       "match":{"verdict":"deny","rule":"no-drop"}}"#,
    );
    assert!(matches!(o, Outcome::Pass(_)), "{o:?}");
    // Explicit facts must agree with the parser.
    let o = replay(
        r#"{"action":{"host":"pg.internal","sql":{"statement":"SELECT 1","verb":"insert"}},
                       "match":{"verdict":"allow","rule":"reads"}}"#,
    );
    assert_eq!(
        o,
        Outcome::Error(
            "sql.verb mismatch: fixture=\"insert\" parser=\"select\" (statement=\"SELECT 1\")"
                .into()
        )
    );
    let o = replay(
        r#"{"action":{"host":"pg.internal","sql":{"statement":"SELECT * FROM a","tables":["b"]}},
                       "match":{"verdict":"allow","rule":"reads"}}"#,
    );
    assert!(
        matches!(&o, Outcome::Error(e) if e.starts_with("sql.tables mismatch: ")),
        "{o:?}"
    );
    // Agreeing facts (verb case-insensitive, tables as a set) pass.
    let o = replay(
        r#"{"action":{"host":"pg.internal","sql":{"statement":"SELECT * FROM b JOIN a ON true","verb":"SELECT","tables":["a","b"]}},
                       "match":{"verdict":"allow","rule":"reads"}}"#,
    );
    assert!(matches!(o, Outcome::Pass(_)), "{o:?}");
    // An endpoint type without a parser.
    let o = replay(
        r#"{"action":{"host":"ch.example.com","sql":{"statement":"SELECT 1"}},
                       "match":{"verdict":"allow"}}"#,
    );
    assert_eq!(
        o,
        Outcome::Error("sql: endpoint runtime does not implement SQLParser".into())
    );
    // `unparseable` pins fail-closed behaviour (the backstop applies to SQL fixtures).
    let o = replay(
        r#"{"action":{"host":"pg.internal","unparseable":true,"sql":{"statement":"SELECT 1"}},
                       "match":{"verdict":"deny","rule":"no-drop"}}"#,
    );
    assert!(matches!(o, Outcome::Pass(_)), "{o:?}");
    // A truncated frame: empty parser-derived facts, the first rule reading them denies.
    let o = replay(
        r#"{"action":{"host":"pg.internal","truncated":true,"sql":{"statement":"SELECT 1"}},
                       "match":{"verdict":"deny","rule":"no-drop"}}"#,
    );
    assert!(matches!(o, Outcome::Pass(_)), "{o:?}");
}
