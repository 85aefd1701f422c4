//! Framing shared by both directions: frame headers, limits, errors, the input buffer and
//! field readers/writers.
//!
//! A typed frame is `tag:u8, len:i32, payload` where `len` counts itself (4 bytes) and the
//! payload. A startup-phase frame has no tag: `len:i32, payload` with `len` counting itself.

use thiserror::Error;

/// Default largest payload (bytes after the length field) a decoder buffers: 1 MiB, the
/// Postgres inspection cap of the gateway.
pub const DEFAULT_MAX_PAYLOAD_LEN: usize = 1 << 20;

/// Smallest legal declared length of a startup-phase packet (length + request code).
pub const MIN_STARTUP_LEN: usize = 8;

/// Errors of the Postgres wire codec (decoding and encoding).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PgError {
    /// A typed frame declared a length below 4 (negative lengths included).
    #[error("frame of type {tag:#04x} declares length {len}, below the minimum of 4")]
    BadLength {
        /// The frame's type byte.
        tag: u8,
        /// The declared length.
        len: i32,
    },
    /// A startup-phase packet declared a length outside `8..=limit`.
    #[error("startup packet declares length {len}, outside 8..={max}")]
    BadStartupLength {
        /// The declared length.
        len: i32,
        /// The largest accepted declared length.
        max: usize,
    },
    /// A frame's payload is larger than the decoder's limit and streaming is off.
    #[error(
        "frame of type {tag:#04x} has a payload of {len} bytes, over the limit of {max} bytes"
    )]
    FrameTooLarge {
        /// The frame's type byte.
        tag: u8,
        /// The declared payload length.
        len: usize,
        /// The decoder's payload limit.
        max: usize,
    },
    /// A StartupMessage asked for a protocol version this codec does not speak.
    #[error("unsupported protocol version {major}.{minor}; only 3.0 and 3.2 are accepted")]
    UnsupportedProtocol {
        /// Major version.
        major: u16,
        /// Minor version.
        minor: u16,
    },
    /// A type byte that names no message of this direction.
    #[error("unknown {direction} message type {tag:#04x}")]
    UnknownTag {
        /// `frontend` or `backend`.
        direction: &'static str,
        /// The type byte.
        tag: u8,
    },
    /// A field ran past the end of the payload.
    #[error("truncated {what} in {msg}")]
    Truncated {
        /// Message name.
        msg: &'static str,
        /// Field name.
        what: &'static str,
    },
    /// A string field has no NUL terminator inside the payload.
    #[error("missing NUL terminator of {what} in {msg}")]
    MissingNul {
        /// Message name.
        msg: &'static str,
        /// Field name.
        what: &'static str,
    },
    /// A string field is not UTF-8.
    #[error("{what} in {msg} is not valid UTF-8")]
    InvalidUtf8 {
        /// Message name.
        msg: &'static str,
        /// Field name.
        what: &'static str,
    },
    /// Bytes were left after the last field of a message.
    #[error("{n} trailing bytes after {msg}")]
    TrailingBytes {
        /// Message name.
        msg: &'static str,
        /// Number of extra bytes.
        n: usize,
    },
    /// A field holds a value the protocol does not allow.
    #[error("invalid {what} `{value}` in {msg}")]
    InvalidValue {
        /// Message name.
        msg: &'static str,
        /// Field name.
        what: &'static str,
        /// The offending value.
        value: i64,
    },
    /// The byte answering an SSLRequest/GSSENCRequest is not a legal answer.
    #[error("unexpected byte {0:#04x} where an SSL/GSSENC answer was expected")]
    BadEncryptionAnswer(u8),
    /// Plaintext bytes followed an `S`/`G` answer before the encrypted handshake (buffer stuffing).
    #[error("{0} unencrypted bytes followed the encryption answer; refusing (possible injection)")]
    DataAfterEncryptionAnswer(usize),
    /// A string to encode contains a NUL byte, which would change the frame's meaning.
    #[error("{what} contains a NUL byte and cannot be encoded")]
    NulInString {
        /// Field name.
        what: &'static str,
    },
    /// A list to encode has more entries than its 16-bit count allows.
    #[error("{what} count {n} exceeds the protocol limit of {max}")]
    TooMany {
        /// Field name.
        what: &'static str,
        /// Number of entries.
        n: usize,
        /// Largest allowed count.
        max: usize,
    },
    /// A value to encode is longer than its 32-bit length field allows.
    #[error("{what} of {n} bytes is too long to encode")]
    TooLong {
        /// Field name.
        what: &'static str,
        /// Length in bytes.
        n: usize,
    },
    /// A message variant cannot be encoded in the requested form.
    #[error("cannot encode {0}")]
    NotEncodable(&'static str),
    /// The decoder hit an error earlier; the stream is out of sync.
    #[error("decoder stopped after an earlier error; close the connection")]
    Poisoned,
}

