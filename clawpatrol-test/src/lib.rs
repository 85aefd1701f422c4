//! clawpatrol-test: the fixture format and replay runner behind `clawpatrol test`.
//!
//! The runner is built by its own work item on top of `clawpatrol_core::Policy`; this crate
//! re-exports the engine types the runner is written against.

pub use clawpatrol_core::Action;
