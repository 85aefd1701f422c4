//! HTTP/1.1: incremental head parsers, RFC 9112 body framing, a streaming body decoder with a
//! capped inspection view, request facts extraction and response-header sanitising.
//!
//! Everything here is sans-IO: the caller owns the sockets and feeds bytes in; the parsers
//! answer "need more", a complete item, or an error, and never allocate past their limits.

mod body;
mod facts;
mod head;
mod redact;

pub use body::{
    request_framing, response_framing, BodyDecoder, BodyFraming, BodyProgress, InspectedBody,
};
pub use facts::{percent_decode_path, query_map, split_target, RequestParts};
pub use head::{
    parse_request_head, parse_response_head, HeadProgress, RequestHead, RequestHeadParser,
    ResponseHead, ResponseHeadParser, TargetForm, Version,
};
pub use redact::{
    is_credential_response_header, strip_credential_headers, strip_credential_trailers,
};

/// Size limits of the HTTP parsers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum size of a request or response head (start line + headers + blank line).
    pub max_head_bytes: usize,
    /// Maximum number of header fields in a head (and in a chunked trailer section).
    pub max_headers: usize,
    /// Maximum decoded body bytes kept for inspection (`limits.body_buffer`).
    pub body_buffer: usize,
}

impl Limits {
    /// Default maximum head size: 64 KiB.
    pub const DEFAULT_MAX_HEAD_BYTES: usize = 64 * 1024;
    /// Default maximum header count: 100.
    pub const DEFAULT_MAX_HEADERS: usize = 100;
    /// Default inspection buffer: 1 MiB.
    pub const DEFAULT_BODY_BUFFER: usize = 1024 * 1024;
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_head_bytes: Limits::DEFAULT_MAX_HEAD_BYTES,
            max_headers: Limits::DEFAULT_MAX_HEADERS,
            body_buffer: Limits::DEFAULT_BODY_BUFFER,
        }
    }
}

/// Why HTTP bytes were refused. Every variant means "do not forward": fail closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The head did not end within the size limit.
    #[error("http head exceeds {limit} bytes")]
    HeadTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The head has more header fields than allowed.
    #[error("http head has more than {limit} header fields")]
    TooManyHeaders {
        /// The configured limit.
        limit: usize,
    },
    /// The head is not valid HTTP/1.x.
    #[error("malformed http head: {0}")]
    MalformedHead(String),
    /// A message carries both `Content-Length` and `Transfer-Encoding` (a smuggling shape).
    #[error("message has both content-length and transfer-encoding")]
    LengthAndTransferEncoding,
    /// A `Content-Length` value is not a decimal number.
    #[error("invalid content-length `{0}`")]
    InvalidContentLength(String),
    /// Several `Content-Length` values disagree.
    #[error("differing content-length values")]
    DifferingContentLengths,
    /// The `Transfer-Encoding` of a request does not end in `chunked`, or repeats `chunked`.
    #[error("unsupported transfer-encoding `{0}`")]
    UnsupportedTransferEncoding(String),
    /// An HTTP/1.0 request carries `Transfer-Encoding`, whose framing is then faulty.
    #[error("transfer-encoding on an http/1.0 request")]
    TransferEncodingOnHttp10,
    /// The chunked encoding is malformed.
    #[error("malformed chunked body: {0}")]
    MalformedChunk(&'static str),
    /// The chunked trailer section exceeds the head limits.
    #[error("chunked trailer section exceeds {limit} bytes or header fields")]
    TrailersTooLarge {
        /// The configured byte limit.
        limit: usize,
    },
    /// The connection closed before the body was complete.
    #[error("connection closed before the body was complete")]
    IncompleteBody,
}
