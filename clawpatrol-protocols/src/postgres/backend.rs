//! Backend (server → client) messages, their decoder and encoder.

use super::codec::{
    begin, encode_with, finish, put_count, put_cstr, put_nullable, Decoded, FrameBuffer,
    FrameHeader, PgError, RawItem, Reader, DEFAULT_MAX_PAYLOAD_LEN,
};
use super::frontend::MAX_SECRET_KEY_LEN;

/// Transaction status carried by ReadyForQuery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionStatus {
    /// Idle, not in a transaction (`I`).
    Idle,
    /// In a transaction block (`T`).
    InTransaction,
    /// In a failed transaction block (`E`).
    Failed,
}

impl TransactionStatus {
    /// The status byte on the wire.
    pub fn byte(self) -> u8 {
        match self {
            TransactionStatus::Idle => b'I',
            TransactionStatus::InTransaction => b'T',
            TransactionStatus::Failed => b'E',
        }
    }
}

/// Fields of an ErrorResponse or NoticeResponse, in wire order, keyed by their code byte.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErrorFields(pub Vec<(u8, String)>);

impl ErrorFields {
    /// Value of the first field with code byte `code` (`b'S'`, `b'C'`, `b'M'`, …).
    pub fn get(&self, code: u8) -> Option<&str> {
        self.0
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v.as_str())
    }

    /// Localized severity (`S`).
    pub fn severity(&self) -> Option<&str> {
        self.get(b'S')
    }

    /// SQLSTATE code (`C`).
    pub fn code(&self) -> Option<&str> {
        self.get(b'C')
    }

    /// Primary message (`M`).
    pub fn message(&self) -> Option<&str> {
        self.get(b'M')
    }
}

/// One column of a RowDescription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDescription {
    /// Column name.
    pub name: String,
    /// OID of the source table (0 if none).
    pub table_oid: u32,
    /// Attribute number in the source table (0 if none).
    pub column_id: i16,
    /// Data type OID.
    pub type_oid: u32,
    /// Data type size (negative: variable width).
    pub type_size: i16,
    /// Type modifier.
    pub type_modifier: i32,
    /// Format code (0 text, 1 binary).
    pub format: i16,
}

/// An Authentication (`R`) request or result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    /// AuthenticationOk (0).
    Ok,
    /// AuthenticationCleartextPassword (3).
    CleartextPassword,
    /// AuthenticationMD5Password (5) with its 4-byte salt.
    Md5Password {
        /// The salt.
        salt: [u8; 4],
    },
    /// AuthenticationSASL (10) with the offered mechanisms.
    Sasl {
        /// Mechanism names, e.g. `SCRAM-SHA-256`.
        mechanisms: Vec<String>,
    },
    /// AuthenticationSASLContinue (11) with server data.
    SaslContinue(Vec<u8>),
    /// AuthenticationSASLFinal (12) with server data.
    SaslFinal(Vec<u8>),
    /// Any other method (Kerberos 2, GSS 7, GSSContinue 8, SSPI 9, …), kept raw.
    Unsupported {
        /// The method code.
        code: i32,
        /// The bytes after the code.
        data: Vec<u8>,
    },
}

/// Copy format description of CopyIn/CopyOut/CopyBothResponse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyFormat {
    /// Overall format (0 text, 1 binary).
    pub format: i8,
    /// Per-column format codes.
    pub column_formats: Vec<i16>,
}

