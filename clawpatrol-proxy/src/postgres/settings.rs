//! The agent's startup settings, decided like the `SET` statements they amount to.
//!
//! The server applies every run-time parameter of a StartupMessage, and every `-c name=value`
//! of its `options`, as the session starts: `role=admin` there is `SET ROLE admin` without a
//! statement for the rules to see. So each one is decided as `SET "name" TO $cp$value$cp$` before
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

/// Settings that load libraries into the session as it starts, which no `SET` can do later:
/// refused whatever the rules say.
const REFUSED: &[&str] = &[
    "local_preload_libraries",
    "session_preload_libraries",
    "shared_preload_libraries",
];

/// Most settings one login may carry (parameters and `options` settings together).
const MAX_SETTINGS: usize = 64;

/// Why an approval cannot be asked for a startup setting.
const NO_APPROVAL_AT_LOGIN: &str =
    "it needs approval, which a login cannot wait for; connect without it and run the SET as a statement";

/// Decides the agent's startup parameters (`forwarded`: every one but `user`, `database`
/// and those never forwarded) and returns them as the server gets them: the same, with
/// `options` rewritten to its settings. When all are allowed, each decided setting adds an
/// audit row to `rows`; otherwise only the one that refused the login does.
pub(super) fn decide_settings(
    policy: &Policy,
    info: &SessionInfo,
    forwarded: Vec<(String, String)>,
    rows: &mut Vec<AuditRecord>,
) -> Result<Vec<(String, String)>, SessionError> {
    let mut out = Vec::with_capacity(forwarded.len());
    let mut settings = Vec::new();
    for (name, value) in forwarded {
        if name == "options" {
            let read = parse_options(&value).map_err(|e| SessionError::Setting(format!("{e}")))?;
            // Rewritten even when empty: the server keeps the last `options` it is sent.
            out.push((name, options_string(&read)));
            settings.extend(read);
        } else {
            settings.push((name.clone(), value.clone()));
            out.push((name, value));
        }
        if settings.len() > MAX_SETTINGS {
            return Err(SessionError::Setting(format!(
                "more than {MAX_SETTINGS} startup settings"
            )));
        }
    }
    // Rows only once every setting is allowed: a refused login applies none of them.
    let mut allowed = Vec::new();
    for (name, value) in &settings {
        match decide(policy, info, name, value)? {
            Ok(row) => allowed.extend(row),
            Err((row, e)) => {
                rows.push(row);
                return Err(e);
            }
        }
    }
    rows.extend(allowed);
    Ok(out)
}

/// A setting's audit row when allowed (`None` for the undecided ones), or its row and the
/// refusal when not; `Err` for a name that cannot be decided at all.
type Decided = Result<Option<AuditRecord>, (AuditRecord, SessionError)>;

/// Decides one setting as the `SET` statement it amounts to.
fn decide(
    policy: &Policy,
    info: &SessionInfo,
    name: &str,
    value: &str,
) -> Result<Decided, SessionError> {
    let lower = name.to_ascii_lowercase();
    if UNDECIDED.contains(&lower.as_str()) {
        return Ok(Ok(None));
    }
    if REFUSED.contains(&lower.as_str()) {
        return Err(SessionError::Setting(format!(
            "startup setting `{name}` loads libraries into the session and is not allowed through the gateway"
        )));
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
    Ok(match refusal {
        None => Ok(Some(statement_record(info, policy, action, d, "allow", ""))),
        Some(reason) => Err((
            statement_record(info, policy, action, d, "deny", &reason),
            SessionError::Setting(format!("startup setting `{name}` denied: {reason}")),
        )),
    })
}
