//! The approval runtime (reference §2.9, §5): `approve = [...]` chains run here, before
//! anything reaches the upstream, for every gateway path.

pub mod api;
pub mod chain;
pub mod llm;
pub mod pending;
pub mod request;
pub mod slack;
pub mod webhook;

pub use chain::run_chain;
pub use llm::{LlmEnv, LlmError, LlmLimits, LlmRuntime};
pub use pending::{HumanDecision, PendingPool, PendingView};
pub use request::{ApprovalRequest, ApprovalVerdict};

/// Approval state shared by every connection.
#[derive(Default)]
pub struct Approvals {
    /// Actions waiting for a human.
    pub pending: PendingPool,
    /// Slack messages posted for pending approvals.
    pub slack: slack::SlackMessages,
    /// LLM verdict cache, concurrency limits and circuit breakers (survive reloads).
    pub llm: LlmRuntime,
    /// The management API bearer token, read once at start.
    management_token: String,
}

impl Approvals {
    /// Empty state; `management_token` authenticates the management API.
    pub fn new(management_token: String) -> Approvals {
        Approvals {
            pending: PendingPool::new(),
            slack: slack::SlackMessages::default(),
            llm: LlmRuntime::new(),
            management_token,
        }
    }

    /// Whether `token` is the management token (constant-time comparison).
    pub fn check_token(&self, token: &str) -> bool {
        use subtle::ConstantTimeEq;
        !self.management_token.is_empty()
            && bool::from(self.management_token.as_bytes().ct_eq(token.as_bytes()))
    }
}
