//! Chain execution (reference §2.9, §5.1): approvers run in order, all must allow, the first
//! non-allow stops the chain. Nothing reaches the upstream before the chain allows.

use std::time::Duration;

use clawpatrol_core::config::model::{Approver, AttrValue};
use clawpatrol_core::Policy;

use super::pending::HumanDecision;
use super::request::{ApprovalRequest, ApprovalVerdict};
use crate::runtime::Shared;

/// Runs `chain` (typed approver names) for `req`; the verdict of the last approver when all
/// allow, else the first denial.
pub async fn run_chain(
    shared: &Shared,
    policy: &Policy,
    chain: &[String],
    req: &ApprovalRequest,
) -> ApprovalVerdict {
    let mut last = ApprovalVerdict::deny("", "", "approval chain is empty");
    for typed in chain {
        let mut r = req.clone();
        r.approver = typed.clone();
        let mut v = decide_one(shared, policy, typed, &r).await;
        if !v.allow {
            if v.reason.is_empty() {
                v.reason = "denied by approver".to_string();
            }
            return v;
        }
        last = v;
    }
    last
}

/// The approver named `typed` in the policy.
fn find<'p>(policy: &'p Policy, typed: &str) -> Option<&'p Approver> {
    let (kind, name) = typed.split_once('.')?;
    policy
        .config()
        .approvers
        .iter()
        .find(|a| a.kind == kind && a.name == name)
}

async fn decide_one(
    shared: &Shared,
    policy: &Policy,
    typed: &str,
    req: &ApprovalRequest,
) -> ApprovalVerdict {
    let default_timeout = policy.config().defaults.human_timeout_secs;
    if typed == "builtin.dashboard" {
        return human(
            shared,
            "dashboard",
            typed,
            "dashboard",
            req,
            default_timeout,
            String::new(),
            Notify::default(),
        )
        .await;
    }
    let Some(approver) = find(policy, typed) else {
        return ApprovalVerdict::deny(typed, "", format!("approver {typed} not found"));
    };
    match approver.kind.as_str() {
        "human_approver" => {
            let timeout = match approver.attrs.get("timeout") {
                Some(AttrValue::Int(n)) if *n > 0 => u64::try_from(*n).unwrap_or(default_timeout),
                _ => default_timeout,
            };
            let message = match approver.attrs.get("message") {
                Some(AttrValue::Str(t)) => {
                    clawpatrol_core::approval::render_message(t, &req.input())
                }
                _ => String::new(),
            };
            let slack = super::slack::approver_credential(policy, approver).map(|c| SlackTarget {
                credential: c.name.clone(),
                channel: match approver.attrs.get("channel") {
                    Some(AttrValue::Str(ch)) => ch.clone(),
                    _ => String::new(),
                },
                interactive: !matches!(
                    approver.attrs.get("interactive"),
                    Some(AttrValue::Bool(false))
                ),
                public_url: policy
                    .config()
                    .gateway
                    .as_ref()
                    .and_then(|g| g.public_url.clone()),
            });
            let webhook = match approver.attrs.get("webhook_url") {
                Some(AttrValue::Str(url)) => Some(WebhookTarget {
                    url: url.clone(),
                    key: webhook_key(shared, policy, approver),
                    public_url: policy
                        .config()
                        .gateway
                        .as_ref()
                        .and_then(|g| g.public_url.clone()),
                }),
                _ => None,
            };
            human(
                shared,
                &approver.name,
                typed,
                "human_approver",
                req,
                timeout,
                message,
                Notify { slack, webhook },
            )
            .await
        }
        "llm_approver" => {
            shared
                .approvals
                .llm
                .decide(shared, policy, approver, req)
                .await
        }
        other => ApprovalVerdict::deny(
            typed,
            other,
            format!("approver {typed} has unknown type `{other}`"),
        ),
    }
}

/// Go's `time.Duration` spelling of whole seconds (`2s`, `1m30s`, `10m0s`, `1h0m0s`).
pub fn go_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// The notifications of a human approver.
#[derive(Default)]
struct Notify {
    slack: Option<SlackTarget>,
    webhook: Option<WebhookTarget>,
}

/// Where a human approver's webhook goes.
struct WebhookTarget {
    url: String,
    /// The signing key (primary secret of the approver's credential); `None` when missing.
    key: Option<Vec<u8>>,
    public_url: Option<String>,
}

