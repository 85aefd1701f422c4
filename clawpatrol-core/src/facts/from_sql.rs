//! SQL text → the `Action`s to decide (reference §3.3–3.5, §2.10) and the fixture rule of
//! reference §7.3 item 4.
//!
//! Parsing lives in `clawpatrol-protocols`; this module turns its statements into actions:
//! one per Postgres piece and per shadow statement (data-modifying CTE, statement of a `DO`
//! body), in evaluation order; one per ClickHouse query.

use clawpatrol_protocols::clickhouse::analyze_clickhouse;
use clawpatrol_protocols::sql::{analyze_postgres, PostgresCache, SqlStatement};

use super::action::{Action, Facts};
use super::sql::SqlFacts;
use crate::quote::{go_quote, go_quote_list};

/// The SQL dialect of an endpoint, which picks the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlDialect {
    /// Postgres (`pg_query`, the PostgreSQL 17 grammar).
    Postgres,
    /// ClickHouse (`sqlparser`'s ClickHouse dialect).
    ClickHouse,
}

/// The actions to decide for one SQL text, in evaluation order (each Postgres piece followed
/// by its shadow statements). Every action must be allowed for the text to be forwarded.
///
/// Empty Postgres text gives no action (it is not evaluated). A `truncated` text (over the
/// inspection cap) gives one action with empty parser-derived facts and `truncated = true`
/// (reference §2.10); `statement` keeps what the caller passed.
pub fn sql_actions(
    dialect: SqlDialect,
    text: &str,
    database: &str,
    truncated: bool,
) -> Vec<Action> {
    actions_of(dialect, text, database, truncated, None)
}

/// [`sql_actions`] reusing the analyses remembered in `cache` (Postgres only; the actions are
/// the same as without it).
pub fn sql_actions_cached(
    dialect: SqlDialect,
    text: &str,
    database: &str,
    truncated: bool,
    cache: &mut PostgresCache,
) -> Vec<Action> {
    actions_of(dialect, text, database, truncated, Some(cache))
}

fn actions_of(
    dialect: SqlDialect,
    text: &str,
    database: &str,
    truncated: bool,
    cache: Option<&mut PostgresCache>,
) -> Vec<Action> {
    if truncated {
        let mut a = Action::new(Facts::Sql(SqlFacts {
            statement: text.to_string(),
            database: database.to_string(),
            ..SqlFacts::default()
        }));
        a.truncated = true;
        return vec![a];
    }
    let statements = match dialect {
        SqlDialect::Postgres => match cache {
            Some(c) => c.analyze(text),
            None => analyze_postgres(text),
        },
        SqlDialect::ClickHouse => vec![analyze_clickhouse(text)],
    };
    statements
        .into_iter()
        .map(|s| statement_action(s, database))
        .collect()
}

/// One parsed statement as an action.
pub fn statement_action(s: SqlStatement, database: &str) -> Action {
    let unparseable = s.unparseable;
    let mut a = Action::new(Facts::Sql(facts_of(s, database)));
    a.unparseable = unparseable;
    a
}

fn facts_of(s: SqlStatement, database: &str) -> SqlFacts {
    SqlFacts {
        statement: s.statement,
        verb: s.verb,
        tables: s.tables,
        functions: s.functions,
        database: database.to_string(),
    }
}

/// The facts of a fixture's `sql` block after the parser derived them (reference §7.3 item 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedSql {
    /// The facts to decide on.
    pub facts: SqlFacts,
    /// The parser refused the statement and no fixture value filled its place.
    pub unparseable: bool,
}

/// A fixture's explicit `sql` value disagrees with the parser.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sql.{field} mismatch: fixture={fixture} parser={parser} (statement={statement})")]
pub struct SqlFixtureError {
    /// The field: `verb`, `tables` or `functions`.
    pub field: &'static str,
    /// The fixture's value, quoted as the reference prints it.
    pub fixture: String,
    /// The parser's value, quoted as the reference prints it.
    pub parser: String,
    /// The statement, quoted.
    pub statement: String,
}

/// Derives a fixture's SQL facts with the parser and checks that the fixture's explicit
/// values agree (verb case-insensitively, tables and functions as sets). A field the parser
/// left empty is filled from the fixture, which also clears the unparseable flag. The
/// database always comes from the fixture. For a multi-statement Postgres text the first
/// statement's facts are used.
pub fn derive_fixture_sql(
    dialect: SqlDialect,
    fixture: &SqlFacts,
) -> Result<DerivedSql, SqlFixtureError> {
    let parsed = match dialect {
        SqlDialect::Postgres => analyze_postgres(&fixture.statement).into_iter().next(),
        SqlDialect::ClickHouse => Some(analyze_clickhouse(&fixture.statement)),
    }
    .unwrap_or_default();
    let mut unparseable = parsed.unparseable;
    let mut facts = facts_of(parsed, &fixture.database);
    facts.statement.clone_from(&fixture.statement);
    let statement = go_quote(&fixture.statement);

    if !fixture.verb.is_empty() {
        if facts.verb.is_empty() {
            facts.verb = fixture.verb.to_ascii_lowercase();
            unparseable = false;
        } else if !facts.verb.eq_ignore_ascii_case(&fixture.verb) {
            return Err(SqlFixtureError {
                field: "verb",
                fixture: go_quote(&fixture.verb),
                parser: go_quote(&facts.verb),
                statement,
            });
        }
    }
    for (field, want, got) in [
        ("tables", &fixture.tables, &mut facts.tables),
        ("functions", &fixture.functions, &mut facts.functions),
    ] {
        if want.is_empty() {
            continue;
        }
        if got.is_empty() {
            got.clone_from(want);
            unparseable = false;
        } else if !same_set(want, got, field == "functions") {
            return Err(SqlFixtureError {
                field,
                fixture: go_quote_list(want),
                parser: go_quote_list(got),
                statement,
            });
        }
    }
    Ok(DerivedSql { facts, unparseable })
}

