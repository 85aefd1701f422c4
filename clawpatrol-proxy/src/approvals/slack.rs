//! Slack notifications for human approvals (reference §5.3): a Block Kit message with
//! approve/deny buttons, the signed interactivity webhook, and the message update after a
//! decision. Slack is reached at `https://slack.com/api/…` through the gateway's dialer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use clawpatrol_core::config::model::{Approver, AttrValue, Credential};
use clawpatrol_core::Policy;
use serde_json::{json, Value};

use super::request::ApprovalRequest;
use crate::http::client;
use crate::runtime::Shared;

/// Slack's Web API base.
const SLACK_API: &str = "https://slack.com/api";
/// Timeout of each Slack call.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest Slack response read.
const MAX_RESPONSE: usize = 256 * 1024;
/// Largest accepted age of a signed interactivity request.
pub const MAX_SIGNATURE_AGE_SECS: u64 = 300;

/// A posted approval message, kept to update it after the decision.
#[derive(Debug, Clone)]
struct Posted {
    credential: String,
    channel: String,
    ts: String,
}

/// Messages posted for pending approvals, by pending id.
#[derive(Debug, Default)]
pub struct SlackMessages {
    posted: Mutex<HashMap<u64, Posted>>,
}

/// The `slack_tokens` credential of a human approver, when it has one.
pub fn approver_credential<'p>(policy: &'p Policy, approver: &Approver) -> Option<&'p Credential> {
    let name = match approver.attrs.get("credential") {
        Some(AttrValue::Str(n)) => n,
        _ => return None,
    };
    policy
        .config()
        .credentials
        .iter()
        .find(|c| c.name == *name && c.kind == "slack_tokens")
}

/// The bot token of a `slack_tokens` credential (`_BOT` extra, else the primary secret).
fn bot_token(shared: &Shared, credential: &str) -> Option<String> {
    let secret = shared.secrets.get(credential).ok().flatten()?;
    let bytes = secret
        .extras
        .get("bot")
        .filter(|b| !b.is_empty())
        .cloned()
        .unwrap_or(secret.primary);
    String::from_utf8(bytes)
        .ok()
        .filter(|t| !t.is_empty() && !t.contains(['\r', '\n']))
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The Block Kit message of a pending approval (reference §5.3).
pub fn blocks(
    id: u64,
    req: &ApprovalRequest,
    message: &str,
    interactive: bool,
    public_url: Option<&str>,
) -> (String, Value) {
    let family = req.action.facts.family();
    let label = match family {
        clawpatrol_core::Family::Http => req.host.clone(),
        _ => req.endpoint.clone(),
    };
    let title = clip(&format!("Approve {} · {label}", req.method), 140);
    let field = match family {
        clawpatrol_core::Family::Http => "Path",
        clawpatrol_core::Family::Sql => "Query",
        clawpatrol_core::Family::K8s => "Resource",
        clawpatrol_core::Family::Ssh => "Command",
    };
    let content = if message.is_empty() {
        format!("*{field}*\n`{}`", clip(&req.path, 2000))
    } else {
        clip(message, 2900)
    };
    let mut context = format!("agent `{}`", req.profile.as_deref().unwrap_or("-"));
    if !req.rule_reason.is_empty() {
        context.push_str(&format!(" · reason: {}", clip(&req.rule_reason, 200)));
    }
    let mut b = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": title}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": content}}),
        json!({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]}),
    ];
    if !req.body_sample.is_empty() {
        b.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*Body*\n```{}```", clip(&req.body_sample, 2800))}}));
    }
    b.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": "Approving sends this request upstream once; denying returns the reason to the agent."}]}));
    if interactive {
        b.push(json!({"type": "actions", "elements": [
            {"type": "button", "action_id": "approve", "style": "primary", "value": id.to_string(), "text": {"type": "plain_text", "text": "Approve"}},
            {"type": "button", "action_id": "deny", "style": "danger", "value": id.to_string(), "text": {"type": "plain_text", "text": "Deny"}}
        ]}));
    } else if let Some(url) = public_url {
        b.push(json!({"type": "actions", "elements": [
            {"type": "button", "action_id": "open", "url": format!("{url}/#hitl/{id}"), "text": {"type": "plain_text", "text": "Open dashboard"}}
        ]}));
    }
    (format!("clawpatrol: {title}"), Value::Array(b))
}

