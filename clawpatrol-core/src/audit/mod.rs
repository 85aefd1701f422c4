//! Audit records (reference §6, DESIGN §7): the row the gateway writes for every action, its
//! redaction, the tamper-evident hash chain, and export back to fixtures. No I/O here; the
//! store lives in the proxy.

pub mod record;

pub use record::AuditRecord;
