//! What `decide()` returns: verdict, rule, endpoint, reason and an optional trace.

use std::fmt;
use std::sync::Arc;

/// The outcome for one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Forward (with credential injection).
    Allow,
    /// Refuse; `Decision::agent_reason` is what the agent is told.
    Deny,
    /// Run these approvers in order (typed references, e.g. `human_approver.ops`,
    /// `builtin.dashboard`); all must allow. No I/O happens here.
    Approve(Vec<String>),
    /// No endpoint claims the action: relay it unchanged, no rules, no injection.
    Passthrough,
}

impl Verdict {
    /// The fixture spelling: `allow`, `deny`, `approve`, `passthrough`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::Approve(_) => "approve",
            Verdict::Passthrough => "passthrough",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of `Policy::decide`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The verdict.
    pub verdict: Verdict,
    /// The rule that decided; `None` when no rule matched (or a backstop decided).
    pub rule: Option<Arc<str>>,
    /// The typed endpoint name (`https.github`) the action was decided on.
    pub endpoint: Option<Arc<str>>,
    /// The rule's reason, or the synthesized reason of a fail-closed deny; may be empty.
    pub reason: String,
    /// The deny was synthesized by the engine (unevaluable rule, backstop, bad action).
    pub synthesized: bool,
    /// Detail for the gateway log only (CEL error text, unknown field paths); never shown
    /// to the agent.
    pub log_detail: Option<String>,
    /// The rules evaluated, in order, when a trace was requested.
    pub trace: Option<Trace>,
}

impl Decision {
    /// The text the agent sees on a deny: the reason, or `denied by policy` when empty.
    pub fn agent_reason(&self) -> &str {
        if self.reason.is_empty() {
            "denied by policy"
        } else {
            &self.reason
        }
    }

    /// True when the verdict lets the action through without approval.
    pub fn is_allowed(&self) -> bool {
        matches!(self.verdict, Verdict::Allow | Verdict::Passthrough)
    }
}

/// The rules evaluated for one decision, in walk order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Trace {
    /// One step per rule considered.
    pub steps: Vec<TraceStep>,
}

/// One rule considered during the walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceStep {
    /// The rule name.
    pub rule: Arc<str>,
    /// Its priority.
    pub priority: i64,
    /// What happened.
    pub result: StepResult,
}

/// What one rule did during the walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepResult {
    /// `disabled = true`: skipped.
    Disabled,
    /// The rule's `credential` pin did not match the dispatched credential.
    CredentialMismatch {
        /// The pinned credential.
        want: String,
        /// The action's credential.
        got: String,
    },
    /// No condition: matches everything.
    CatchAll,
    /// The condition was true.
    Matched,
    /// The condition was false.
    NoMatch,
    /// The condition could not be evaluated; the walk stops with a synthesized deny.
    Unevaluable {
        /// The coarse cause shown to the agent.
        cause: String,
        /// The detail (log only).
        detail: String,
    },
}

impl fmt::Display for StepResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepResult::Disabled => f.write_str("skipped (disabled)"),
            StepResult::CredentialMismatch { want, got } => {
                write!(f, "skipped (credential `{got}` is not the pinned `{want}`)")
            }
            StepResult::CatchAll => f.write_str("matched (no condition)"),
            StepResult::Matched => f.write_str("matched"),
            StepResult::NoMatch => f.write_str("no match"),
            StepResult::Unevaluable { cause, detail } => {
                write!(f, "unevaluable ({cause}): {detail}")
            }
        }
    }
}

impl Decision {
    /// The JSON form: `{"verdict", "rule", "endpoint", "reason", "approvers"?, "synthesized",
    /// "trace"?}`; `rule`/`endpoint` are `""` when absent, as in fixtures.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "verdict": self.verdict.as_str(),
            "rule": self.rule.as_deref().unwrap_or(""),
            "endpoint": self.endpoint.as_deref().unwrap_or(""),
            "reason": self.reason,
            "synthesized": self.synthesized,
        });
        if let Verdict::Approve(chain) = &self.verdict {
            v["approvers"] = serde_json::json!(chain);
        }
        if let Some(t) = &self.trace {
            v["trace"] = t
                .steps
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "rule": &*s.rule,
                        "priority": s.priority,
                        "result": s.result.to_string(),
                    })
                })
                .collect();
        }
        v
    }
}

impl Decision {
    /// A human-readable account: the verdict, the deciding rule, the endpoint and the reason,
    /// then one line per rule evaluated (when the decision carries a trace).
    pub fn explain(&self) -> String {
        use std::fmt::Write as _;
        let rule = self
            .rule
            .as_deref()
            .map_or("no rule".to_string(), |r| format!("rule `{r}`"));
        let mut out = format!(
            "{} by {rule} on {}",
            self.verdict,
            self.endpoint.as_deref().unwrap_or("no endpoint")
        );
        if !self.reason.is_empty() {
            let _ = write!(out, ": {}", self.reason);
        }
        for s in self.trace.iter().flat_map(|t| &t.steps) {
            let _ = write!(
                out,
                "\n  rule `{}` (priority {}): {}",
                s.rule, s.priority, s.result
            );
        }
        out
    }
}
