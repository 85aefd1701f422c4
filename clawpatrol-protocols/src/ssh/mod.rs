//! SSH connection-protocol payloads the gateway gates (RFC 4254, reference §3.6, §4.4.4):
//! `SSH_MSG_CHANNEL_OPEN` and `SSH_MSG_CHANNEL_REQUEST`, decoded from a decrypted message
//! payload (message number included) and encoded back.
//!
//! Transport (key exchange, encryption, packet framing) is the SSH library's job in the
//! proxy; this module sees one payload at a time and refuses payloads over its maximum.

pub mod channel;
pub mod wire;

pub use channel::{
    decode_payload, ChannelMessage, ChannelOpen, ChannelRequest, OpenKind, PtyRequest, RequestKind,
};

use thiserror::Error;

/// Largest payload decoded by default: 256 KiB (RFC 4253 requires 32 KiB packets; OpenSSH
/// allows 256 KiB).
pub const DEFAULT_MAX_PAYLOAD: usize = 256 << 10;

/// `SSH_MSG_CHANNEL_OPEN`.
pub const MSG_CHANNEL_OPEN: u8 = 90;
/// `SSH_MSG_CHANNEL_OPEN_FAILURE`.
pub const MSG_CHANNEL_OPEN_FAILURE: u8 = 92;
/// `SSH_MSG_CHANNEL_REQUEST`.
pub const MSG_CHANNEL_REQUEST: u8 = 98;
/// `SSH_MSG_CHANNEL_FAILURE`.
pub const MSG_CHANNEL_FAILURE: u8 = 100;
/// `SSH_OPEN_ADMINISTRATIVELY_PROHIBITED`.
pub const OPEN_ADMINISTRATIVELY_PROHIBITED: u32 = 1;

/// Errors of the SSH payload codec.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SshError {
    /// The payload is larger than the decoder's maximum.
    #[error("payload of {len} bytes over the limit of {max} bytes")]
    TooLarge {
        /// Payload length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// The payload is empty.
    #[error("empty payload")]
    Empty,
    /// The message number is not one this module decodes.
    #[error("unsupported message number {0}")]
    UnsupportedMessage(u8),
    /// A field ran past the end of the payload.
    #[error("truncated {what}")]
    Truncated {
        /// Field name.
        what: &'static str,
    },
    /// A name field is not UTF-8.
    #[error("{what} is not valid UTF-8")]
    InvalidUtf8 {
        /// Field name.
        what: &'static str,
    },
    /// Bytes were left after the last field.
    #[error("{n} trailing bytes after {msg}")]
    TrailingBytes {
        /// Message name.
        msg: &'static str,
        /// Number of extra bytes.
        n: usize,
    },
}

/// Encodes `SSH_MSG_CHANNEL_OPEN_FAILURE` "administratively prohibited" with `reason`
/// (the deny of a `direct-tcpip` open, reference §2.11).
pub fn encode_open_prohibited(
    recipient_channel: u32,
    reason: &str,
    out: &mut Vec<u8>,
) -> Result<(), SshError> {
    out.push(MSG_CHANNEL_OPEN_FAILURE);
    wire::put_u32(out, recipient_channel);
    wire::put_u32(out, OPEN_ADMINISTRATIVELY_PROHIBITED);
    wire::put_string(out, reason.as_bytes())?;
    wire::put_string(out, b"")
}

/// Encodes `SSH_MSG_CHANNEL_FAILURE` (the deny of a channel request).
pub fn encode_channel_failure(recipient_channel: u32, out: &mut Vec<u8>) {
    out.push(MSG_CHANNEL_FAILURE);
    wire::put_u32(out, recipient_channel);
}
