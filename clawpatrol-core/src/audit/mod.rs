//! Audit records (reference §6, DESIGN §7): the row the gateway writes for every action, its
//! redaction, the tamper-evident hash chain, and export back to fixtures. No I/O here; the
//! store lives in the proxy.

pub mod chain;
pub mod export;
pub mod extra;
pub mod record;
pub mod redact;

pub use chain::{
    content_hash, content_hash_with, seal, seal_with, verify_chain, ChainError, ChainVerifier,
    JsonFields,
};
pub use export::{to_fixture, ExportError, ExportedFixture};
pub use extra::record_extra;
pub use record::AuditRecord;
pub use redact::{body_sample, redact_action, redact_headers, redact_text};
