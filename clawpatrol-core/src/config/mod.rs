//! Claw Patrol HCL: parse, strictly decode and reference-check a config (reference §1).

pub mod diag;
pub mod host;
pub mod model;
pub mod source;

pub use diag::{ConfigError, Diagnostic, Location, Severity};
pub use model::Config;
