//! Body framing (RFC 9112 §6) and a streaming body decoder with a capped inspection view.

use super::head::{RequestHead, ResponseHead, Version};
use super::{HttpError, Limits};

/// How a message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body at all.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding, ending after the trailer section.
    Chunked,
    /// Everything until the connection closes (responses only).
    UntilClose,
}

/// Parses all `Content-Length` values; `None` when the header is absent.
fn content_length(headers: &[(String, Vec<u8>)]) -> Result<Option<u64>, HttpError> {
    let mut found: Option<u64> = None;
    for (name, value) in headers {
        if !name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        for item in value.split(|&b| b == b',') {
            let item = item.trim_ascii();
            let invalid = || HttpError::InvalidContentLength(String::from_utf8_lossy(value).into());
            if item.is_empty() || item.len() > 19 || !item.iter().all(u8::is_ascii_digit) {
                return Err(invalid());
            }
            let n = item
                .iter()
                .try_fold(0u64, |acc, &d| {
                    acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
                })
                .ok_or_else(invalid)?;
            match found {
                Some(prev) if prev != n => return Err(HttpError::DifferingContentLengths),
                _ => found = Some(n),
            }
        }
    }
    Ok(found)
}

/// The transfer codings, lower-cased, in order; empty when the header is absent.
fn transfer_codings(headers: &[(String, Vec<u8>)]) -> Vec<String> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
        .flat_map(|(_, v)| v.split(|&b| b == b','))
        .map(|c| {
            // Drop transfer-parameters (`;q=...`) and whitespace.
            let c = c.split(|&b| b == b';').next().unwrap_or_default();
            String::from_utf8_lossy(c.trim_ascii()).to_ascii_lowercase()
        })
        .collect()
}

/// Whether the codings are a valid chunked framing (`chunked` last and only once).
fn ends_in_chunked(codings: &[String]) -> Result<bool, HttpError> {
    let chunked = codings.iter().filter(|c| *c == "chunked").count();
    let last_chunked = codings.last().is_some_and(|c| c == "chunked");
    if chunked > 1 || (chunked == 1 && !last_chunked) || codings.iter().any(String::is_empty) {
        return Err(HttpError::UnsupportedTransferEncoding(codings.join(", ")));
    }
    Ok(last_chunked)
}

/// The body framing of a request (RFC 9112 §6.3), failing closed on smuggling shapes.
pub fn request_framing(head: &RequestHead) -> Result<BodyFraming, HttpError> {
    let has_te = head.header_values("transfer-encoding").next().is_some();
    let length = content_length(&head.headers)?;
    if has_te {
        if length.is_some() {
            return Err(HttpError::LengthAndTransferEncoding);
        }
        if head.version == Version::Http10 {
            return Err(HttpError::TransferEncodingOnHttp10);
        }
        let codings = transfer_codings(&head.headers);
        if !ends_in_chunked(&codings)? {
            return Err(HttpError::UnsupportedTransferEncoding(codings.join(", ")));
        }
        return Ok(BodyFraming::Chunked);
    }
    Ok(match length {
        Some(0) | None => BodyFraming::None,
        Some(n) => BodyFraming::Length(n),
    })
}

/// The body framing of a response to a request with `request_method` (RFC 9112 §6.3).
pub fn response_framing(
    request_method: &str,
    head: &ResponseHead,
) -> Result<BodyFraming, HttpError> {
    if request_method == "HEAD"
        || (100..200).contains(&head.status)
        || head.status == 204
        || head.status == 304
        || (request_method == "CONNECT" && (200..300).contains(&head.status))
    {
        return Ok(BodyFraming::None);
    }
    let has_te = head.header_values("transfer-encoding").next().is_some();
    let length = content_length(&head.headers)?;
    if has_te {
        if length.is_some() {
            return Err(HttpError::LengthAndTransferEncoding);
        }
        let codings = transfer_codings(&head.headers);
        return Ok(if ends_in_chunked(&codings)? {
            BodyFraming::Chunked
        } else {
            BodyFraming::UntilClose
        });
    }
    Ok(match length {
        Some(0) => BodyFraming::None,
        Some(n) => BodyFraming::Length(n),
        None => BodyFraming::UntilClose,
    })
}

