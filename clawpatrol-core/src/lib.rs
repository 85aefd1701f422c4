#![doc = include_str!("../README.md")]

pub mod approval;
pub mod audit;
pub mod cel;
pub mod config;
pub mod dispatch;
pub mod engine;
pub mod facts;
pub mod inject;
pub mod quote;

pub use config::{ConfigError, Diagnostic, Location, Severity};
pub use engine::{Decision, Policy, StepResult, Trace, TraceStep, Verdict};
pub use facts::{Action, Facts, Family};