/// Calls a Slack Web API method, retrying 429 and 5xx twice; returns the JSON reply.
async fn call(
    ctx: &client::ClientCtx,
    token: &str,
    method: &str,
    body: &Value,
) -> Result<Value, String> {
    let url = format!("{SLACK_API}/{method}");
    let payload = body.to_string();
    let headers = [
        ("Authorization", format!("Bearer {token}")),
        (
            "Content-Type",
            "application/json; charset=utf-8".to_string(),
        ),
    ];
    let mut last = String::new();
    for attempt in 0..3u64 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500 * attempt)).await;
        }
        match client::send(
            ctx,
            "POST",
            &url,
            &headers,
            payload.as_bytes(),
            CALL_TIMEOUT,
            MAX_RESPONSE,
        )
        .await
        {
            Ok(r) if r.status == 429 || r.status >= 500 => {
                last = format!("slack http {}", r.status)
            }
            Ok(r) if r.status != 200 => return Err(format!("slack http {}", r.status)),
            Ok(r) => {
                let v: Value =
                    serde_json::from_slice(&r.body).map_err(|e| format!("slack reply: {e}"))?;
                if v["ok"] != Value::Bool(true) {
                    return Err(format!(
                        "slack {method}: {}",
                        v["error"].as_str().unwrap_or("not ok")
                    ));
                }
                return Ok(v);
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

impl SlackMessages {
    /// Posts the approval message to the approver's channel (errors are logged; the
    /// approval still waits for a decision through the management API).
    pub async fn post(
        &self,
        shared: &Shared,
        credential: &str,
        channel: &str,
        id: u64,
        text: String,
        blocks: Value,
    ) {
        let Some(token) = bot_token(shared, credential) else {
            tracing::warn!(
                credential,
                "slack notification skipped: no bot token (set CLAWPATROL_SECRET_<NAME> or _BOT)"
            );
            return;
        };
        let body = json!({"channel": channel, "text": text, "blocks": blocks});
        let ctx = match client::ClientCtx::from_shared(shared) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(id, error = %e, "slack notification failed");
                return;
            }
        };
        match call(&ctx, &token, "chat.postMessage", &body).await {
            Ok(v) => {
                let posted = Posted {
                    credential: credential.to_string(),
                    channel: v["channel"].as_str().unwrap_or(channel).to_string(),
                    ts: v["ts"].as_str().unwrap_or_default().to_string(),
                };
                if let Ok(mut m) = self.posted.lock() {
                    m.insert(id, posted);
                }
            }
            Err(e) => tracing::warn!(id, channel, error = %e, "slack notification failed"),
        }
    }

    /// Whether a click on message `ts` via `credential` may decide pending approval `id`: the
    /// gateway must have posted that very message for that id with that credential.
    pub fn matches(&self, id: u64, credential: &str, ts: Option<&str>) -> bool {
        self.posted
            .lock()
            .ok()
            .and_then(|m| m.get(&id).cloned())
            .is_some_and(|p| p.credential == credential && Some(p.ts.as_str()) == ts)
    }

    /// Replaces the buttons of a posted message with the outcome, in a detached task (the
    /// agent's answer does not wait for Slack).
    pub fn update(&self, shared: &Shared, id: u64, status: String) {
        let posted = self.posted.lock().ok().and_then(|mut m| m.remove(&id));
        let Some(p) = posted else { return };
        let Some(token) = bot_token(shared, &p.credential) else {
            return;
        };
        let ctx = match client::ClientCtx::from_shared(shared) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(id, error = %e, "slack message update failed");
                return;
            }
        };
        tokio::spawn(async move {
            let body = json!({
                "channel": p.channel,
                "ts": p.ts,
                "text": format!("clawpatrol: {status}"),
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": status}}],
            });
            if let Err(e) = call(&ctx, &token, "chat.update", &body).await {
                tracing::warn!(id, error = %e, "slack message update failed");
            }
        });
    }
}

/// Why an interactivity request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InteractiveError {
    /// Unknown credential, not `slack_tokens`, or no signing secret.
    #[error("no slack credential `{0}` with a signing secret")]
    NoSecret(String),
    /// Missing, stale or wrong signature.
    #[error("invalid slack signature: {0}")]
    Signature(&'static str),
    /// The click is not on the message the gateway posted for that approval.
    #[error("the click does not belong to pending approval `{0}`")]
    Foreign(u64),
    /// The payload is not a block action this gateway understands.
    #[error("malformed slack payload: {0}")]
    Payload(String),
}