/// The webhook signing key: the primary secret of the approver's `credential`.
pub fn webhook_key(shared: &Shared, policy: &Policy, approver: &Approver) -> Option<Vec<u8>> {
    let AttrValue::Str(name) = approver.attrs.get("credential")? else {
        return None;
    };
    if !policy.config().credentials.iter().any(|c| c.name == *name) {
        return None;
    }
    shared
        .secrets
        .get(name)
        .ok()
        .flatten()
        .map(|s| s.primary)
        .filter(|k| !k.is_empty())
}

/// Where a human approver's Slack message goes.
struct SlackTarget {
    credential: String,
    channel: String,
    interactive: bool,
    public_url: Option<String>,
}

/// Parks the action for an operator and waits for the first decision or the timeout.
#[allow(clippy::too_many_arguments)]
async fn human(
    shared: &Shared,
    name: &str,
    typed: &str,
    approver_type: &str,
    req: &ApprovalRequest,
    timeout_secs: u64,
    message: String,
    notify: Notify,
) -> ApprovalVerdict {
    let slack = notify.slack;
    let now = u64::try_from(crate::runtime::now_ns() / 1_000_000_000).unwrap_or(0);
    let parked =
        shared
            .approvals
            .pending
            .park(req, message.clone(), now, now.saturating_add(timeout_secs));
    tracing::info!(
        id = parked.id,
        approver = typed,
        endpoint = %req.endpoint,
        method = %req.method,
        host = %req.host,
        path = %req.path,
        "approval pending: `clawpatrol approvals approve {}` or `… deny {}`",
        parked.id,
        parked.id
    );
    let id = parked.id;
    let mut parked = parked;
    let view = shared.approvals.pending.get(id);
    let post = async {
        if let Some(t) = &slack {
            let (text, blocks) =
                super::slack::blocks(id, req, &message, t.interactive, t.public_url.as_deref());
            shared
                .approvals
                .slack
                .post(shared, &t.credential, &t.channel, id, text, blocks)
                .await;
        }
        if let (Some(w), Some(view)) = (&notify.webhook, &view) {
            match &w.key {
                Some(key) => {
                    let base = w.public_url.clone().or_else(|| {
                        std::fs::read_to_string(shared.state.management_addr_path())
                            .ok()
                            .map(|a| format!("http://{}", a.trim()))
                    });
                    let callback = base.map(|b| format!("{b}/api/approvals/{id}/callback"));
                    super::webhook::notify(shared, &w.url, key, view, callback).await;
                }
                None => tracing::error!(
                    approver = typed,
                    "webhook_url is set but the approver's credential has no secret to sign with; not notifying"
                ),
            }
        }
    };
    let wait = tokio::time::timeout(Duration::from_secs(timeout_secs), &mut parked.rx);
    let ((), outcome) = tokio::join!(post, wait);
    drop(parked);
    let verdict = |d: HumanDecision| ApprovalVerdict {
        allow: d.allow,
        reason: if d.allow || !d.reason.is_empty() {
            d.reason
        } else {
            format!(
                "denied by {}",
                if d.by.is_empty() {
                    "an operator"
                } else {
                    d.by.as_str()
                }
            )
        },
        by: d.by,
        approver: typed.to_string(),
        approver_type: approver_type.to_string(),
        cached: false,
    };
    let v = match outcome {
        Ok(Ok(d)) => {
            tracing::info!(id, approver = typed, allow = d.allow, by = %d.by, "approval decided");
            verdict(d)
        }
        Ok(Err(_)) => ApprovalVerdict::deny(
            typed,
            approver_type,
            "approval was cancelled; upstream request was not sent",
        ),
        Err(_) => ApprovalVerdict::deny(
            typed,
            approver_type,
            format!(
                "approver \"{name}\" timed out after {}; upstream request was not sent",
                go_duration(timeout_secs)
            ),
        ),
    };
    if slack.is_some() {
        let status = match (v.allow, v.by.is_empty()) {
            (true, false) => format!("✅ approved by {}", v.by),
            (true, true) => "✅ approved".to_string(),
            (false, false) => format!("❌ denied by {}: {}", v.by, v.reason),
            (false, true) => format!("❌ {}", v.reason),
        };
        shared.approvals.slack.update(shared, id, status);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(2), "2s");
        assert_eq!(go_duration(90), "1m30s");
        assert_eq!(go_duration(600), "10m0s");
        assert_eq!(go_duration(3600), "1h0m0s");
    }
}
