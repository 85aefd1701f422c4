//! The `extra` column of an audit row: the decided action in fixture form, so that the row
//! can be exported to a `clawpatrol test` fixture (reference §6.4, DESIGN §7).
//!
//! Keys:
//! - `action`: the fixture `action` object of the decided action, redacted
//!   ([`super::redact::redact_action`]), with its inspected input cut at the body cap. Its
//!   `credential` key is left to [`super::AuditRecord::credential`] and `peer_ip` to
//!   `agent_ip`: export fills both.
//! - `body_cut`: `true` when the stored HTTP body, SQL statement or SSH stdin was cut at the
//!   cap (absent otherwise); such a row still exports, with a warning.
//!
//! Callers may add keys of their own (e.g. protocol details); export reads only these two.

use crate::facts::{Action, Facts, HttpFacts};

use super::redact::redact_action;

/// Key of the decided action in `extra`.
pub const ACTION: &str = "action";
/// Key of the "input was cut at the cap" flag in `extra`.
pub const BODY_CUT: &str = "body_cut";

/// The `extra` object for a decided action: redacted with `secrets`, inspected input cut at
/// `body_cap` bytes, without credential and peer (those have their own columns).
pub fn record_extra(action: &Action, secrets: &[String], body_cap: usize) -> serde_json::Value {
    let mut a = action.clone();
    redact_action(&mut a, secrets);
    a.credential.clear();
    a.peer_ip.clear();
    let cut = cut_input(&mut a, body_cap);
    let mut m = serde_json::Map::new();
    m.insert(ACTION.to_string(), serde_json::Value::from(&a));
    if cut {
        m.insert(BODY_CUT.to_string(), serde_json::Value::Bool(true));
    }
    serde_json::Value::Object(m)
}

/// The byte length of the action's inspected input: HTTP body, SQL statement or SSH stdin.
pub fn input_len(action: &Action) -> usize {
    match &action.facts {
        Facts::Http(h) | Facts::K8s { http: h, .. } => h.body().len(),
        Facts::Sql(s) => s.statement.len(),
        Facts::Ssh(s) => s.stdin.len(),
    }
}

/// Cuts the inspected input to at most `cap` bytes (on a character boundary for text);
/// true when something was cut.
fn cut_input(a: &mut Action, cap: usize) -> bool {
    match &mut a.facts {
        Facts::Http(h) | Facts::K8s { http: h, .. } => {
            if h.body().len() <= cap {
                return false;
            }
            let body = h.body();
            let end = match std::str::from_utf8(body) {
                Ok(text) => floor_char_boundary(text, cap),
                Err(_) => cap,
            };
            *h = HttpFacts::new(
                h.method(),
                h.path(),
                h.query().clone(),
                h.headers().clone(),
                body[..end].to_vec(),
            );
            true
        }
        Facts::Sql(s) => cut_text(&mut s.statement, cap),
        Facts::Ssh(s) => cut_text(&mut s.stdin, cap),
    }
}

fn cut_text(s: &mut String, cap: usize) -> bool {
    if s.len() <= cap {
        return false;
    }
    let end = floor_char_boundary(s, cap);
    s.truncate(end);
    true
}

fn floor_char_boundary(s: &str, at: usize) -> usize {
    (0..=at.min(s.len()))
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn extra_holds_the_redacted_action_without_credential_or_peer() {
        let a = Action::from_json(&json!({
            "host": "api.github.com", "credential": "pat", "peer_ip": "10.0.0.1",
            "http": {"method": "POST", "path": "/x",
                     "headers": {"Authorization": ["Bearer s3cr3t-value"]}, "body": "s3cr3t-value"}
        }))
        .unwrap();
        let extra = record_extra(&a, &["s3cr3t-value".to_string()], 1024);
        assert!(!extra.to_string().contains("s3cr3t-value"), "{extra}");
        assert_eq!(extra[ACTION]["http"]["body"], "[REDACTED credential]");
        assert!(extra[ACTION].get("credential").is_none());
        assert!(extra[ACTION].get("peer_ip").is_none());
        assert!(extra.get(BODY_CUT).is_none());
        let back = Action::from_json(&extra[ACTION]).unwrap();
        assert_eq!(back.host, "api.github.com");
    }

    #[test]
    fn long_inputs_are_cut_and_flagged() {
        let a = Action::from_json(&json!({"http": {"method": "POST", "body": "aébcdef"}})).unwrap();
        let extra = record_extra(&a, &[], 2);
        assert_eq!(extra[BODY_CUT], true);
        assert_eq!(extra[ACTION]["http"]["body"], "a");
        let back = Action::from_json(&extra[ACTION]).unwrap();
        assert_eq!(input_len(&back), 1);

        let a = Action::from_json(&json!({"sql": {"statement": "select 1234"}})).unwrap();
        let extra = record_extra(&a, &[], 6);
        assert_eq!(extra[BODY_CUT], true);
        assert_eq!(extra[ACTION]["sql"]["statement"], "select");

        let a = Action::from_json(&json!({"ssh": {"verb": "exec", "stdin": "ok"}})).unwrap();
        assert!(record_extra(&a, &[], 6).get(BODY_CUT).is_none());
    }
}
