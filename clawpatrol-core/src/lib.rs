//! clawpatrol-core: the policy engine of clawpatrol.
//!
//! Load Claw Patrol HCL into a compiled [`Policy`], build an [`Action`] from facts, and
//! [`Policy::decide`] it. No network I/O and no async runtime live here.

pub mod cel;
pub mod config;
pub mod dispatch;
pub mod engine;
pub mod facts;

pub use config::{ConfigError, Diagnostic, Location, Severity};
// ENGINE-EXPORTS
pub use facts::{Action, Facts, Family};
