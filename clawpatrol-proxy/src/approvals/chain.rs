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
            human(
                shared,
                &approver.name,
                typed,
                "human_approver",
                req,
                timeout,
                message,
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

/// Parks the action for an operator and waits for the first decision or the timeout.
async fn human(
    shared: &Shared,
    name: &str,
    typed: &str,
    approver_type: &str,
    req: &ApprovalRequest,
    timeout_secs: u64,
    message: String,
) -> ApprovalVerdict {
    let now = u64::try_from(crate::runtime::now_ns() / 1_000_000_000).unwrap_or(0);
    let parked = shared
        .approvals
        .pending
        .park(req, message, now, now.saturating_add(timeout_secs));
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
    let outcome = tokio::time::timeout(Duration::from_secs(timeout_secs), &mut parked.rx).await;
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
    match outcome {
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
    }
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