/// A message sent by a Postgres server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendMessage {
    /// Single-byte answer to SSLRequest: `S` (accepted) or `N` (refused).
    SslResponse {
        /// True for `S`.
        accepted: bool,
    },
    /// Single-byte answer to GSSENCRequest: `G` (accepted) or `N` (refused).
    GssEncResponse {
        /// True for `G`.
        accepted: bool,
    },
    /// Authentication (`R`).
    Authentication(Authentication),
    /// ParameterStatus (`S`).
    ParameterStatus {
        /// Parameter name.
        name: String,
        /// Its value.
        value: String,
    },
    /// BackendKeyData (`K`): cancellation key.
    BackendKeyData {
        /// Backend process id.
        process_id: i32,
        /// Secret key (4 bytes in protocol 3.0).
        secret_key: Vec<u8>,
    },
    /// ReadyForQuery (`Z`).
    ReadyForQuery(TransactionStatus),
    /// ErrorResponse (`E`).
    ErrorResponse(ErrorFields),
    /// NoticeResponse (`N`).
    NoticeResponse(ErrorFields),
    /// RowDescription (`T`).
    RowDescription(Vec<FieldDescription>),
    /// DataRow (`D`): column values (`None`: NULL).
    DataRow(Vec<Option<Vec<u8>>>),
    /// CommandComplete (`C`) with its command tag.
    CommandComplete(String),
    /// EmptyQueryResponse (`I`).
    EmptyQueryResponse,
    /// ParseComplete (`1`).
    ParseComplete,
    /// BindComplete (`2`).
    BindComplete,
    /// CloseComplete (`3`).
    CloseComplete,
    /// NoData (`n`).
    NoData,
    /// ParameterDescription (`t`): parameter type OIDs.
    ParameterDescription(Vec<u32>),
    /// PortalSuspended (`s`).
    PortalSuspended,
    /// CopyInResponse (`G`).
    CopyInResponse(CopyFormat),
    /// CopyOutResponse (`H`).
    CopyOutResponse(CopyFormat),
    /// CopyBothResponse (`W`).
    CopyBothResponse(CopyFormat),
    /// CopyData (`d`).
    CopyData(Vec<u8>),
    /// CopyDone (`c`).
    CopyDone,
    /// NotificationResponse (`A`).
    NotificationResponse {
        /// Notifying backend's process id.
        process_id: i32,
        /// Channel name.
        channel: String,
        /// Payload string.
        payload: String,
    },
    /// FunctionCallResponse (`V`): result value (`None`: NULL).
    FunctionCallResponse(Option<Vec<u8>>),
    /// NegotiateProtocolVersion (`v`).
    NegotiateProtocolVersion {
        /// Newest minor protocol version the server supports.
        newest_minor: i32,
        /// Protocol options the server did not recognise.
        unrecognized: Vec<String>,
    },
}

impl BackendMessage {
    /// The type byte on the wire (the answer byte for SSL/GSSENC responses).
    pub fn tag(&self) -> u8 {
        use BackendMessage::*;
        match self {
            SslResponse { accepted: true } => b'S',
            GssEncResponse { accepted: true } => b'G',
            SslResponse { accepted: false } | GssEncResponse { accepted: false } => b'N',
            Authentication(_) => b'R',
            ParameterStatus { .. } => b'S',
            BackendKeyData { .. } => b'K',
            ReadyForQuery(_) => b'Z',
            ErrorResponse(_) => b'E',
            NoticeResponse(_) => b'N',
            RowDescription(_) => b'T',
            DataRow(_) => b'D',
            CommandComplete(_) => b'C',
            EmptyQueryResponse => b'I',
            ParseComplete => b'1',
            BindComplete => b'2',
            CloseComplete => b'3',
            NoData => b'n',
            ParameterDescription(_) => b't',
            PortalSuspended => b's',
            CopyInResponse(_) => b'G',
            CopyOutResponse(_) => b'H',
            CopyBothResponse(_) => b'W',
            CopyData(_) => b'd',
            CopyDone => b'c',
            NotificationResponse { .. } => b'A',
            FunctionCallResponse(_) => b'V',
            NegotiateProtocolVersion { .. } => b'v',
        }
    }

