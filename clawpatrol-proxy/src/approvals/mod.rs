//! The approval runtime (reference §2.9, §5): `approve = [...]` chains run here, before
//! anything reaches the upstream, for every gateway path.

pub mod request;

pub use request::{ApprovalRequest, ApprovalVerdict};
