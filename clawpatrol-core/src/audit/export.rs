//! Audit row → `clawpatrol test` fixture (reference §6.4 and §7.2). Unlike the original, the
//! credential name is exported (`action.credential`), so credential-pinned rules replay.

use crate::facts::Action;

use super::extra::{input_len, ACTION, BODY_CUT};
use super::record::AuditRecord;

/// Why a row cannot become a fixture.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// The outcome is not a policy decision (`error`, `synth`, `allow-overflow`, …).
    #[error(
        "row `{action_id}`: outcome `{outcome}` is not a policy decision and cannot be replayed"
    )]
    NotADecision {
        /// The row's action id.
        action_id: String,
        /// The row's outcome.
        outcome: String,
    },
    /// No endpoint claimed the traffic.
    #[error("row `{action_id}` has no endpoint: no endpoint claimed the traffic")]
    NoEndpoint {
        /// The row's action id.
        action_id: String,
    },
    /// The row carries no decided action in `extra.action`.
    #[error("row `{action_id}` carries no decided action (`extra.action` is missing)")]
    NoAction {
        /// The row's action id.
        action_id: String,
    },
    /// The stored action is not a valid fixture action.
    #[error("row `{action_id}`: the stored action is not a valid fixture action: {message}")]
    InvalidAction {
        /// The row's action id.
        action_id: String,
        /// What is wrong with it.
        message: String,
    },
}

impl ExportError {
    /// A short reason shared by every row skipped for the same cause, for summaries.
    pub fn summary(&self) -> String {
        match self {
            ExportError::NotADecision { outcome, .. } => {
                format!("outcome `{outcome}` is not a policy decision")
            }
            ExportError::NoEndpoint { .. } => "no endpoint".to_string(),
            ExportError::NoAction { .. } => "no decided action recorded".to_string(),
            ExportError::InvalidAction { .. } => "invalid stored action".to_string(),
        }
    }
}

/// A fixture made from an audit row.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedFixture {
    /// The fixture object (`{"action": …, "match": …}`).
    pub fixture: serde_json::Value,
    /// Set when the row's input was cut at the body cap: the stored length in bytes.
    pub body_cut_at: Option<usize>,
}

impl ExportedFixture {
    /// The warning to show for this fixture, if any.
    pub fn warning(&self) -> Option<String> {
        self.body_cut_at
            .map(|n| format!("body sample was cut at {n} bytes; the replayed verdict may differ"))
    }
}

/// The fixture verdict of a row outcome (reference §6.4), `None` when it is not a decision.
pub fn fixture_verdict(outcome: &str) -> Option<&'static str> {
    match outcome {
        "deny" => Some("deny"),
        "approved" | "denied" | "hitl_allow" | "hitl_deny" => Some("approve"),
        "allow" | "" => Some("allow"),
        _ => None,
    }
}

/// The `clawpatrol test` fixture replaying `rec`: `extra.action` with the row's credential and
/// agent address, and the row's verdict, rule, reason and endpoint as the expectation.
pub fn to_fixture(rec: &AuditRecord) -> Result<ExportedFixture, ExportError> {
    let action_id = || rec.action_id.clone();
    let verdict = fixture_verdict(&rec.action).ok_or_else(|| ExportError::NotADecision {
        action_id: action_id(),
        outcome: rec.action.clone(),
    })?;
    let endpoint = rec
        .endpoint
        .as_deref()
        .filter(|e| !e.is_empty())
        .ok_or_else(|| ExportError::NoEndpoint {
            action_id: action_id(),
        })?;
    let mut raw = match rec.extra.get(ACTION) {
        Some(serde_json::Value::Object(m)) => m.clone(),
        _ => {
            return Err(ExportError::NoAction {
                action_id: action_id(),
            })
        }
    };
    if let Some(c) = rec.credential.as_deref().filter(|c| !c.is_empty()) {
        raw.insert("credential".into(), c.into());
    }
    let peer = peer_ip(&rec.agent_ip);
    if !peer.is_empty() {
        raw.insert("peer_ip".into(), peer.into());
    }
    let action = Action::from_json(&serde_json::Value::Object(raw)).map_err(|e| {
        ExportError::InvalidAction {
            action_id: action_id(),
            message: e.0,
        }
    })?;
    let mut expect = serde_json::Map::new();
    expect.insert("verdict".into(), verdict.into());
    expect.insert("rule".into(), rec.rule.clone().unwrap_or_default().into());
    expect.insert("endpoint".into(), endpoint.into());
    if !rec.reason.is_empty() {
        expect.insert("reason".into(), rec.reason.clone().into());
    }
    let body_cut = rec.extra.get(BODY_CUT) == Some(&serde_json::Value::Bool(true));
    Ok(ExportedFixture {
        fixture: serde_json::json!({
            "action": serde_json::Value::from(&action),
            "match": expect,
        }),
        body_cut_at: body_cut.then(|| input_len(&action)),
    })
}