    /// Decodes a typed message from its type byte and payload.
    pub fn decode(tag: u8, payload: &[u8]) -> Result<BackendMessage, PgError> {
        use BackendMessage as M;
        let mut r = Reader::new(payload, msg_name(tag));
        let msg = match tag {
            b'R' => M::Authentication(decode_auth(&mut r)?),
            b'S' => M::ParameterStatus {
                name: r.cstr("name")?,
                value: r.cstr("value")?,
            },
            b'K' => {
                let process_id = r.i32("process id")?;
                let key = r.rest();
                if key.len() < 4 || key.len() > MAX_SECRET_KEY_LEN {
                    return Err(r.invalid("secret key length", key.len() as i64));
                }
                M::BackendKeyData {
                    process_id,
                    secret_key: key.to_vec(),
                }
            }
            b'Z' => M::ReadyForQuery(match r.u8("status")? {
                b'I' => TransactionStatus::Idle,
                b'T' => TransactionStatus::InTransaction,
                b'E' => TransactionStatus::Failed,
                other => return Err(r.invalid("status", other.into())),
            }),
            b'E' => M::ErrorResponse(decode_fields(&mut r)?),
            b'N' => M::NoticeResponse(decode_fields(&mut r)?),
            b'T' => {
                let n = r.count("field count")?;
                let mut fields = Vec::with_capacity(n.min(r.remaining() / 19));
                for _ in 0..n {
                    fields.push(FieldDescription {
                        name: r.cstr("field name")?,
                        table_oid: r.u32("table oid")?,
                        column_id: r.i16("column id")?,
                        type_oid: r.u32("type oid")?,
                        type_size: r.i16("type size")?,
                        type_modifier: r.i32("type modifier")?,
                        format: r.i16("format")?,
                    });
                }
                M::RowDescription(fields)
            }
            b'D' => {
                let n = r.count("column count")?;
                let mut cols = Vec::with_capacity(n.min(r.remaining() / 4));
                for _ in 0..n {
                    cols.push(r.nullable("column value")?);
                }
                M::DataRow(cols)
            }
            b'C' => M::CommandComplete(r.cstr("command tag")?),
            b'I' => M::EmptyQueryResponse,
            b'1' => M::ParseComplete,
            b'2' => M::BindComplete,
            b'3' => M::CloseComplete,
            b'n' => M::NoData,
            b't' => {
                let n = r.count("parameter count")?;
                let mut oids = Vec::with_capacity(n.min(r.remaining() / 4));
                for _ in 0..n {
                    oids.push(r.u32("parameter type")?);
                }
                M::ParameterDescription(oids)
            }
            b's' => M::PortalSuspended,
            b'G' => M::CopyInResponse(decode_copy_format(&mut r)?),
            b'H' => M::CopyOutResponse(decode_copy_format(&mut r)?),
            b'W' => M::CopyBothResponse(decode_copy_format(&mut r)?),
            b'd' => M::CopyData(r.rest().to_vec()),
            b'c' => M::CopyDone,
            b'A' => M::NotificationResponse {
                process_id: r.i32("process id")?,
                channel: r.cstr("channel")?,
                payload: r.cstr("payload")?,
            },
            b'V' => M::FunctionCallResponse(r.nullable("result")?),
            b'v' => {
                let newest_minor = r.i32("newest minor version")?;
                let n = r.i32("option count")?;
                if n < 0 {
                    return Err(r.invalid("option count", n.into()));
                }
                let mut unrecognized = Vec::new();
                for _ in 0..n {
                    unrecognized.push(r.cstr("option name")?);
                }
                M::NegotiateProtocolVersion {
                    newest_minor,
                    unrecognized,
                }
            }
            other => {
                return Err(PgError::UnknownTag {
                    direction: "backend",
                    tag: other,
                })
            }
        };
        r.finish()?;
        Ok(msg)
    }

