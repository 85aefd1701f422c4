//! SQL fixtures: statement text → the actions the gateway would decide.

use clawpatrol_core::Action;

/// The actions of a SQL fixture. Until the SQL parser is linked into the runner, SQL fixtures
/// are refused rather than replayed with unparsed facts.
pub fn statement_actions(
    _kind: &str,
    _action: &Action,
    _raw: &serde_json::Value,
) -> Result<Vec<Action>, String> {
    Err("sql fixtures cannot be replayed by this build: the SQL parser is not linked".to_string())
}