/// The IP part of an `ip`, `ip:port` or `[ipv6]:port` agent address.
fn peer_ip(agent: &str) -> &str {
    if let Ok(sa) = agent.parse::<std::net::SocketAddr>() {
        let s = agent.rsplit_once(':').map_or(agent, |(ip, _)| ip);
        return match sa {
            std::net::SocketAddr::V6(_) => s.trim_start_matches('[').trim_end_matches(']'),
            std::net::SocketAddr::V4(_) => s,
        };
    }
    agent
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::extra::record_extra;
    use serde_json::json;

    fn row(outcome: &str) -> AuditRecord {
        let action = Action::from_json(&json!({
            "host": "api.github.com",
            "http": {"method": "DELETE", "path": "/repos/a/b",
                     "headers": {"Authorization": ["Bearer x"]}}
        }))
        .unwrap();
        AuditRecord {
            action_id: "0190a-1".into(),
            agent_ip: "10.55.0.7:51234".into(),
            action: outcome.into(),
            reason: "no deletes".into(),
            endpoint: Some("https.github".into()),
            rule: Some("no-delete".into()),
            credential: Some("github-pat".into()),
            extra: record_extra(&action, &[], 4096),
            ..Default::default()
        }
    }

    #[test]
    fn a_deny_row_exports_with_credential_and_peer() {
        let e = to_fixture(&row("deny")).unwrap();
        assert_eq!(e.body_cut_at, None);
        assert_eq!(e.warning(), None);
        assert_eq!(
            e.fixture,
            json!({
                "action": {"host": "api.github.com", "credential": "github-pat",
                           "peer_ip": "10.55.0.7",
                           "http": {"method": "delete", "path": "/repos/a/b",
                                    "headers": {"Authorization": ["***"]}}},
                "match": {"verdict": "deny", "rule": "no-delete", "endpoint": "https.github",
                          "reason": "no deletes"}
            })
        );
    }

    #[test]
    fn verdict_mapping() {
        for (outcome, verdict) in [
            ("deny", "deny"),
            ("approved", "approve"),
            ("denied", "approve"),
            ("hitl_allow", "approve"),
            ("hitl_deny", "approve"),
            ("allow", "allow"),
        ] {
            let e = to_fixture(&row(outcome)).unwrap();
            assert_eq!(e.fixture["match"]["verdict"], verdict, "{outcome}");
        }
        for outcome in ["error", "synth", "passthrough", "allow-overflow", "ws"] {
            let err = to_fixture(&row(outcome)).unwrap_err();
            assert!(matches!(err, ExportError::NotADecision { .. }), "{outcome}");
            assert_eq!(
                err.to_string(),
                format!("row `0190a-1`: outcome `{outcome}` is not a policy decision and cannot be replayed")
            );
        }
    }

    #[test]
    fn rows_without_endpoint_or_action_are_refused() {
        let mut r = row("allow");
        r.endpoint = None;
        assert_eq!(
            to_fixture(&r).unwrap_err().to_string(),
            "row `0190a-1` has no endpoint: no endpoint claimed the traffic"
        );
        let mut r = row("allow");
        r.extra = json!({});
        assert_eq!(
            to_fixture(&r).unwrap_err(),
            ExportError::NoAction {
                action_id: "0190a-1".into()
            }
        );
        let mut r = row("allow");
        r.extra = json!({"action": {"host": "x"}});
        let err = to_fixture(&r).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("action: exactly one of http/k8s/sql/ssh is required, found 0"),
            "{err}"
        );
        assert_eq!(err.summary(), "invalid stored action");
    }

    #[test]
    fn a_cut_body_exports_with_a_warning() {
        let action = Action::from_json(&json!({
            "host": "api.github.com", "http": {"method": "POST", "path": "/x", "body": "0123456789"}
        }))
        .unwrap();
        let mut r = row("allow");
        r.extra = record_extra(&action, &[], 4);
        let e = to_fixture(&r).unwrap();
        assert_eq!(e.body_cut_at, Some(4));
        assert_eq!(
            e.warning().unwrap(),
            "body sample was cut at 4 bytes; the replayed verdict may differ"
        );
        assert_eq!(e.fixture["action"]["http"]["body"], "0123");
    }

    #[test]
    fn peer_ip_strips_ports() {
        assert_eq!(peer_ip("10.0.0.1:443"), "10.0.0.1");
        assert_eq!(peer_ip("10.0.0.1"), "10.0.0.1");
        assert_eq!(peer_ip("[::1]:80"), "::1");
        assert_eq!(peer_ip("::1"), "::1");
        assert_eq!(peer_ip(""), "");
    }
}
