//! The audit log's I/O (DESIGN §7, reference §6.1): the SQLite store, the writer thread the
//! gateway feeds without blocking, and time helpers for the `audit` command. Records, their
//! redaction, hash chain and export are in `clawpatrol_core::audit`.

pub mod schema;
pub mod store;
mod target;
pub mod time;
pub mod writer;

pub use store::{AuditError, AuditStore};
pub use writer::{AuditHandle, AuditWriter};
