//! Request and response heads: incremental parsing with size and header-count limits.

use super::{HttpError, Limits};

/// The HTTP/1.x version of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `HTTP/1.0`.
    Http10,
    /// `HTTP/1.1`.
    Http11,
}

impl Version {
    fn from_minor(minor: u8) -> Version {
        if minor == 0 {
            Version::Http10
        } else {
            Version::Http11
        }
    }

    /// The version as it appears on the wire (`HTTP/1.1`).
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// The form of a request-target (RFC 9112 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetForm {
    /// `/path?query`.
    Origin,
    /// `http://host/path?query`, as sent to a forward proxy.
    Absolute,
    /// `host:port`, the target of `CONNECT`.
    Authority,
    /// `*`, as in `OPTIONS *`.
    Asterisk,
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The request method, as sent (case-sensitive).
    pub method: String,
    /// The raw request-target.
    pub target: String,
    /// The protocol version.
    pub version: Version,
    /// Header fields in wire order: name as sent, raw value bytes.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Length of the head in bytes, including the terminating blank line.
    pub head_len: usize,
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The protocol version.
    pub version: Version,
    /// The status code.
    pub status: u16,
    /// The reason phrase (may be empty).
    pub reason: String,
    /// Header fields in wire order: name as sent, raw value bytes.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Length of the head in bytes, including the terminating blank line.
    pub head_len: usize,
}