/// The decoded body kept for inspection, capped at `limits.body_buffer`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InspectedBody {
    bytes: Vec<u8>,
    truncated: bool,
}

impl InspectedBody {
    /// An inspection view holding `bytes`, not truncated.
    pub fn from_bytes(bytes: Vec<u8>) -> InspectedBody {
        InspectedBody {
            bytes,
            truncated: false,
        }
    }

    /// The first decoded body bytes, at most the cap.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether the decoded body exceeded the cap (the view holds only its first bytes).
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    fn push(&mut self, data: &[u8], cap: usize) {
        let room = cap.saturating_sub(self.bytes.len());
        if data.len() > room {
            self.truncated = true;
        }
        self.bytes.extend_from_slice(&data[..data.len().min(room)]);
    }
}

/// The answer of [`BodyDecoder::feed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyProgress {
    /// How many leading bytes of the input belong to the body; forward exactly these.
    pub consumed: usize,
    /// Whether the body is complete; bytes after `consumed` belong to the next message.
    pub done: bool,
}

/// Longest chunk-size line accepted (size, extensions and CRLF).
const MAX_CHUNK_LINE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Raw bytes remaining (Content-Length).
    Length(u64),
    /// Until the connection closes.
    UntilClose,
    /// Reading hex digits of a chunk size.
    ChunkSize { size: u64, digits: u8 },
    /// Whitespace after the size, before a `;`.
    ChunkBws { size: u64 },
    /// Inside chunk extensions, after the size.
    ChunkExt { size: u64 },
    /// Saw CR of the size line.
    ChunkSizeLf { size: u64 },
    /// Chunk payload bytes remaining.
    ChunkData(u64),
    /// Expecting CR after the payload.
    ChunkDataCr,
    /// Expecting LF after the payload.
    ChunkDataLf,
    /// At the start of a trailer line (or the final blank line).
    TrailerStart,
    /// Inside a trailer field line.
    TrailerLine,
    /// Saw CR inside a trailer field line.
    TrailerLineLf,
    /// Saw CR of the final blank line.
    TrailerEndLf,
    /// The body is complete.
    Done,
}

/// Streaming body decoder: tells which input bytes belong to the body, keeps the decoded
/// payload for inspection up to a cap, and reports completion. Never rewrites the body.
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    state: State,
    cap: usize,
    max_trailer_bytes: usize,
    max_trailers: usize,
    line_len: usize,
    trailer: Vec<u8>,
    trailer_fields: usize,
    inspected: InspectedBody,
}

impl BodyDecoder {
    /// A decoder for `framing`, keeping up to `limits.body_buffer` decoded bytes.
    pub fn new(framing: BodyFraming, limits: &Limits) -> BodyDecoder {
        let state = match framing {
            BodyFraming::None | BodyFraming::Length(0) => State::Done,
            BodyFraming::Length(n) => State::Length(n),
            BodyFraming::Chunked => State::ChunkSize { size: 0, digits: 0 },
            BodyFraming::UntilClose => State::UntilClose,
        };
        BodyDecoder {
            state,
            cap: limits.body_buffer,
            max_trailer_bytes: limits.max_head_bytes,
            max_trailers: limits.max_headers,
            line_len: 0,
            trailer: Vec::new(),
            trailer_fields: 0,
            inspected: InspectedBody::default(),
        }
    }

    /// Whether the body is complete.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The inspection view so far.
    pub fn inspected(&self) -> &InspectedBody {
        &self.inspected
    }

    /// Takes the inspection view, leaving an empty one.
    pub fn take_inspected(&mut self) -> InspectedBody {
        std::mem::take(&mut self.inspected)
    }

    /// The raw trailer section of a chunked body (field lines with CRLF, without the final
    /// blank line); empty for other framings.
    pub fn raw_trailers(&self) -> &[u8] {
        &self.trailer
    }