    /// Appends the encoded message to `out`; on error `out` is left unchanged.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), PgError> {
        encode_with(out, |out| self.encode_inner(out))
    }

    /// Encodes the message into a new buffer.
    pub fn to_bytes(&self) -> Result<Vec<u8>, PgError> {
        let mut out = Vec::new();
        self.encode(&mut out)?;
        Ok(out)
    }

    fn encode_inner(&self, out: &mut Vec<u8>) -> Result<(), PgError> {
        use BackendMessage as M;
        if let M::SslResponse { .. } | M::GssEncResponse { .. } = self {
            out.push(self.tag());
            return Ok(());
        }
        let at = begin(out, Some(self.tag()));
        match self {
            M::SslResponse { .. } | M::GssEncResponse { .. } => {}
            M::Authentication(a) => encode_auth(a, out)?,
            M::ParameterStatus { name, value } => {
                put_cstr(out, name.as_bytes(), "parameter name")?;
                put_cstr(out, value.as_bytes(), "parameter value")?;
            }
            M::BackendKeyData {
                process_id,
                secret_key,
            } => {
                if secret_key.len() < 4 || secret_key.len() > MAX_SECRET_KEY_LEN {
                    return Err(PgError::NotEncodable("secret key outside 4..=256 bytes"));
                }
                out.extend_from_slice(&process_id.to_be_bytes());
                out.extend_from_slice(secret_key);
            }
            M::ReadyForQuery(s) => out.push(s.byte()),
            M::ErrorResponse(f) | M::NoticeResponse(f) => {
                for (code, value) in &f.0 {
                    if *code == 0 {
                        return Err(PgError::NotEncodable("error field with code byte 0"));
                    }
                    out.push(*code);
                    put_cstr(out, value.as_bytes(), "error field")?;
                }
                out.push(0);
            }
            M::RowDescription(fields) => {
                put_count(out, fields.len(), "field")?;
                for f in fields {
                    put_cstr(out, f.name.as_bytes(), "field name")?;
                    out.extend_from_slice(&f.table_oid.to_be_bytes());
                    out.extend_from_slice(&f.column_id.to_be_bytes());
                    out.extend_from_slice(&f.type_oid.to_be_bytes());
                    out.extend_from_slice(&f.type_size.to_be_bytes());
                    out.extend_from_slice(&f.type_modifier.to_be_bytes());
                    out.extend_from_slice(&f.format.to_be_bytes());
                }
            }
            M::DataRow(cols) => {
                put_count(out, cols.len(), "column")?;
                for c in cols {
                    put_nullable(out, c.as_deref(), "column value")?;
                }
            }
            M::CommandComplete(t) => put_cstr(out, t.as_bytes(), "command tag")?,
            M::EmptyQueryResponse
            | M::ParseComplete
            | M::BindComplete
            | M::CloseComplete
            | M::NoData
            | M::PortalSuspended
            | M::CopyDone => {}
            M::ParameterDescription(oids) => {
                put_count(out, oids.len(), "parameter")?;
                for o in oids {
                    out.extend_from_slice(&o.to_be_bytes());
                }
            }
            M::CopyInResponse(f) | M::CopyOutResponse(f) | M::CopyBothResponse(f) => {
                out.push(f.format as u8);
                put_count(out, f.column_formats.len(), "column format")?;
                for c in &f.column_formats {
                    out.extend_from_slice(&c.to_be_bytes());
                }
            }
            M::CopyData(b) => out.extend_from_slice(b),
            M::NotificationResponse {
                process_id,
                channel,
                payload,
            } => {
                out.extend_from_slice(&process_id.to_be_bytes());
                put_cstr(out, channel.as_bytes(), "channel")?;
                put_cstr(out, payload.as_bytes(), "payload")?;
            }
            M::FunctionCallResponse(v) => put_nullable(out, v.as_deref(), "result")?,
            M::NegotiateProtocolVersion {
                newest_minor,
                unrecognized,
            } => {
                out.extend_from_slice(&newest_minor.to_be_bytes());
                let n = i32::try_from(unrecognized.len()).map_err(|_| PgError::TooLong {
                    what: "option list",
                    n: unrecognized.len(),
                })?;
                out.extend_from_slice(&n.to_be_bytes());
                for o in unrecognized {
                    put_cstr(out, o.as_bytes(), "option name")?;
                }
            }
        }
        finish(out, at)
    }
}

