//! The agent's startup settings, decided like the `SET` statements they amount to.
//!
//! The server applies every run-time parameter of a StartupMessage, and every `-c name=value`
//! of its `options`, as the session starts: `role=admin` there is `SET ROLE admin` without a
//! statement for the rules to see. So each one is decided as `SET "name" TO 'value'` before
//! the gateway dials the server; one the rules do not allow refuses the login, and `options`
//! reaches the server rewritten to exactly the settings that were decided.

use clawpatrol_core::audit::AuditRecord;
use clawpatrol_core::engine::frame_decision;
use clawpatrol_core::{Decision, Policy, Verdict};
use clawpatrol_protocols::postgres::{options_string, parse_options, setting_statement};

use super::session::{session_action, statement_record, SessionInfo};
use super::SessionError;

/// Settings drivers send on their own that only shape how the server formats its answers,
/// and `client_encoding`, which the gateway checks itself: forwarded without a decision.
const UNDECIDED: &[&str] = &[
    "application_name",
    "client_encoding",
    "datestyle",
    "extra_float_digits",
    "intervalstyle",
    "timezone",
];

/// Why an approval cannot be asked for a startup setting.
const NO_APPROVAL_AT_LOGIN: &str =
    "it needs approval, which a login cannot wait for; connect without it and run the SET as a statement";

/// Decides the agent's startup parameters (`forwarded`: every one but `user`, `database`
/// and those never forwarded) and returns them as the server gets them: the same, with
/// `options` rewritten to its settings. Each decided setting adds an audit row to `rows`.
pub(super) fn decide_settings(
    policy: &Policy,
    info: &SessionInfo,
    forwarded: Vec<(String, String)>,
    rows: &mut Vec<AuditRecord>,
) -> Result<Vec<(String, String)>, SessionError> {
    let mut out = Vec::with_capacity(forwarded.len());
    for (name, value) in forwarded {
        if name == "options" {
            let settings =
                parse_options(&value).map_err(|e| SessionError::Setting(format!("{e}")))?;
            for (n, v) in &settings {
                decide(policy, info, n, v, rows)?;
            }
            if !settings.is_empty() {
                out.push((name, options_string(&settings)));
            }
        } else {
            decide(policy, info, &name, &value, rows)?;
            out.push((name, value));
        }
    }
    Ok(out)
}

/// Decides one setting; `Ok` when the rules allow it (or it is one of [`UNDECIDED`]).
fn decide(
    policy: &Policy,
    info: &SessionInfo,
    name: &str,
    value: &str,
    rows: &mut Vec<AuditRecord>,
) -> Result<(), SessionError> {
    if UNDECIDED.contains(&name.to_ascii_lowercase().as_str()) {
        return Ok(());
    }
    let statement = setting_statement(name, value).ok_or_else(|| {
        SessionError::Setting(format!(
            "startup parameter `{name}` is not a parameter name"
        ))
    })?;
    let base = session_action(info, statement);
    let actions = policy.sql_text_actions(&base).unwrap_or_default();
    let decisions: Vec<Decision> = actions
        .iter()
        .map(|a| policy.decide_fail_closed(a))
        .collect();
    let d = frame_decision(&decisions);
    let i = d
        .and_then(|d| decisions.iter().position(|x| std::ptr::eq(x, d)))
        .unwrap_or(0);
    let action = actions.get(i).unwrap_or(&base);
    let refusal = match d.map(|d| &d.verdict) {
        _ if actions.is_empty() => Some("the setting could not be analysed".to_string()),
        None | Some(Verdict::Allow | Verdict::Passthrough) => None,
        Some(Verdict::Deny) => d.map(|d| d.agent_reason().to_string()),
        Some(Verdict::Approve(_)) => Some(NO_APPROVAL_AT_LOGIN.to_string()),
    };
    match refusal {
        None => {
            rows.push(statement_record(info, policy, action, d, "allow", ""));
            Ok(())
        }
        Some(reason) => {
            rows.push(statement_record(info, policy, action, d, "deny", &reason));
            Err(SessionError::Setting(format!(
                "startup setting `{name}` denied: {reason}"
            )))
        }
    }
}