/// Verifies `X-Slack-Signature` = `v0=` + hex HMAC-SHA256(signing secret, `v0:<ts>:<body>`)
/// and a timestamp within five minutes of `now` (constant-time comparison).
pub fn verify_signature(
    secret: &[u8],
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now: u64,
) -> Result<(), InteractiveError> {
    let ts: u64 = timestamp
        .trim()
        .parse()
        .map_err(|_| InteractiveError::Signature("bad timestamp"))?;
    if now.abs_diff(ts) > MAX_SIGNATURE_AGE_SECS {
        return Err(InteractiveError::Signature("stale timestamp"));
    }
    let hex_sig = signature
        .trim()
        .strip_prefix("v0=")
        .ok_or(InteractiveError::Signature("not a v0 signature"))?;
    let sig = hex::decode(hex_sig).map_err(|_| InteractiveError::Signature("not hex"))?;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let mut msg = format!("v0:{}:", ts).into_bytes();
    msg.extend_from_slice(body);
    ring::hmac::verify(&key, &msg, &sig).map_err(|_| InteractiveError::Signature("mismatch"))
}

/// Decodes one `application/x-www-form-urlencoded` value.
fn form_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A decision carried by a block-action payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Click {
    /// The pending id (the button's value).
    pub id: u64,
    /// Approve or deny.
    pub allow: bool,
    /// The Slack user who clicked.
    pub user: String,
    /// The `ts` of the message the button was on.
    pub message_ts: Option<String>,
}

/// Parses a block-action payload.
pub fn parse_payload(body: &[u8]) -> Result<Click, InteractiveError> {
    let text =
        std::str::from_utf8(body).map_err(|_| InteractiveError::Payload("not utf-8".into()))?;
    let payload = text
        .split('&')
        .find_map(|kv| kv.strip_prefix("payload="))
        .ok_or_else(|| InteractiveError::Payload("no payload field".into()))?;
    let v: Value = serde_json::from_str(&form_decode(payload))
        .map_err(|e| InteractiveError::Payload(e.to_string()))?;
    let action = &v["actions"][0];
    let allow = match action["action_id"].as_str() {
        Some("approve") => true,
        Some("deny") => false,
        other => {
            return Err(InteractiveError::Payload(format!(
                "unknown action {other:?}"
            )))
        }
    };
    let id = action["value"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| InteractiveError::Payload("no pending id".into()))?;
    let user = ["username", "name", "id"]
        .iter()
        .find_map(|k| v["user"][k].as_str())
        .unwrap_or("unknown")
        .to_string();
    let message_ts = v["container"]["message_ts"]
        .as_str()
        .or_else(|| v["message"]["ts"].as_str())
        .map(str::to_string);
    Ok(Click {
        id,
        allow,
        user,
        message_ts,
    })
}

/// The signing secret of the `slack_tokens` credential `name`.
pub fn signing_secret(shared: &Shared, name: &str) -> Result<Vec<u8>, InteractiveError> {
    let policy = shared.policy.load();
    let known = policy
        .config()
        .credentials
        .iter()
        .any(|c| c.name == name && c.kind == "slack_tokens");
    if !known {
        return Err(InteractiveError::NoSecret(name.to_string()));
    }
    shared
        .secrets
        .get(name)
        .ok()
        .flatten()
        .and_then(|s| s.extras.get("signing_secret").cloned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| InteractiveError::NoSecret(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &[u8], ts: u64, body: &[u8]) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        let mut msg = format!("v0:{ts}:").into_bytes();
        msg.extend_from_slice(body);
        format!("v0={}", hex::encode(ring::hmac::sign(&key, &msg).as_ref()))
    }

    #[test]
    fn signatures() {
        let body = b"payload=%7B%7D";
        let sig = sign(b"s3", 1000, body);
        assert!(verify_signature(b"s3", "1000", &sig, body, 1100).is_ok());
        assert_eq!(
            verify_signature(b"s3", "1000", &sig, body, 1400),
            Err(InteractiveError::Signature("stale timestamp"))
        );
        assert!(verify_signature(b"other", "1000", &sig, body, 1000).is_err());
        assert!(verify_signature(b"s3", "1000", &sig, b"payload=x", 1000).is_err());
        assert!(verify_signature(b"s3", "1000", "v1=00", body, 1000).is_err());
    }

    #[test]
    fn payloads() {
        let json = r#"{"type":"block_actions","user":{"id":"U1","username":"dana"},"actions":[{"action_id":"approve","value":"7"}]}"#;
        let enc: String = json.bytes().map(|b| format!("%{b:02X}")).collect();
        let body = format!("payload={enc}");
        let c = parse_payload(body.as_bytes()).unwrap();
        assert_eq!(
            (c.id, c.allow, c.user.as_str(), c.message_ts),
            (7, true, "dana", None)
        );
        assert!(parse_payload(b"payload=%7B%7D").is_err());
        assert_eq!(form_decode("a+b%2Cc%zz"), "a b,c%zz");
    }
}