fn same_set(a: &[String], b: &[String], fold_case: bool) -> bool {
    let norm = |v: &[String]| {
        let mut v: Vec<String> = v
            .iter()
            .map(|s| {
                if fold_case {
                    s.to_lowercase()
                } else {
                    s.clone()
                }
            })
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    norm(a) == norm(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Policy, Verdict};

    fn policy(rules: &str) -> Policy {
        let text = format!(
            "schema_version = 1\nendpoint \"postgres\" \"pg\" {{ host = \"pg.internal:5432\" }}\n{rules}\n"
        );
        match Policy::from_source("test.hcl", &text) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    /// Decides every action of a text; the first non-allow decision wins.
    fn decide(p: &Policy, text: &str) -> (Verdict, Option<String>, String, usize) {
        let actions = sql_actions(SqlDialect::Postgres, text, "prod", false);
        for (i, a) in actions.iter().enumerate() {
            let d = p.decide_fail_closed(&a.clone().with_endpoint("postgres.pg"));
            if d.verdict != Verdict::Allow {
                return (d.verdict, d.rule.map(|r| r.to_string()), d.reason, i);
            }
        }
        (Verdict::Allow, None, String::new(), actions.len())
    }

    const DML: &str = r#"
rule "no-dml" {
  endpoint  = postgres.pg
  condition = "sql.verb in ['insert', 'update', 'delete', 'merge']"
  verdict   = "deny"
  reason    = "read only"
}"#;

    const DDL: &str = r#"
rule "no-ddl" {
  endpoint  = postgres.pg
  condition = "sql.verb in ['drop', 'truncate', 'alter', 'create']"
  verdict   = "deny"
  reason    = "no ddl"
}"#;

    #[test]
    fn second_statement_of_a_frame_is_denied() {
        let p = policy(DDL);
        let (v, rule, _, i) = decide(&p, "select 1; drop table users; select 2");
        assert_eq!(v, Verdict::Deny);
        assert_eq!(rule.as_deref(), Some("no-ddl"));
        assert_eq!(i, 1);
        assert_eq!(decide(&p, "select 1; select 2").0, Verdict::Allow);
    }

    #[test]
    fn data_modifying_cte_is_denied_by_a_dml_rule() {
        let p = policy(DML);
        let text = "WITH gone AS (DELETE FROM users RETURNING id) SELECT count(*) FROM gone";
        let actions = sql_actions(SqlDialect::Postgres, text, "prod", false);
        assert_eq!(actions.len(), 2);
        match &actions[1].facts {
            Facts::Sql(s) => {
                assert_eq!(s.statement, "gone");
                assert_eq!(s.verb, "delete");
                assert_eq!(s.tables, vec!["users".to_string()]);
                assert_eq!(s.database, "prod");
            }
            other => panic!("{other:?}"),
        }
        let (v, rule, reason, i) = decide(&p, text);
        assert_eq!(
            (v, rule.as_deref(), reason.as_str(), i),
            (Verdict::Deny, Some("no-dml"), "read only", 1)
        );
    }

    #[test]
    fn drop_inside_a_do_block_is_denied_by_a_ddl_rule() {
        let p = policy(DDL);
        let text = "DO $$ BEGIN PERFORM 1; DROP TABLE audit_log; END $$";
        let (v, rule, _, i) = decide(&p, text);
        assert_eq!(v, Verdict::Deny);
        assert_eq!(rule.as_deref(), Some("no-ddl"));
        assert!(
            i >= 1,
            "the DO statement itself is allowed, its shadow denied"
        );
    }

    #[test]
    fn unparseable_statement_hits_the_backstop() {
        // A rule that does not read parser-derived fields: no rule matches, the backstop denies.
        let p = policy(
            r#"
rule "staging" {
  endpoint  = postgres.pg
  condition = "sql.database == 'staging'"
  verdict   = "deny"
}"#,
        );
        let (v, rule, reason, i) = decide(&p, "select 1; this is not sql");
        assert_eq!(v, Verdict::Deny);
        assert_eq!(rule, None);
        assert_eq!(i, 1);
        assert_eq!(
            reason,
            "request bytes were unparseable and no rule explicitly allowed the request; failing closed"
        );
        // Dynamic SQL inside DO cannot be inspected: it fails closed too.
        let text = "DO $$ BEGIN EXECUTE format('drop table %I', 'x'); END $$";
        assert_eq!(decide(&p, text).0, Verdict::Deny);
        // A rule reading `sql.verb` is unevaluable on it and denies in its own name.
        let p = policy(DDL);
        let (v, rule, reason, _) = decide(&p, "select 1; this is not sql");
        assert_eq!((v, rule.as_deref()), (Verdict::Deny, Some("no-ddl")));
        assert_eq!(
            reason,
            "rule \"no-ddl\" could not be evaluated against this request (unparseable); failing closed"
        );
    }

    #[test]
    fn truncated_frame_is_one_action_with_empty_facts() {
        let a = sql_actions(SqlDialect::Postgres, "", "prod", true);
        assert_eq!(a.len(), 1);
        assert!(a[0].truncated);
        match &a[0].facts {
            Facts::Sql(s) => {
                assert!(s.verb.is_empty() && s.tables.is_empty() && s.database == "prod")
            }
            other => panic!("{other:?}"),
        }
        let p = policy(DDL);
        let d = p.decide_fail_closed(&a[0].clone().with_endpoint("postgres.pg"));
        assert_eq!(d.verdict, Verdict::Deny);
        assert!(sql_actions(SqlDialect::Postgres, "  ", "prod", false).is_empty());
    }

    #[test]
    fn clickhouse_text_is_one_action() {
        let a = sql_actions(
            SqlDialect::ClickHouse,
            "SELECT 1; DROP TABLE t",
            "default",
            false,
        );
        assert_eq!(a.len(), 1);
        match &a[0].facts {
            Facts::Sql(s) => {
                assert_eq!(s.verb, "select");
                assert_eq!(s.tables, vec!["t".to_string()]);
            }
            other => panic!("{other:?}"),
        }
        assert!(sql_actions(SqlDialect::ClickHouse, "SYSTEM FLUSH LOGS", "", false)[0].unparseable);
    }

    fn fixture(statement: &str, verb: &str, tables: &[&str], functions: &[&str]) -> SqlFacts {
        SqlFacts {
            statement: statement.into(),
            verb: verb.into(),
            tables: tables.iter().map(|s| s.to_string()).collect(),
            functions: functions.iter().map(|s| s.to_string()).collect(),
            database: "db".into(),
        }
    }

    #[test]
    fn fixture_values_must_agree_with_the_parser() {
        let d = derive_fixture_sql(
            SqlDialect::Postgres,
            &fixture("SELECT now() FROM b.t", "", &[], &[]),
        )
        .unwrap();
        assert_eq!(d.facts.verb, "select");
        assert_eq!(d.facts.tables, vec!["b.t", "t"]);
        assert_eq!(d.facts.functions, vec!["now"]);
        assert_eq!(d.facts.database, "db");
        assert!(!d.unparseable);

        // Agreement: case-insensitive verb, tables and functions as sets.
        let ok = fixture(
            "SELECT now() FROM b.t",
            "SELECT",
            &["t", "b.t", "t"],
            &["NOW"],
        );
        assert!(derive_fixture_sql(SqlDialect::Postgres, &ok).is_ok());

        let e = derive_fixture_sql(
            SqlDialect::Postgres,
            &fixture("delete from t", "select", &[], &[]),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"sql.verb mismatch: fixture="select" parser="delete" (statement="delete from t")"#
        );
        let e = derive_fixture_sql(
            SqlDialect::Postgres,
            &fixture("delete from t", "", &["u"], &[]),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"sql.tables mismatch: fixture=["u"] parser=["t"] (statement="delete from t")"#
        );
        let e = derive_fixture_sql(
            SqlDialect::Postgres,
            &fixture("select f()", "", &[], &["g"]),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("sql.functions mismatch: "), "{e}");
    }

    #[test]
    fn fixture_values_fill_what_the_parser_did_not_produce() {
        // Unparseable: the fixture fills the facts and clears the flag.
        let d = derive_fixture_sql(SqlDialect::Postgres, &fixture("frobnicate t", "", &[], &[]))
            .unwrap();
        assert!(d.unparseable);
        let d = derive_fixture_sql(
            SqlDialect::Postgres,
            &fixture("frobnicate t", "Frob", &["t"], &[]),
        )
        .unwrap();
        assert!(!d.unparseable);
        assert_eq!(d.facts.verb, "frob");
        assert_eq!(d.facts.tables, vec!["t"]);
        // Parsed with an empty verb (CREATE EXTENSION): the fixture verb fills it.
        let d = derive_fixture_sql(
            SqlDialect::Postgres,
            &fixture("create extension x", "create", &[], &[]),
        )
        .unwrap();
        assert_eq!(d.facts.verb, "create");
        // ClickHouse uses its own parser.
        let d = derive_fixture_sql(
            SqlDialect::ClickHouse,
            &fixture("SELECT * FROM db.t", "select", &["db.t"], &[]),
        )
        .unwrap();
        assert_eq!(d.facts.tables, vec!["db.t"]);
    }
}