/// The header of a typed frame, readable before its payload is buffered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The type byte (for example `b'Q'`).
    pub tag: u8,
    /// The declared length: 4 (the length field itself) plus the payload length.
    pub len: u32,
}

impl FrameHeader {
    /// Size of a typed frame header on the wire (type byte + length).
    pub const SIZE: usize = 5;

    /// Payload length (declared length minus the 4 length bytes).
    pub fn payload_len(&self) -> usize {
        (self.len as usize).saturating_sub(4)
    }

    /// Parses a typed frame header from the start of `buf`; `Ok(None)` if fewer than 5 bytes.
    pub fn parse(buf: &[u8]) -> Result<Option<FrameHeader>, PgError> {
        let Some(head) = buf.get(..Self::SIZE) else {
            return Ok(None);
        };
        let tag = head[0];
        let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]);
        if len < 4 {
            return Err(PgError::BadLength { tag, len });
        }
        Ok(Some(FrameHeader {
            tag,
            len: len as u32,
        }))
    }
}

/// One step of a decoder's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<M> {
    /// A complete, parsed message.
    Message(M),
    /// An oversize frame starts; its payload follows as chunks (only when streaming is on).
    OversizeStart(FrameHeader),
    /// Raw payload bytes of the current oversize frame.
    OversizeChunk(Vec<u8>),
    /// The current oversize frame's payload is complete.
    OversizeEnd,
}

/// A raw frame cut from the input: type byte (none in the startup phase) and payload.
#[derive(Debug)]
pub(crate) enum RawItem {
    Frame { tag: u8, payload: Vec<u8> },
    Oversize(OversizeEvent),
}

/// Progress of an oversize frame being streamed.
#[derive(Debug)]
pub(crate) enum OversizeEvent {
    Start(FrameHeader),
    Chunk(Vec<u8>),
    End,
}

impl OversizeEvent {
    pub(crate) fn into_decoded<M>(self) -> Decoded<M> {
        match self {
            OversizeEvent::Start(h) => Decoded::OversizeStart(h),
            OversizeEvent::Chunk(c) => Decoded::OversizeChunk(c),
            OversizeEvent::End => Decoded::OversizeEnd,
        }
    }
}

/// Input buffer and framing state shared by the frontend and backend decoders.
#[derive(Debug, Clone)]
pub(crate) struct FrameBuffer {
    buf: Vec<u8>,
    start: usize,
    pub(crate) max_payload: usize,
    pub(crate) stream_oversize: bool,
    streaming: Option<usize>,
    poisoned: bool,
}

impl FrameBuffer {
    pub(crate) fn new(max_payload: usize) -> Self {
        FrameBuffer {
            buf: Vec::new(),
            start: 0,
            max_payload,
            stream_oversize: false,
            streaming: None,
            poisoned: false,
        }
    }

