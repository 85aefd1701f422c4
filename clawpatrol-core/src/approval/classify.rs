//! Classifier ("summary") mode of an `llm_approver` (reference §5.2): when a human approver
//! names it as its `classifier`, the same transport asks for a JSON classification that
//! enriches the approval card. Any failure is non-fatal for the caller, which then shows the
//! generic card.

use serde::Deserialize;

use super::{prompt, truncate_chars, ApprovalInput};

/// The classifier's system prompt.
pub const CLASSIFIER_SYSTEM_PROMPT: &str = "You classify requests an AI agent wants to make, \
for a human who will approve or deny them. Analyse the request against the policy.

Reply with JSON only, with no markdown fences and no other text:
{\"subject\":\"<what the request acts on, e.g. a ticket id, or an empty string>\",\
\"label\":\"<a short label per the policy>\",\"confidence\":<0-100>,\
\"summary\":\"<one sentence>\"}";

/// The policy shown to the classifier when neither the approver nor the rule gives one.
pub const NO_CLASSIFIER_POLICY: &str = "(none)";

/// Characters of an unparsable reply quoted in the error.
const RAW_QUOTE_CHARS: usize = 200;

/// A classification of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Classification {
    /// What the request acts on (a ticket id, a table), or empty.
    pub subject: String,
    /// A short label per the policy.
    pub label: String,
    /// The model's confidence, 0–100.
    #[serde(deserialize_with = "confidence")]
    pub confidence: u8,
    /// One sentence.
    pub summary: String,
}

/// A number (integer or float, clamped to 0–100) or a numeric string; anything else is 0.
fn confidence<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    let n = match &v {
        serde_json::Value::Number(n) => n.as_f64().unwrap_or(0.0),
        serde_json::Value::String(s) => s.trim().trim_end_matches('%').parse().unwrap_or(0.0),
        _ => 0.0,
    };
    Ok(n.clamp(0.0, 100.0).round() as u8)
}

/// The classifier's user prompt: the judge's request block under the approver's `policy`,
/// else the rule's `reason`, else `(none)`.
pub fn classifier_user_prompt(approver_policy: Option<&str>, input: &ApprovalInput<'_>) -> String {
    let policy = match prompt::policy_text(approver_policy, input.rule_reason) {
        prompt::NO_POLICY => NO_CLASSIFIER_POLICY,
        p => p,
    };
    prompt::judge_user_prompt(policy, input)
}

/// Parses the classifier's reply: a JSON object, optionally inside a ```` ``` ```` fence.
pub fn parse_classification(text: &str) -> Result<Classification, String> {
    let mut t = text.trim();
    if let Some(inner) = t.strip_prefix("```") {
        let inner = inner.strip_prefix("json").unwrap_or(inner);
        t = inner.strip_suffix("```").unwrap_or(inner).trim();
    }
    serde_json::from_str::<Classification>(t).map_err(|e| {
        format!(
            "classifier json parse: {e} (raw: {})",
            truncate_chars(text, RAW_QUOTE_CHARS)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{Action, Facts, HttpFacts};

    #[test]
    fn parses_plain_and_fenced_json() {
        let c = parse_classification(
            r#"{"subject":"PROJ-12","label":"bugfix","confidence":87,"summary":"Closes a ticket."}"#,
        )
        .unwrap();
        assert_eq!(
            c,
            Classification {
                subject: "PROJ-12".into(),
                label: "bugfix".into(),
                confidence: 87,
                summary: "Closes a ticket.".into()
            }
        );
        let c =
            parse_classification("```json\n{\"label\":\"x\",\"confidence\":\"140\"}\n```").unwrap();
        assert_eq!((c.label.as_str(), c.confidence), ("x", 100));
        assert_eq!(
            parse_classification("{\"confidence\": 12.6}")
                .unwrap()
                .confidence,
            13
        );
        let e = parse_classification("sure! here it is").unwrap_err();
        assert!(
            e.starts_with("classifier json parse: expected value"),
            "{e}"
        );
        assert!(e.ends_with("(raw: sure! here it is)"), "{e}");
    }

    #[test]
    fn prompt_uses_none_without_policy() {
        let a = Action::new(Facts::Http(HttpFacts::default()));
        let input = ApprovalInput {
            approver: "llm_approver.c",
            endpoint: "https.api",
            rule: None,
            rule_reason: "",
            action: &a,
            profile: None,
            agent_ip: "",
            method: "GET",
            host: "h",
            path: "/",
            user_agent: None,
            body_sample: "",
        };
        assert!(classifier_user_prompt(None, &input).starts_with("Policy:\n(none)\n\nRequest:\n"));
        assert!(classifier_user_prompt(Some("triage"), &input).starts_with("Policy:\ntriage\n"));
        assert!(CLASSIFIER_SYSTEM_PROMPT.contains("\"confidence\":<0-100>"));
    }
}
