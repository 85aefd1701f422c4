//! The approval runtime (reference §2.9, §5): `approve = [...]` chains run here, before
//! anything reaches the upstream, for every gateway path.

pub mod llm;
pub mod request;

pub use llm::{LlmEnv, LlmError, LlmLimits, LlmRuntime};
pub use request::{ApprovalRequest, ApprovalVerdict};