    pub(crate) fn feed(&mut self, data: &[u8]) {
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    pub(crate) fn buffered_len(&self) -> usize {
        self.buf.len() - self.start
    }

    pub(crate) fn in_oversize(&self) -> bool {
        self.streaming.is_some()
    }

    pub(crate) fn check(&self) -> Result<(), PgError> {
        if self.poisoned {
            Err(PgError::Poisoned)
        } else {
            Ok(())
        }
    }

    pub(crate) fn poison<T>(&mut self, r: Result<T, PgError>) -> Result<T, PgError> {
        if r.is_err() {
            self.poisoned = true;
        }
        r
    }

    pub(crate) fn take_byte(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.start)?;
        self.start += 1;
        Some(b)
    }

    /// Continues an oversize frame, if one is in progress.
    fn continue_oversize(&mut self) -> Option<RawItem> {
        let remaining = self.streaming?;
        if remaining == 0 {
            self.streaming = None;
            return Some(RawItem::Oversize(OversizeEvent::End));
        }
        let avail = self.buffered_len().min(remaining);
        if avail == 0 {
            return None;
        }
        let chunk = self.buf[self.start..self.start + avail].to_vec();
        self.start += avail;
        self.streaming = Some(remaining - avail);
        Some(RawItem::Oversize(OversizeEvent::Chunk(chunk)))
    }

    /// Cuts the next typed frame, or reports an oversize frame's progress.
    pub(crate) fn next_typed(&mut self) -> Result<Option<RawItem>, PgError> {
        self.check()?;
        if self.streaming.is_some() {
            return Ok(self.continue_oversize());
        }
        let header = match FrameHeader::parse(self.pending()) {
            Ok(Some(h)) => h,
            Ok(None) => return Ok(None),
            Err(e) => return self.poison(Err(e)),
        };
        let payload_len = header.payload_len();
        if payload_len > self.max_payload {
            if !self.stream_oversize {
                return self.poison(Err(PgError::FrameTooLarge {
                    tag: header.tag,
                    len: payload_len,
                    max: self.max_payload,
                }));
            }
            self.start += FrameHeader::SIZE;
            self.streaming = Some(payload_len);
            return Ok(Some(RawItem::Oversize(OversizeEvent::Start(header))));
        }
        if self.buffered_len() < FrameHeader::SIZE + payload_len {
            return Ok(None);
        }
        let from = self.start + FrameHeader::SIZE;
        let payload = self.buf[from..from + payload_len].to_vec();
        self.start = from + payload_len;
        Ok(Some(RawItem::Frame {
            tag: header.tag,
            payload,
        }))
    }

    /// Cuts the next startup-phase packet (no type byte; never streamed).
    pub(crate) fn next_startup(&mut self) -> Result<Option<Vec<u8>>, PgError> {
        self.check()?;
        let pending = self.pending();
        let Some(head) = pending.get(..4) else {
            return Ok(None);
        };
        let len = i32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let max = self.max_payload.saturating_add(4);
        if len < MIN_STARTUP_LEN as i32 || len as usize > max {
            return self.poison(Err(PgError::BadStartupLength { len, max }));
        }
        let len = len as usize;
        if pending.len() < len {
            return Ok(None);
        }
        let payload = pending[4..len].to_vec();
        self.start += len;
        Ok(Some(payload))
    }
}

