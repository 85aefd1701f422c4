//! Claw Patrol HCL: parse, strictly decode and reference-check a config (reference §1).

mod decode;
pub mod diag;
pub mod duration;
mod files;
mod gateway;
pub mod host;
pub mod load;
pub mod model;
mod policy;
mod refs;
pub mod size;
pub mod source;
mod types;
mod validate;
mod value;

pub use diag::{ConfigError, Diagnostic, Location, Severity};
pub use load::{load_path, load_source, Loaded};
pub use model::Config;
