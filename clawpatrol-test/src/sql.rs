//! SQL fixtures: statement text → the actions the gateway would decide, with the same parser
//! and rules (every statement of a multi-statement text, shadow statements).

use clawpatrol_core::facts::from_sql::{derive_fixture_sql, SqlDialect};
use clawpatrol_core::facts::Facts;
use clawpatrol_core::Action;

/// The dialect of an endpoint type, or the reference's error for types without a parser.
fn dialect(kind: &str) -> Result<SqlDialect, String> {
    match kind {
        "postgres" => Ok(SqlDialect::Postgres),
        "clickhouse_native" => Ok(SqlDialect::ClickHouse),
        _ => Err("sql: endpoint runtime does not implement SQLParser".to_string()),
    }
}

/// The actions of a SQL fixture on an endpoint of type `kind`, in evaluation order: the
/// gateway's expansion ([`clawpatrol_core::Policy::sql_text_actions`]) after the fixture's
/// explicit `verb`/`tables`/`functions` were checked against the parser on the first
/// statement (reference §7.3 item 4; where the parser found nothing the fixture value fills
/// in). The fixture flags pin fail-closed behaviour: `truncated` evaluates the text as a frame
/// cut at the inspection cap, `unparseable` marks every statement as refused by the parser.
pub fn statement_actions(
    policy: &clawpatrol_core::Policy,
    kind: &str,
    action: &Action,
) -> Result<Vec<Action>, String> {
    let Facts::Sql(sql) = &action.facts else {
        return Err("sql: the action has no sql block".to_string());
    };
    let derived = derive_fixture_sql(dialect(kind)?, sql).map_err(|e| e.to_string())?;
    let mut actions = policy
        .sql_text_actions(action)
        .ok_or_else(|| "sql: no endpoint claims the action".to_string())?;
    if let Some(first) = actions.first_mut() {
        if !action.truncated {
            first.facts = Facts::Sql(derived.facts);
            first.unparseable = derived.unparseable || action.unparseable;
        }
    }
    Ok(actions)
}