    /// Tells the decoder the peer closed the connection. Completes a read-until-close body;
    /// any other unfinished body is an error.
    pub fn finish(&mut self) -> Result<(), HttpError> {
        match self.state {
            State::Done => Ok(()),
            State::UntilClose => {
                self.state = State::Done;
                Ok(())
            }
            _ => Err(HttpError::IncompleteBody),
        }
    }

    /// Feeds raw bytes; see [`BodyProgress`]. Errors mean the framing is broken: fail closed.
    pub fn feed(&mut self, input: &[u8]) -> Result<BodyProgress, HttpError> {
        let mut i = 0;
        while i < input.len() && self.state != State::Done {
            let b = input[i];
            match self.state {
                State::Length(n) | State::ChunkData(n) => {
                    let avail = (input.len() - i) as u64;
                    let take = n.min(avail) as usize;
                    self.inspected.push(&input[i..i + take], self.cap);
                    i += take;
                    let left = n - take as u64;
                    self.state = match (self.state, left) {
                        (State::Length(_), 0) => State::Done,
                        (State::Length(_), l) => State::Length(l),
                        (_, 0) => State::ChunkDataCr,
                        (_, l) => State::ChunkData(l),
                    };
                    continue;
                }
                State::UntilClose => {
                    self.inspected.push(&input[i..], self.cap);
                    i = input.len();
                    continue;
                }
                State::ChunkSize { size, digits } => {
                    self.bump_line()?;
                    if let Some(d) = hex_value(b) {
                        if digits >= 16 {
                            return Err(HttpError::MalformedChunk("chunk size too large"));
                        }
                        self.state = State::ChunkSize {
                            size: (size << 4) | u64::from(d),
                            digits: digits + 1,
                        };
                    } else if digits == 0 {
                        return Err(HttpError::MalformedChunk("missing chunk size"));
                    } else if b == b'\r' {
                        self.state = State::ChunkSizeLf { size };
                    } else if b == b';' {
                        self.state = State::ChunkExt { size };
                    } else if b == b' ' || b == b'\t' {
                        self.state = State::ChunkBws { size };
                    } else {
                        return Err(HttpError::MalformedChunk("invalid chunk size"));
                    }
                }
                State::ChunkBws { size } => {
                    self.bump_line()?;
                    if b == b';' {
                        self.state = State::ChunkExt { size };
                    } else if b != b' ' && b != b'\t' {
                        return Err(HttpError::MalformedChunk("invalid chunk size"));
                    }
                }
                State::ChunkExt { size } => {
                    self.bump_line()?;
                    if b == b'\r' {
                        self.state = State::ChunkSizeLf { size };
                    } else if b == b'\n' || (b < 0x20 && b != b'\t') || b == 0x7f {
                        return Err(HttpError::MalformedChunk("invalid chunk extension"));
                    }
                }
                State::ChunkSizeLf { size } => {
                    if b != b'\n' {
                        return Err(HttpError::MalformedChunk(
                            "chunk size line not ended by crlf",
                        ));
                    }
                    self.line_len = 0;
                    self.state = if size == 0 {
                        State::TrailerStart
                    } else {
                        State::ChunkData(size)
                    };
                }
                State::ChunkDataCr => {
                    if b != b'\r' {
                        return Err(HttpError::MalformedChunk("chunk data not followed by crlf"));
                    }
                    self.state = State::ChunkDataLf;
                }
                State::ChunkDataLf => {
                    if b != b'\n' {
                        return Err(HttpError::MalformedChunk("chunk data not followed by crlf"));
                    }
                    self.state = State::ChunkSize { size: 0, digits: 0 };
                }
                State::TrailerStart => {
                    if b == b'\r' {
                        self.state = State::TrailerEndLf;
                    } else if b == b'\n' || b == b' ' || b == b'\t' {
                        return Err(HttpError::MalformedChunk("invalid trailer line"));
                    } else {
                        self.trailer_fields += 1;
                        if self.trailer_fields > self.max_trailers {
                            return Err(HttpError::TrailersTooLarge {
                                limit: self.max_trailer_bytes,
                            });
                        }
                        self.push_trailer(b)?;
                        self.state = State::TrailerLine;
                    }
                }
                State::TrailerLine => {
                    self.push_trailer(b)?;
                    if b == b'\r' {
                        self.state = State::TrailerLineLf;
                    } else if b == b'\n' {
                        return Err(HttpError::MalformedChunk("trailer line not ended by crlf"));
                    }
                }
                State::TrailerLineLf => {
                    if b != b'\n' {
                        return Err(HttpError::MalformedChunk("trailer line not ended by crlf"));
                    }
                    self.push_trailer(b)?;
                    self.state = State::TrailerStart;
                }
                State::TrailerEndLf => {
                    if b != b'\n' {
                        return Err(HttpError::MalformedChunk(
                            "trailer section not ended by crlf",
                        ));
                    }
                    self.state = State::Done;
                }
                State::Done => {}
            }
            i += 1;
        }
        Ok(BodyProgress {
            consumed: i,
            done: self.state == State::Done,
        })
    }

