//! Postgres v3 wire protocol: sans-IO frame codec (both directions), SCRAM-SHA-256 and MD5
//! client auth, and the deny frames the gateway writes to the agent.
//!
//! Decoders are fed bytes and yield complete messages or "need more"; they never block and
//! never panic on any input. Each has a payload limit: an oversize frame is an error, or,
//! when streaming is on, its header is reported before any of its body is buffered and the body
//! follows in chunks (the gateway streams or drains Q/P frames over the inspection cap).

pub mod backend;
pub mod codec;
pub mod deny;
pub mod frontend;
pub mod md5;
pub mod options;
pub mod scan;
pub mod scram;

pub use backend::{
    Authentication, BackendDecoder, BackendMessage, BackendMode, CopyFormat, ErrorFields,
    FieldDescription, TransactionStatus,
};
pub use codec::{Decoded, FrameHeader, PgError, DEFAULT_MAX_PAYLOAD_LEN};
pub use deny::{
    deny_statement, deny_statement_into, error_response, fatal_auth_error,
    FUNCTION_CALL_DENY_REASON,
};
pub use frontend::{
    AuthResponseKind, FrontendDecoder, FrontendMessage, FrontendPhase, ProtocolVersion, Target,
};
pub use md5::md5_password;
pub use options::{
    is_setting_name, options_string, parse_options, setting_statement, split_options, OptionsError,
};
pub use scan::{FrameScanner, ParameterStatus, ScanEvent, MAX_STATUS};
pub use scram::{ScramClient, ScramClientFinal, ScramError};