fn decode_auth(r: &mut Reader<'_>) -> Result<Authentication, PgError> {
    let code = r.i32("method")?;
    Ok(match code {
        0 => Authentication::Ok,
        3 => Authentication::CleartextPassword,
        5 => {
            let s = r.bytes(4, "salt")?;
            Authentication::Md5Password {
                salt: [s[0], s[1], s[2], s[3]],
            }
        }
        10 => {
            let mut mechanisms = Vec::new();
            loop {
                let m = r.cstr("mechanism")?;
                if m.is_empty() {
                    break;
                }
                mechanisms.push(m);
            }
            Authentication::Sasl { mechanisms }
        }
        11 => Authentication::SaslContinue(r.rest().to_vec()),
        12 => Authentication::SaslFinal(r.rest().to_vec()),
        code => Authentication::Unsupported {
            code,
            data: r.rest().to_vec(),
        },
    })
}

fn encode_auth(a: &Authentication, out: &mut Vec<u8>) -> Result<(), PgError> {
    let (code, rest): (i32, &[u8]) = match a {
        Authentication::Ok => (0, &[]),
        Authentication::CleartextPassword => (3, &[]),
        Authentication::Md5Password { salt } => (5, salt),
        Authentication::Sasl { mechanisms } => {
            out.extend_from_slice(&10i32.to_be_bytes());
            for m in mechanisms {
                if m.is_empty() {
                    return Err(PgError::NotEncodable("empty SASL mechanism name"));
                }
                put_cstr(out, m.as_bytes(), "mechanism")?;
            }
            out.push(0);
            return Ok(());
        }
        Authentication::SaslContinue(d) => (11, d),
        Authentication::SaslFinal(d) => (12, d),
        Authentication::Unsupported { code, data } => {
            if matches!(code, 0 | 3 | 5 | 10 | 11 | 12) {
                return Err(PgError::NotEncodable(
                    "unsupported authentication with a supported method code",
                ));
            }
            (*code, data)
        }
    };
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(rest);
    Ok(())
}

fn decode_fields(r: &mut Reader<'_>) -> Result<ErrorFields, PgError> {
    let mut fields = Vec::new();
    loop {
        let code = r.u8("field code")?;
        if code == 0 {
            break;
        }
        fields.push((code, r.cstr("field value")?));
    }
    Ok(ErrorFields(fields))
}

fn decode_copy_format(r: &mut Reader<'_>) -> Result<CopyFormat, PgError> {
    let format = r.u8("format")? as i8;
    let n = r.count("column count")?;
    let mut column_formats = Vec::with_capacity(n.min(r.remaining() / 2));
    for _ in 0..n {
        column_formats.push(r.i16("column format")?);
    }
    Ok(CopyFormat {
        format,
        column_formats,
    })
}

fn msg_name(tag: u8) -> &'static str {
    match tag {
        b'R' => "Authentication",
        b'S' => "ParameterStatus",
        b'K' => "BackendKeyData",
        b'Z' => "ReadyForQuery",
        b'E' => "ErrorResponse",
        b'N' => "NoticeResponse",
        b'T' => "RowDescription",
        b'D' => "DataRow",
        b'C' => "CommandComplete",
        b't' => "ParameterDescription",
        b'G' => "CopyInResponse",
        b'H' => "CopyOutResponse",
        b'W' => "CopyBothResponse",
        b'A' => "NotificationResponse",
        b'V' => "FunctionCallResponse",
        b'v' => "NegotiateProtocolVersion",
        _ => "backend message",
    }
}

/// What the backend decoder expects next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendMode {
    /// Typed messages.
    #[default]
    Typed,
    /// The single-byte answer to an SSLRequest (`S`/`N`; `E` starts an ErrorResponse).
    SslAnswer,
    /// The single-byte answer to a GSSENCRequest (`G`/`N`; `E` starts an ErrorResponse).
    GssEncAnswer,
}

