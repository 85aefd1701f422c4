//! Frames the gateway sends the agent when it denies: §2.11 of the behaviour reference.

use super::backend::{BackendMessage, ErrorFields, TransactionStatus};

/// SQLSTATE `insufficient_privilege`, used for per-statement denials.
pub const SQLSTATE_INSUFFICIENT_PRIVILEGE: &str = "42501";
/// SQLSTATE `invalid_authorization_specification`, used for pre-auth failures.
pub const SQLSTATE_INVALID_AUTHORIZATION: &str = "28000";
/// Deny reason for a FunctionCall (`F`) message, which carries no SQL text.
pub const FUNCTION_CALL_DENY_REASON: &str =
    "FunctionCall (legacy fast-path) blocked — no SQL text to inspect";

/// An ErrorResponse with fields `S`, `V` (both `severity`), `C` and `M`; NULs in text are dropped.
pub fn error_response(severity: &str, code: &str, message: &str) -> BackendMessage {
    let clean = |s: &str| s.replace('\0', "");
    BackendMessage::ErrorResponse(ErrorFields(vec![
        (b'S', clean(severity)),
        (b'V', clean(severity)),
        (b'C', clean(code)),
        (b'M', clean(message)),
    ]))
}

/// Appends a post-auth statement deny: `ErrorResponse(ERROR, 42501, reason)` + `ReadyForQuery(I)`.
pub fn deny_statement_into(reason: &str, out: &mut Vec<u8>) {
    push(
        &error_response("ERROR", SQLSTATE_INSUFFICIENT_PRIVILEGE, reason),
        out,
    );
    push(&BackendMessage::ReadyForQuery(TransactionStatus::Idle), out);
}

/// The bytes of a post-auth statement deny: ErrorResponse (42501) followed by ReadyForQuery(I).
pub fn deny_statement(reason: &str) -> Vec<u8> {
    let mut out = Vec::new();
    deny_statement_into(reason, &mut out);
    out
}

/// The bytes of a pre-auth failure: `ErrorResponse(FATAL, 28000, message)`; close afterwards.
pub fn fatal_auth_error(message: &str) -> Vec<u8> {
    let mut out = Vec::new();
    push(
        &error_response("FATAL", SQLSTATE_INVALID_AUTHORIZATION, message),
        &mut out,
    );
    out
}

fn push(msg: &BackendMessage, out: &mut Vec<u8>) {
    // Infallible for these messages: NULs were removed and sizes are bounded by the input.
    let mut buf = Vec::new();
    if msg.encode(&mut buf).is_ok() {
        out.extend_from_slice(&buf);
    }
}