    fn bump_line(&mut self) -> Result<(), HttpError> {
        self.line_len += 1;
        if self.line_len > MAX_CHUNK_LINE {
            return Err(HttpError::MalformedChunk("chunk size line too long"));
        }
        Ok(())
    }

    fn push_trailer(&mut self, b: u8) -> Result<(), HttpError> {
        if self.trailer.len() >= self.max_trailer_bytes {
            return Err(HttpError::TrailersTooLarge {
                limit: self.max_trailer_bytes,
            });
        }
        self.trailer.push(b);
        Ok(())
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head::parse_request_head;

    fn req(raw: &str) -> RequestHead {
        parse_request_head(raw.as_bytes(), &Limits::default())
            .unwrap()
            .unwrap()
    }

    #[test]
    fn request_framing_shapes() {
        assert_eq!(
            request_framing(&req("GET / HTTP/1.1\r\n\r\n")),
            Ok(BodyFraming::None)
        );
        assert_eq!(
            request_framing(&req("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n")),
            Ok(BodyFraming::Length(5))
        );
        assert_eq!(
            request_framing(&req(
                "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"
            )),
            Ok(BodyFraming::Length(5))
        );
        assert_eq!(
            request_framing(&req("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n")),
            Ok(BodyFraming::Length(5))
        );
        assert_eq!(
            request_framing(&req(
                "POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n"
            )),
            Ok(BodyFraming::Chunked)
        );
        assert_eq!(
            request_framing(&req(
                "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
            )),
            Ok(BodyFraming::Chunked)
        );
    }

    #[test]
    fn request_smuggling_shapes_fail_closed() {
        let bad = [
            (
                "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                HttpError::LengthAndTransferEncoding,
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                HttpError::DifferingContentLengths,
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: 5, 7\r\n\r\n",
                HttpError::DifferingContentLengths,
            ),
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
                HttpError::UnsupportedTransferEncoding("chunked, gzip".into()),
            ),
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
                HttpError::UnsupportedTransferEncoding("gzip".into()),
            ),
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
                HttpError::UnsupportedTransferEncoding("chunked, chunked".into()),
            ),
            (
                "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
                HttpError::TransferEncodingOnHttp10,
            ),
        ];
        for (raw, err) in bad {
            assert_eq!(request_framing(&req(raw)), Err(err), "{raw}");
        }
        for cl in ["+5", "-1", "5x", "0x5", "", "99999999999999999999"] {
            let raw = format!("POST / HTTP/1.1\r\nContent-Length: {cl}\r\n\r\n");
            assert!(
                matches!(
                    request_framing(&req(&raw)),
                    Err(HttpError::InvalidContentLength(_))
                ),
                "{cl}"
            );
        }
    }

    fn decode_all(framing: BodyFraming, input: &[u8], cap: usize) -> (BodyProgress, BodyDecoder) {
        let limits = Limits {
            body_buffer: cap,
            ..Limits::default()
        };
        let mut d = BodyDecoder::new(framing, &limits);
        let p = d.feed(input).unwrap();
        (p, d)
    }

    #[test]
    fn content_length_body_stops_at_length() {
        let (p, d) = decode_all(BodyFraming::Length(5), b"hellonext", 1024);
        assert_eq!(
            p,
            BodyProgress {
                consumed: 5,
                done: true
            }
        );
        assert_eq!(d.inspected().bytes(), b"hello");
        assert!(!d.inspected().truncated());
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers() {
        let body = b"5;name=val\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\nX-B: 2\r\n\r\nNEXT";
        let (p, d) = decode_all(BodyFraming::Chunked, body, 1024);
        assert_eq!(p.consumed, body.len() - 4);
        assert!(p.done);
        assert_eq!(d.inspected().bytes(), b"hello world");
        assert_eq!(d.raw_trailers(), b"X-Sum: 1\r\nX-B: 2\r\n");
    }

    #[test]
    fn inspection_is_capped_and_flags_truncation() {
        let (p, d) = decode_all(
            BodyFraming::Chunked,
            b"5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n",
            6,
        );
        assert!(p.done);
        assert_eq!(d.inspected().bytes(), b"helloa");
        assert!(d.inspected().truncated());
        let (_, d) = decode_all(BodyFraming::Length(6), b"abcdef", 6);
        assert!(!d.inspected().truncated());
        let (_, d) = decode_all(BodyFraming::Length(7), b"abcdefg", 6);
        assert!(d.inspected().truncated());
    }

    #[test]
    fn malformed_chunks_are_errors() {
        for bad in [
            &b"x\r\n"[..],
            b"\r\n",
            b"5\nhello\r\n",
            b"5\r\nhelloX\r\n",
            b"11111111111111111\r\n",
            b"-5\r\n",
            b"0\r\nX: y\n\r\n",
            b"0\r\n\n",
            b"5;a\nb\r\n",
            b"5 x\r\n",
        ] {
            let mut d = BodyDecoder::new(BodyFraming::Chunked, &Limits::default());
            assert!(
                matches!(d.feed(bad), Err(HttpError::MalformedChunk(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn until_close_and_incomplete_bodies() {
        let mut d = BodyDecoder::new(BodyFraming::UntilClose, &Limits::default());
        assert_eq!(d.feed(b"abc").unwrap().consumed, 3);
        assert!(!d.is_done());
        assert_eq!(d.finish(), Ok(()));
        assert!(d.is_done());
        let mut d = BodyDecoder::new(BodyFraming::Length(10), &Limits::default());
        d.feed(b"abc").unwrap();
        assert_eq!(d.finish(), Err(HttpError::IncompleteBody));
    }

    #[test]
    fn response_framing_rules() {
        let res = |raw: &str| {
            crate::http::head::parse_response_head(raw.as_bytes(), &Limits::default())
                .unwrap()
                .unwrap()
        };
        let ok_cl = res("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n");
        assert_eq!(response_framing("GET", &ok_cl), Ok(BodyFraming::Length(3)));
        assert_eq!(response_framing("HEAD", &ok_cl), Ok(BodyFraming::None));
        for s in [
            "100 Continue",
            "101 Switching",
            "204 No Content",
            "304 Not Modified",
        ] {
            let h = res(&format!("HTTP/1.1 {s}\r\nContent-Length: 3\r\n\r\n"));
            assert_eq!(response_framing("GET", &h), Ok(BodyFraming::None), "{s}");
        }
        let h = res("HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(response_framing("GET", &h), Ok(BodyFraming::UntilClose));
        assert_eq!(response_framing("CONNECT", &h), Ok(BodyFraming::None));
        let h = res("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(response_framing("GET", &h), Ok(BodyFraming::Chunked));
        let h = res("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n");
        assert_eq!(response_framing("GET", &h), Ok(BodyFraming::UntilClose));
        let h = res("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n");
        assert_eq!(
            response_framing("GET", &h),
            Err(HttpError::LengthAndTransferEncoding)
        );
    }
}
