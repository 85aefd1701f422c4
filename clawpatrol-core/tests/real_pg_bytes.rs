//! The Postgres client bytes recorded from psql and tokio-postgres
//! (`clawpatrol-protocols/tests/vectors/README.md`) through the gateway's path from frame to
//! decision: each Query/Parse text becomes the gateway's SQL action, the policy derives one
//! action per statement and decides the frame.

use clawpatrol_core::facts::{Action, Facts, SqlFacts};
use clawpatrol_core::{Policy, Verdict};
use clawpatrol_protocols::postgres::{Decoded, FrontendDecoder, FrontendMessage, FrontendPhase};
use clawpatrol_protocols::sql::postgres_database;

fn vector(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../clawpatrol-protocols/tests/vectors/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The session database and the SQL texts the gateway gates (Query and Parse), in order.
fn gated_texts(raw: &[u8]) -> (String, Vec<String>) {
    let mut d = FrontendDecoder::new();
    d.feed(raw);
    let mut database = None;
    let mut texts = Vec::new();
    while let Some(m) = d.next_frame().expect("frontend decodes") {
        let Decoded::Message(m) = m else {
            panic!("unexpected {m:?}")
        };
        match m {
            FrontendMessage::Startup { params, .. } => {
                database = Some(postgres_database(
                    params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                ));
                d.set_phase(FrontendPhase::Typed);
            }
            FrontendMessage::Query(q) => texts.push(q),
            FrontendMessage::Parse { query, .. } => texts.push(query),
            _ => {}
        }
    }
    assert_eq!(d.buffered_len(), 0);
    (database.expect("a StartupMessage"), texts)
}

fn policy() -> Policy {
    let text = r#"schema_version = 1
endpoint "postgres" "pg" { host = "pg.internal:5432" }
rule "no-bulk-load" {
  endpoint  = postgres.pg
  condition = "sql.verb == 'copy'"
  verdict   = "deny"
  reason    = "no bulk load"
}
rule "t-is-read-only" {
  endpoint  = postgres.pg
  condition = "sql.verb in ['insert', 'update', 'delete'] && 't' in sql.tables"
  verdict   = "deny"
  reason    = "t is read only"
}
"#;
    match Policy::from_source("test.hcl", text) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

/// The gateway's action for one frame's text (statement and session database only).
fn frame_action(text: &str, database: &str) -> Action {
    Action::new(Facts::Sql(SqlFacts {
        statement: text.to_string(),
        database: database.to_string(),
        ..SqlFacts::default()
    }))
    .with_endpoint("postgres.pg")
}

/// Per frame: `(verb, tables)` of each derived statement and the frame's deciding rule.
type Frame = (Vec<(String, Vec<String>)>, Option<String>);

fn decide_recording(name: &str) -> Vec<Frame> {
    let p = policy();
    let (database, texts) = gated_texts(&vector(name));
    assert_eq!(database, "app");
    texts
        .iter()
        .map(|text| {
            let a = frame_action(text, &database);
            let facts = p
                .sql_text_actions(&a)
                .expect("a postgres endpoint claims it")
                .into_iter()
                .map(|a| match a.facts {
                    Facts::Sql(s) => {
                        assert!(!a.unparseable, "{s:?}");
                        assert_eq!(s.database, "app");
                        assert_eq!(a.endpoint.as_deref(), Some("postgres.pg"));
                        (s.verb, s.tables)
                    }
                    other => panic!("{other:?}"),
                })
                .collect();
            let d = p.decide_sql_text(&a, false);
            let rule = match d.verdict {
                Verdict::Allow => None,
                Verdict::Deny => Some(d.rule.as_deref().expect("a rule denied").to_string()),
                other => panic!("{other:?}"),
            };
            (facts, rule)
        })
        .collect()
}

fn st(verb: &str, tables: &[&str]) -> (String, Vec<String>) {
    (
        verb.to_string(),
        tables.iter().map(|t| t.to_string()).collect(),
    )
}

#[test]
fn psql_multi_statement_query_is_two_allowed_actions() {
    assert_eq!(
        decide_recording("psql_query_multi.bin"),
        [(vec![st("select", &[]), st("select", &["t"])], None)]
    );
}

#[test]
fn psql_copy_from_stdin_is_denied_as_copy() {
    assert_eq!(
        decide_recording("psql_copy_from_stdin.bin"),
        [(vec![st("copy", &["t"])], Some("no-bulk-load".to_string()))]
    );
}

#[test]
fn tokio_postgres_parse_frames_are_decided_one_by_one() {
    let deny = |r: &str| Some(r.to_string());
    assert_eq!(
        decide_recording("tokio_postgres_extended.bin"),
        [
            (vec![st("select", &["t"])], None),
            (vec![st("update", &["t"])], deny("t-is-read-only")),
            (vec![st("select", &["t"])], None),
            (vec![st("select", &["t"])], None),
            (vec![st("copy", &["t"])], deny("no-bulk-load")),
        ]
    );
}