/// Incremental decoder of the server → client byte stream.
///
/// Feed bytes with [`feed`](Self::feed), then call [`next_frame`](Self::next_frame) until it
/// returns `Ok(None)`. After an error the decoder returns [`PgError::Poisoned`].
#[derive(Debug, Clone)]
pub struct BackendDecoder {
    frames: FrameBuffer,
    mode: BackendMode,
}

impl Default for BackendDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl BackendDecoder {
    /// A decoder of typed messages with the default 1 MiB payload limit.
    pub fn new() -> Self {
        Self::with_max_payload(DEFAULT_MAX_PAYLOAD_LEN)
    }

    /// A decoder of typed messages with a payload limit of `max_payload_len` bytes.
    pub fn with_max_payload(max_payload_len: usize) -> Self {
        BackendDecoder {
            frames: FrameBuffer::new(max_payload_len),
            mode: BackendMode::Typed,
        }
    }

    /// Stream oversize frames as [`Decoded::OversizeStart`]/chunks/end instead of failing.
    pub fn set_stream_oversize(&mut self, on: bool) {
        self.frames.stream_oversize = on;
    }

    /// The current mode.
    pub fn mode(&self) -> BackendMode {
        self.mode
    }

    /// Sets what is expected next (call with `SslAnswer` right after sending an SSLRequest).
    pub fn set_mode(&mut self, mode: BackendMode) {
        self.mode = mode;
    }

    /// Appends received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        self.frames.feed(data);
    }

    /// Number of bytes fed but not yet returned.
    pub fn buffered_len(&self) -> usize {
        self.frames.buffered_len()
    }

    /// Header of the next typed frame, if its 5 header bytes are buffered (body may not be).
    pub fn peek_header(&self) -> Result<Option<FrameHeader>, PgError> {
        self.frames.check()?;
        if self.mode != BackendMode::Typed || self.frames.in_oversize() {
            return Ok(None);
        }
        FrameHeader::parse(self.frames.pending())
    }

    /// Next complete message or oversize-stream event; `Ok(None)` when more bytes are needed.
    ///
    /// An accepting encryption answer (`S`/`G`) followed by already-buffered bytes is an error:
    /// those bytes were not protected by the handshake that must come next.
    pub fn next_frame(&mut self) -> Result<Option<Decoded<BackendMessage>>, PgError> {
        let r = self.next_inner();
        self.frames.poison(r)
    }

    fn next_inner(&mut self) -> Result<Option<Decoded<BackendMessage>>, PgError> {
        self.frames.check()?;
        if self.mode != BackendMode::Typed {
            let Some(&b) = self.frames.pending().first() else {
                return Ok(None);
            };
            let ssl = self.mode == BackendMode::SslAnswer;
            let msg = match b {
                b'E' => {
                    // Servers that do not know the request answer with an ErrorResponse.
                    self.mode = BackendMode::Typed;
                    return self.next_inner();
                }
                b'N' if ssl => BackendMessage::SslResponse { accepted: false },
                b'N' => BackendMessage::GssEncResponse { accepted: false },
                b'S' if ssl => BackendMessage::SslResponse { accepted: true },
                b'G' if !ssl => BackendMessage::GssEncResponse { accepted: true },
                other => return Err(PgError::BadEncryptionAnswer(other)),
            };
            self.frames.take_byte();
            self.mode = BackendMode::Typed;
            let accepted = matches!(
                msg,
                BackendMessage::SslResponse { accepted: true }
                    | BackendMessage::GssEncResponse { accepted: true }
            );
            if accepted && self.frames.buffered_len() > 0 {
                return Err(PgError::DataAfterEncryptionAnswer(
                    self.frames.buffered_len(),
                ));
            }
            return Ok(Some(Decoded::Message(msg)));
        }
        match self.frames.next_typed()? {
            None => Ok(None),
            Some(RawItem::Oversize(ev)) => Ok(Some(ev.into_decoded())),
            Some(RawItem::Frame { tag, payload }) => Ok(Some(Decoded::Message(
                BackendMessage::decode(tag, &payload)?,
            ))),
        }
    }
}
