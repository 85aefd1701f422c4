//! clawpatrol-test: the fixture format, replay runner and report behind `clawpatrol test`,
//! plus the policy tooling built on it (`lint`, `diff`).

pub mod cli;
pub mod coverage;
pub mod diff;
pub mod discover;
pub mod fixture;
pub mod lint;
pub mod replay;
pub mod report;
pub mod runner;
pub mod sql;

pub use fixture::{Expect, Fixture, FixtureError};
pub use replay::{Outcome, Produced};
pub use report::Replayed;
