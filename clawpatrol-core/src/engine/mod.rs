//! The compiled policy and `decide()`.

pub mod decide;
pub mod decision;
pub mod policy;

pub use decide::{backstop_reason, frame_decision, unevaluable_reason};
pub use decision::{Decision, StepResult, Trace, TraceStep, Verdict};
pub use policy::Policy;