/// Iterates over the values of the header `name` (case-insensitive) in wire order.
fn values<'a>(
    headers: &'a [(String, Vec<u8>)],
    name: &'a str,
) -> impl Iterator<Item = &'a [u8]> + 'a {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

/// Whether a comma-separated header `name` lists `token` (case-insensitive).
fn lists_token(headers: &[(String, Vec<u8>)], name: &str, token: &str) -> bool {
    values(headers, name).any(|v| {
        v.split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

impl RequestHead {
    /// All values of header `name` (case-insensitive), in wire order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        values(&self.headers, name)
    }

    /// The form of the request-target.
    pub fn target_form(&self) -> TargetForm {
        if self.method == "CONNECT" {
            TargetForm::Authority
        } else if self.target == "*" {
            TargetForm::Asterisk
        } else if self.target.starts_with('/') {
            TargetForm::Origin
        } else if self.target.contains("://") {
            TargetForm::Absolute
        } else {
            TargetForm::Authority
        }
    }

    /// Whether the client sent `Expect: 100-continue` and waits for an interim response.
    pub fn expects_continue(&self) -> bool {
        self.version == Version::Http11
            && self
                .header_values("expect")
                .any(|v| v.trim_ascii().eq_ignore_ascii_case(b"100-continue"))
    }

    /// Whether this is a WebSocket upgrade (`Connection: upgrade` and `Upgrade: websocket`).
    pub fn is_websocket_upgrade(&self) -> bool {
        lists_token(&self.headers, "connection", "upgrade")
            && lists_token(&self.headers, "upgrade", "websocket")
    }

    /// Whether the body is buffered for inspection (reference §3.1): POST, PUT, PATCH, or a
    /// request carrying the async-retry header `Clawpatrol-HITL-Operation`.
    pub fn body_is_inspected(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH")
            || self
                .header_values("clawpatrol-hitl-operation")
                .next()
                .is_some()
    }
}

impl ResponseHead {
    /// All values of header `name` (case-insensitive), in wire order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        values(&self.headers, name)
    }

    /// Serialises the head (status line, headers, blank line) with CRLF line endings.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.head_len.max(64));
        out.extend_from_slice(self.version.as_str().as_bytes());
        out.extend_from_slice(format!(" {:03} ", self.status).as_bytes());
        out.extend_from_slice(self.reason.as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// The answer of a head parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadProgress<T> {
    /// The head is not complete yet; feed more bytes.
    NeedMore,
    /// The head is complete.
    Complete {
        /// The parsed head.
        head: T,
        /// How many bytes of the last `feed` belong to the head; the rest follows it.
        consumed: usize,
    },
}

fn map_err(e: httparse::Error, limits: &Limits) -> HttpError {
    match e {
        httparse::Error::TooManyHeaders => HttpError::TooManyHeaders {
            limit: limits.max_headers,
        },
        other => HttpError::MalformedHead(other.to_string().to_ascii_lowercase()),
    }
}

fn collect_headers(headers: &[httparse::Header<'_>]) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .map(|h| (h.name.to_string(), h.value.to_vec()))
        .collect()
}

/// Parses a request head from the start of `buf` (stateless). `Ok(None)` means incomplete.
pub fn parse_request_head(buf: &[u8], limits: &Limits) -> Result<Option<RequestHead>, HttpError> {
    let window = &buf[..buf.len().min(limits.max_head_bytes)];
    let mut slots = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut req = httparse::Request::new(&mut slots);
    match req.parse(window).map_err(|e| map_err(e, limits))? {
        httparse::Status::Complete(head_len) => Ok(Some(RequestHead {
            method: req.method.unwrap_or_default().to_string(),
            target: req.path.unwrap_or_default().to_string(),
            version: Version::from_minor(req.version.unwrap_or(1)),
            headers: collect_headers(req.headers),
            head_len,
        })),
        httparse::Status::Partial if window.len() >= limits.max_head_bytes => {
            Err(HttpError::HeadTooLarge {
                limit: limits.max_head_bytes,
            })
        }
        httparse::Status::Partial => Ok(None),
    }
}

/// Parses a response head from the start of `buf` (stateless). `Ok(None)` means incomplete.
pub fn parse_response_head(buf: &[u8], limits: &Limits) -> Result<Option<ResponseHead>, HttpError> {
    let window = &buf[..buf.len().min(limits.max_head_bytes)];
    let mut slots = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut res = httparse::Response::new(&mut slots);
    match res.parse(window).map_err(|e| map_err(e, limits))? {
        httparse::Status::Complete(head_len) => Ok(Some(ResponseHead {
            version: Version::from_minor(res.version.unwrap_or(1)),
            status: res.code.unwrap_or_default(),
            reason: res.reason.unwrap_or_default().to_string(),
            headers: collect_headers(res.headers),
            head_len,
        })),
        httparse::Status::Partial if window.len() >= limits.max_head_bytes => {
            Err(HttpError::HeadTooLarge {
                limit: limits.max_head_bytes,
            })
        }
        httparse::Status::Partial => Ok(None),
    }
}

/// Whether `buf` holds an empty line (end of a head) at or after `from`.
fn has_blank_line(buf: &[u8], from: usize) -> bool {
    let start = from.saturating_sub(2);
    let tail = &buf[start..];
    tail.windows(2).any(|w| w == b"\n\n") || tail.windows(3).any(|w| w == b"\n\r\n")
}

/// Shared incremental buffering of a head: keeps at most `max_head_bytes`.
#[derive(Debug, Clone)]
struct HeadBuffer {
    limits: Limits,
    buf: Vec<u8>,
}

impl HeadBuffer {
    fn feed<T>(
        &mut self,
        bytes: &[u8],
        parse: impl Fn(&[u8], &Limits) -> Result<Option<T>, HttpError>,
        head_len: impl Fn(&T) -> usize,
    ) -> Result<HeadProgress<T>, HttpError> {
        let before = self.buf.len();
        let room = self.limits.max_head_bytes.saturating_sub(before);
        let take = bytes.len().min(room);
        self.buf.extend_from_slice(&bytes[..take]);
        if has_blank_line(&self.buf, before) || self.buf.len() >= self.limits.max_head_bytes {
            if let Some(head) = parse(&self.buf, &self.limits)? {
                let consumed = head_len(&head).saturating_sub(before);
                self.buf.clear();
                return Ok(HeadProgress::Complete { head, consumed });
            }
        }
        if take < bytes.len() {
            return Err(HttpError::HeadTooLarge {
                limit: self.limits.max_head_bytes,
            });
        }
        Ok(HeadProgress::NeedMore)
    }
}

/// Incremental request-head parser: feed bytes until it yields a [`RequestHead`].
#[derive(Debug, Clone)]
pub struct RequestHeadParser {
    inner: HeadBuffer,
}

impl RequestHeadParser {
    /// A parser with the given limits.
    pub fn new(limits: Limits) -> RequestHeadParser {
        RequestHeadParser {
            inner: HeadBuffer {
                limits,
                buf: Vec::new(),
            },
        }
    }

    /// Feeds bytes; on completion, `consumed` tells how many of `bytes` were head bytes.
    /// After completion the parser is reset and ready for the next request.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<HeadProgress<RequestHead>, HttpError> {
        self.inner
            .feed(bytes, parse_request_head, |h: &RequestHead| h.head_len)
    }

    /// Bytes buffered so far of an incomplete head.
    pub fn buffered(&self) -> usize {
        self.inner.buf.len()
    }
}

/// Incremental response-head parser: feed bytes until it yields a [`ResponseHead`].
#[derive(Debug, Clone)]
pub struct ResponseHeadParser {
    inner: HeadBuffer,
}

impl ResponseHeadParser {
    /// A parser with the given limits.
    pub fn new(limits: Limits) -> ResponseHeadParser {
        ResponseHeadParser {
            inner: HeadBuffer {
                limits,
                buf: Vec::new(),
            },
        }
    }

    /// Feeds bytes; on completion, `consumed` tells how many of `bytes` were head bytes.
    /// After completion the parser is reset and ready for the next response.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<HeadProgress<ResponseHead>, HttpError> {
        self.inner
            .feed(bytes, parse_response_head, |h: &ResponseHead| h.head_len)
    }

    /// Bytes buffered so far of an incomplete head.
    pub fn buffered(&self) -> usize {
        self.inner.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(bytes: &[u8]) -> Result<HeadProgress<RequestHead>, HttpError> {
        RequestHeadParser::new(Limits::default()).feed(bytes)
    }

    #[test]
    fn parses_origin_form_request() {
        let raw = b"GET /a/b?x=1 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\n\r\nBODY";
        let HeadProgress::Complete { head, consumed } = feed_all(raw).unwrap() else {
            panic!("incomplete")
        };
        assert_eq!(consumed, raw.len() - 4);
        assert_eq!(head.method, "GET");
        assert_eq!(head.target, "/a/b?x=1");
        assert_eq!(head.version, Version::Http11);
        assert_eq!(head.headers.len(), 3);
        assert_eq!(head.target_form(), TargetForm::Origin);
        assert_eq!(
            head.header_values("X-A").collect::<Vec<_>>(),
            vec![&b"1"[..], b"2"]
        );
    }

    #[test]
    fn accepts_proxy_target_forms() {
        let raw = b"CONNECT api.github.com:443 HTTP/1.1\r\nHost: api.github.com:443\r\n\r\n";
        let HeadProgress::Complete { head, .. } = feed_all(raw).unwrap() else {
            panic!("incomplete")
        };
        assert_eq!(head.target, "api.github.com:443");
        assert_eq!(head.target_form(), TargetForm::Authority);
        let raw = b"GET http://example.com/x?y=1 HTTP/1.1\r\n\r\n";
        let HeadProgress::Complete { head, .. } = feed_all(raw).unwrap() else {
            panic!("incomplete")
        };
        assert_eq!(head.target_form(), TargetForm::Absolute);
        let raw = b"OPTIONS * HTTP/1.1\r\n\r\n";
        let HeadProgress::Complete { head, .. } = feed_all(raw).unwrap() else {
            panic!("incomplete")
        };
        assert_eq!(head.target_form(), TargetForm::Asterisk);
    }

    #[test]
    fn need_more_then_complete_across_feeds() {
        let mut p = RequestHeadParser::new(Limits::default());
        assert_eq!(
            p.feed(b"GET / HTTP/1.1\r\nHo").unwrap(),
            HeadProgress::NeedMore
        );
        assert_eq!(p.feed(b"st: x\r\n\r").unwrap(), HeadProgress::NeedMore);
        let HeadProgress::Complete { head, consumed } = p.feed(b"\nrest").unwrap() else {
            panic!("incomplete")
        };
        assert_eq!(consumed, 1);
        assert_eq!(head.head_len, 27);
        assert_eq!(p.buffered(), 0);
    }

    #[test]
    fn head_over_limit_is_an_error() {
        let limits = Limits {
            max_head_bytes: 32,
            ..Limits::default()
        };
        let mut p = RequestHeadParser::new(limits);
        let raw = b"GET / HTTP/1.1\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
        assert_eq!(
            p.feed(raw),
            Err(HttpError::HeadTooLarge { limit: 32 }),
            "one big feed"
        );
        let mut p = RequestHeadParser::new(limits);
        let mut result = Ok(HeadProgress::NeedMore);
        for b in raw {
            result = p.feed(std::slice::from_ref(b));
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(HttpError::HeadTooLarge { limit: 32 }));
        assert!(p.buffered() <= 32);
    }

    #[test]
    fn too_many_headers_is_an_error() {
        let limits = Limits {
            max_headers: 2,
            ..Limits::default()
        };
        let raw = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        assert_eq!(
            RequestHeadParser::new(limits).feed(raw),
            Err(HttpError::TooManyHeaders { limit: 2 })
        );
    }

    #[test]
    fn malformed_heads_are_errors() {
        for raw in [
            &b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n"[..],
            b"GET / HTTP/2.0\r\n\r\n",
            b"G(T / HTTP/1.1\r\n\r\n",
            b"\x16\x03\x01\x00\x05hello\r\n\r\n",
        ] {
            assert!(
                matches!(feed_all(raw), Err(HttpError::MalformedHead(_))),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn expect_continue_and_websocket_detection() {
        let raw = b"PUT /x HTTP/1.1\r\nExpect: 100-Continue\r\n\r\n";
        let HeadProgress::Complete { head, .. } = feed_all(raw).unwrap() else {
            panic!()
        };
        assert!(head.expects_continue());
        assert!(!head.is_websocket_upgrade());
        let raw =
            b"GET /ws HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n\r\n";
        let HeadProgress::Complete { head, .. } = feed_all(raw).unwrap() else {
            panic!()
        };
        assert!(head.is_websocket_upgrade());
        assert!(!head.expects_continue());
        let raw = b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n";
        let HeadProgress::Complete { head, .. } = feed_all(raw).unwrap() else {
            panic!()
        };
        assert!(!head.is_websocket_upgrade());
    }

    #[test]
    fn response_head_parses_and_reserialises() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Y: z\r\n\r\nok";
        let mut p = ResponseHeadParser::new(Limits::default());
        let HeadProgress::Complete { head, consumed } = p.feed(raw).unwrap() else {
            panic!()
        };
        assert_eq!(consumed, raw.len() - 2);
        assert_eq!(head.status, 200);
        assert_eq!(head.reason, "OK");
        assert_eq!(head.to_bytes(), &raw[..raw.len() - 2]);
        assert!(matches!(
            ResponseHeadParser::new(Limits::default()).feed(b"HTTP/1.1 2000 OK\r\n\r\n"),
            Err(HttpError::MalformedHead(_))
        ));
    }
}
