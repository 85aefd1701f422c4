//! Approval semantics that need no socket (reference §5): the LLM judge's prompt, reply
//! parsing, provider wire formats, the verdict cache and circuit breaker, and the `message`
//! template of human approvers. The proxy does the I/O and the waiting.

pub mod breaker;
pub mod cache;
pub mod classify;
pub mod prompt;
pub mod provider;
pub mod reply;
pub mod template;

pub use breaker::CircuitBreaker;
pub use cache::{cache_key, CachedVerdict, VerdictCache};
pub use classify::{
    classifier_user_prompt, parse_classification, Classification, CLASSIFIER_SYSTEM_PROMPT,
};
pub use prompt::{judge_user_prompt, policy_text, JUDGE_SYSTEM_PROMPT};
pub use provider::{BaseUrl, LlmApproverConfig, Provider, ProviderError, Target};
pub use reply::{parse_judge_reply, JudgeReply, ReplyKind};
pub use template::{render_message, template_vars};

use crate::facts::Action;

/// What an approver is shown about one action: the decided (redacted) action and the
/// request strings of reference §5.1. The proxy builds it from its `ApprovalRequest`.
#[derive(Debug, Clone, Copy)]
pub struct ApprovalInput<'a> {
    /// The approver's typed name (`llm_approver.judge`).
    pub approver: &'a str,
    /// The endpoint's typed name (`https.github`).
    pub endpoint: &'a str,
    /// The rule whose `approve` list is running.
    pub rule: Option<&'a str>,
    /// The rule's `reason` (may be empty).
    pub rule_reason: &'a str,
    /// The decided action, redacted.
    pub action: &'a Action,
    /// The agent's profile name.
    pub profile: Option<&'a str>,
    /// The agent's address.
    pub agent_ip: &'a str,
    /// HTTP method / SQL verb / SSH verb.
    pub method: &'a str,
    /// The host the agent addressed.
    pub host: &'a str,
    /// HTTP request target / SQL summary / SSH summary.
    pub path: &'a str,
    /// The agent's `User-Agent`, when it sent one.
    pub user_agent: Option<&'a str>,
    /// The inspected body sample (HTTP), redacted; empty when none.
    pub body_sample: &'a str,
}

/// `s` cut to at most `max` characters after trimming whitespace, with `…` appended when cut
/// (the reference's `truncate`, counted in characters so UTF-8 is never split).
pub fn truncate_chars(s: &str, max: usize) -> String {
    let s = s.trim();
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_counts_characters_and_trims() {
        assert_eq!(truncate_chars("  abc \n", 3), "abc");
        assert_eq!(truncate_chars("abcd", 3), "abc…");
        assert_eq!(truncate_chars("ééééé", 2), "éé…");
        assert_eq!(truncate_chars("", 2), "");
    }
}
