//! What an approver is asked and what it answers.

use clawpatrol_core::approval::ApprovalInput;
use clawpatrol_core::Action;

/// One action waiting for an approver's decision (reference §5.1).
#[derive(Debug, Clone)]
pub struct ApprovalRequest {
    /// The approver's typed name (`llm_approver.judge`, `human_approver.ops`,
    /// `builtin.dashboard`).
    pub approver: String,
    /// The endpoint's typed name.
    pub endpoint: String,
    /// The rule whose `approve` list this is.
    pub rule: Option<String>,
    /// The rule's `reason` (may be empty).
    pub rule_reason: String,
    /// The decided action (facts), redacted.
    pub action: Action,
    /// The agent's profile.
    pub profile: Option<String>,
    /// The agent's address.
    pub agent_ip: String,
    /// HTTP method / SQL verb / SSH verb.
    pub method: String,
    /// The host the agent addressed.
    pub host: String,
    /// HTTP request target / SQL summary / SSH summary.
    pub path: String,
    /// The agent's `User-Agent`, when it sent one.
    pub user_agent: Option<String>,
    /// The inspected body sample (HTTP), redacted; empty when none.
    pub body_sample: String,
}

impl ApprovalRequest {
    /// The core view of this request (prompt, template and cache-key input).
    pub fn input(&self) -> ApprovalInput<'_> {
        ApprovalInput {
            approver: &self.approver,
            endpoint: &self.endpoint,
            rule: self.rule.as_deref(),
            rule_reason: &self.rule_reason,
            action: &self.action,
            profile: self.profile.as_deref(),
            agent_ip: &self.agent_ip,
            method: &self.method,
            host: &self.host,
            path: &self.path,
            user_agent: self.user_agent.as_deref(),
            body_sample: &self.body_sample,
        }
    }
}

/// An approver's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalVerdict {
    /// Whether the approver allowed the action.
    pub allow: bool,
    /// Why (shown to the agent on a deny).
    pub reason: String,
    /// Who decided: an operator name, `slack:<user>`, `llm:<model>`.
    pub by: String,
    /// The approver's typed name.
    pub approver: String,
    /// The approver's type (`llm_approver`, `human_approver`, `dashboard`).
    pub approver_type: String,
    /// The verdict came from the LLM verdict cache.
    pub cached: bool,
}

impl ApprovalVerdict {
    /// A deny by `approver` with `reason`.
    pub fn deny(approver: &str, approver_type: &str, reason: impl Into<String>) -> ApprovalVerdict {
        ApprovalVerdict {
            allow: false,
            reason: reason.into(),
            by: String::new(),
            approver: approver.to_string(),
            approver_type: approver_type.to_string(),
            cached: false,
        }
    }
}
