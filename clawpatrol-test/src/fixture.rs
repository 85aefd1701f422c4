//! The fixture file format (reference §7.2): `{"action": {…}, "match": {…}}`.

use clawpatrol_core::Action;

/// What a fixture expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    /// `allow`, `deny`, `approve` or `passthrough`.
    pub verdict: String,
    /// The rule that must decide; empty = no rule fired.
    pub rule: String,
    /// The typed endpoint (`https.github`); empty = resolve by host and do not compare.
    pub endpoint: String,
    /// Informational; never compared.
    pub reason: String,
}

/// One parsed fixture.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The action to replay.
    pub action: Action,
    /// The expectation.
    pub expect: Expect,
}

/// Why a fixture could not be loaded; the text is printed after `FAIL <path>: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FixtureError(pub String);

const VERDICTS: [&str; 4] = ["allow", "deny", "approve", "passthrough"];

fn unknown_key(
    block: &str,
    m: &serde_json::Map<String, serde_json::Value>,
    allowed: &[&str],
) -> Result<(), FixtureError> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(FixtureError(format!(
            "{block}: json: unknown field \"{k}\""
        ))),
        None => Ok(()),
    }
}

fn string_field(
    block: &str,
    m: &serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Result<String, FixtureError> {
    match m.get(key) {
        None | Some(serde_json::Value::Null) => Ok(String::new()),
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(FixtureError(format!(
            "{block}: json: cannot unmarshal {key}: expected a string"
        ))),
    }
}

impl Fixture {
    /// Parses fixture text strictly.
    pub fn parse(text: &str) -> Result<Fixture, FixtureError> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| FixtureError(format!("fixture: json: {e}")))?;
        let serde_json::Value::Object(top) = v else {
            return Err(FixtureError(
                "fixture: json: expected an object at the top level".to_string(),
            ));
        };
        unknown_key("fixture", &top, &["action", "match"])?;
        let m = match top.get("match") {
            Some(serde_json::Value::Object(m)) => m,
            Some(serde_json::Value::Null) | None => {
                return Err(FixtureError("fixture: match is required".to_string()))
            }
            Some(_) => return Err(FixtureError("match: json: expected an object".to_string())),
        };
        let raw_action = match top.get("action") {
            Some(serde_json::Value::Null) | None => {
                return Err(FixtureError("fixture: action is required".to_string()))
            }
            Some(a) => a.clone(),
        };
        unknown_key("match", m, &["verdict", "rule", "endpoint", "reason"])?;
        let expect = Expect {
            verdict: string_field("match", m, "verdict")?,
            rule: string_field("match", m, "rule")?,
            endpoint: string_field("match", m, "endpoint")?,
            reason: string_field("match", m, "reason")?,
        };
        if !VERDICTS.contains(&expect.verdict.as_str()) {
            return Err(FixtureError(format!(
                "fixture: match.verdict \"{}\" must be one of allow|deny|approve|passthrough",
                expect.verdict
            )));
        }
        let action = Action::from_json(&raw_action).map_err(|e| FixtureError(e.0))?;
        Ok(Fixture { action, expect })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Fixture::parse(text).unwrap_err().0
    }

    #[test]
    fn reference_error_texts() {
        assert_eq!(
            err(r#"{"action":{"http":{}}}"#),
            "fixture: match is required"
        );
        assert_eq!(
            err(r#"{"match":{"verdict":"allow"}}"#),
            "fixture: action is required"
        );
        assert_eq!(
            err(r#"{"action":{"http":{}},"match":{"verdict":"allow"},"x":1}"#),
            "fixture: json: unknown field \"x\""
        );
        assert_eq!(
            err(r#"{"action":{"http":{}},"match":{"verdict":"allow","why":1}}"#),
            "match: json: unknown field \"why\""
        );
        assert_eq!(
            err(r#"{"action":{"http":{}},"match":{"verdict":"maybe"}}"#),
            "fixture: match.verdict \"maybe\" must be one of allow|deny|approve|passthrough"
        );
        assert_eq!(
            err(r#"{"action":{"http":{"x":1}},"match":{"verdict":"allow"}}"#),
            "http: json: unknown field \"x\""
        );
        assert_eq!(
            err(r#"{"action":{"sql":{}},"match":{"verdict":"allow"}}"#),
            "sql: statement is required"
        );
    }

    #[test]
    fn parses_a_fixture() {
        let f = Fixture::parse(
            r#"{"action":{"host":"api.github.com","credential":"pat","http":{"method":"GET","path":"/"}},
                "match":{"verdict":"allow","rule":"r","endpoint":"https.github","reason":"x"}}"#,
        )
        .unwrap();
        assert_eq!(f.expect.rule, "r");
        assert_eq!(f.action.credential, "pat");
    }
}