/// Cursor over a message payload that reads protocol fields with bounds checks.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    msg: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], msg: &'static str) -> Self {
        Reader { buf, pos: 0, msg }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], PgError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            return Err(PgError::Truncated {
                msg: self.msg,
                what,
            });
        };
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, PgError> {
        Ok(self.bytes(1, what)?[0])
    }

    pub(crate) fn i16(&mut self, what: &'static str) -> Result<i16, PgError> {
        let b = self.bytes(2, what)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn i32(&mut self, what: &'static str) -> Result<i32, PgError> {
        let b = self.bytes(4, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, PgError> {
        Ok(self.i32(what)? as u32)
    }

    /// Reads a 16-bit count that must not be negative.
    pub(crate) fn count(&mut self, what: &'static str) -> Result<usize, PgError> {
        let n = self.i16(what)?;
        if n < 0 {
            return Err(self.invalid(what, n.into()));
        }
        Ok(n as usize)
    }

    /// Reads an `i32` length-prefixed value; `-1` means NULL.
    pub(crate) fn nullable(&mut self, what: &'static str) -> Result<Option<Vec<u8>>, PgError> {
        let n = self.i32(what)?;
        if n == -1 {
            return Ok(None);
        }
        if n < 0 {
            return Err(self.invalid(what, n.into()));
        }
        Ok(Some(self.bytes(n as usize, what)?.to_vec()))
    }

    pub(crate) fn cstr_bytes(&mut self, what: &'static str) -> Result<&'a [u8], PgError> {
        let rest = &self.buf[self.pos..];
        let Some(nul) = memchr::memchr(0, rest) else {
            return Err(PgError::MissingNul {
                msg: self.msg,
                what,
            });
        };
        self.pos += nul + 1;
        Ok(&rest[..nul])
    }

    pub(crate) fn cstr(&mut self, what: &'static str) -> Result<String, PgError> {
        let msg = self.msg;
        let b = self.cstr_bytes(what)?;
        String::from_utf8(b.to_vec()).map_err(|_| PgError::InvalidUtf8 { msg, what })
    }

    pub(crate) fn invalid(&self, what: &'static str, value: i64) -> PgError {
        PgError::InvalidValue {
            msg: self.msg,
            what,
            value,
        }
    }

    pub(crate) fn finish(self) -> Result<(), PgError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(PgError::TrailingBytes { msg: self.msg, n }),
        }
    }
}

/// Starts a frame in `out`: writes the type byte (if any) and a length placeholder.
pub(crate) fn begin(out: &mut Vec<u8>, tag: Option<u8>) -> usize {
    if let Some(t) = tag {
        out.push(t);
    }
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    at
}

/// Patches the length placeholder written by [`begin`].
pub(crate) fn finish(out: &mut [u8], at: usize) -> Result<(), PgError> {
    let len = out.len() - at;
    let len32 = i32::try_from(len).map_err(|_| PgError::TooLong {
        what: "frame",
        n: len,
    })?;
    out[at..at + 4].copy_from_slice(&len32.to_be_bytes());
    Ok(())
}

/// Writes a NUL-terminated string, refusing embedded NULs.
pub(crate) fn put_cstr(out: &mut Vec<u8>, s: &[u8], what: &'static str) -> Result<(), PgError> {
    if memchr::memchr(0, s).is_some() {
        return Err(PgError::NulInString { what });
    }
    out.extend_from_slice(s);
    out.push(0);
    Ok(())
}

/// Writes a 16-bit count, refusing counts above `i16::MAX`.
pub(crate) fn put_count(out: &mut Vec<u8>, n: usize, what: &'static str) -> Result<(), PgError> {
    let c = i16::try_from(n).map_err(|_| PgError::TooMany {
        what,
        n,
        max: i16::MAX as usize,
    })?;
    out.extend_from_slice(&c.to_be_bytes());
    Ok(())
}

/// Writes an `i32` length-prefixed value (`-1` for NULL).
pub(crate) fn put_nullable(
    out: &mut Vec<u8>,
    v: Option<&[u8]>,
    what: &'static str,
) -> Result<(), PgError> {
    match v {
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        Some(b) => {
            let n = i32::try_from(b.len()).map_err(|_| PgError::TooLong { what, n: b.len() })?;
            out.extend_from_slice(&n.to_be_bytes());
            out.extend_from_slice(b);
        }
    }
    Ok(())
}

/// Runs an encoder body and removes its partial output if it fails.
pub(crate) fn encode_with(
    out: &mut Vec<u8>,
    f: impl FnOnce(&mut Vec<u8>) -> Result<(), PgError>,
) -> Result<(), PgError> {
    let mark = out.len();
    let r = f(out);
    if r.is_err() {
        out.truncate(mark);
    }
    r
}
