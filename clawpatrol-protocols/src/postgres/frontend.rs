//! Frontend (client → server) messages: startup-phase packets and typed messages, their
//! decoder and encoder.

use super::codec::{
    begin, encode_with, finish, put_count, put_cstr, put_nullable, Decoded, FrameBuffer,
    FrameHeader, PgError, RawItem, Reader, DEFAULT_MAX_PAYLOAD_LEN,
};

/// Request code of an SSLRequest packet.
pub const SSL_REQUEST_CODE: i32 = 80_877_103;
/// Request code of a GSSENCRequest packet.
pub const GSSENC_REQUEST_CODE: i32 = 80_877_104;
/// Request code of a CancelRequest packet.
pub const CANCEL_REQUEST_CODE: i32 = 80_877_102;
/// Largest cancel secret key accepted (protocol 3.2 allows variable-length keys up to 256 bytes).
pub const MAX_SECRET_KEY_LEN: usize = 256;

/// A protocol version from a StartupMessage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtocolVersion {
    /// Major version (3).
    pub major: u16,
    /// Minor version (0 or 2).
    pub minor: u16,
}

impl ProtocolVersion {
    /// Protocol 3.0, spoken by every supported server.
    pub const V3_0: ProtocolVersion = ProtocolVersion { major: 3, minor: 0 };
    /// Protocol 3.2 (PostgreSQL 18: variable-length cancel keys).
    pub const V3_2: ProtocolVersion = ProtocolVersion { major: 3, minor: 2 };

    fn code(self) -> i32 {
        ((self.major as i32) << 16) | self.minor as i32
    }
}

/// Target of a Describe or Close message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A prepared statement (`S`).
    Statement,
    /// A portal (`P`).
    Portal,
}

impl Target {
    fn byte(self) -> u8 {
        match self {
            Target::Statement => b'S',
            Target::Portal => b'P',
        }
    }
}

/// How the decoder reads the payload of a `p` message, whose meaning depends on the auth step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthResponseKind {
    /// Keep the payload undecoded ([`FrontendMessage::AuthResponse`]).
    #[default]
    Raw,
    /// PasswordMessage (cleartext or MD5 hash).
    Password,
    /// SASLInitialResponse.
    SaslInitial,
    /// SASLResponse.
    Sasl,
}

/// Which framing the frontend decoder expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FrontendPhase {
    /// Untyped packets: SSLRequest, GSSENCRequest, CancelRequest, StartupMessage.
    #[default]
    Startup,
    /// Typed messages after the StartupMessage.
    Typed,
}

/// A message sent by a Postgres client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrontendMessage {
    /// SSLRequest (startup phase).
    SslRequest,
    /// GSSENCRequest (startup phase).
    GssEncRequest,
    /// CancelRequest (startup phase): process id and secret key of the target backend.
    CancelRequest {
        /// Backend process id.
        process_id: i32,
        /// Secret key (4 bytes in protocol 3.0).
        secret_key: Vec<u8>,
    },
    /// StartupMessage (startup phase) with its parameters in wire order.
    Startup {
        /// Requested protocol version.
        version: ProtocolVersion,
        /// Parameters (`user`, `database`, `options`, …) as ordered pairs.
        params: Vec<(String, String)>,
    },
    /// A `p` message kept undecoded ([`AuthResponseKind::Raw`]).
    AuthResponse(Vec<u8>),
    /// PasswordMessage: cleartext password or `md5…` hash (without the NUL).
    Password(Vec<u8>),
    /// SASLInitialResponse: mechanism and optional initial client data.
    SaslInitialResponse {
        /// Mechanism name, e.g. `SCRAM-SHA-256`.
        mechanism: String,
        /// Initial response (`None` is encoded as length -1).
        data: Option<Vec<u8>>,
    },
    /// SASLResponse: the next SASL client message.
    SaslResponse(Vec<u8>),
    /// Query (`Q`): simple-protocol SQL text.
    Query(String),
    /// Parse (`P`): statement name, SQL text, parameter type OIDs.
    Parse {
        /// Prepared statement name (empty: unnamed).
        name: String,
        /// SQL text.
        query: String,
        /// Parameter type OIDs (0: unspecified).
        param_types: Vec<u32>,
    },
    /// Bind (`B`).
    Bind {
        /// Destination portal name.
        portal: String,
        /// Source prepared statement name.
        statement: String,
        /// Parameter format codes.
        param_formats: Vec<i16>,
        /// Parameter values (`None`: NULL).
        params: Vec<Option<Vec<u8>>>,
        /// Result column format codes.
        result_formats: Vec<i16>,
    },
    /// Describe (`D`) a statement or portal.
    Describe {
        /// Statement or portal.
        target: Target,
        /// Its name.
        name: String,
    },
    /// Execute (`E`) a portal.
    Execute {
        /// Portal name.
        portal: String,
        /// Row limit (0: no limit).
        max_rows: i32,
    },
    /// Sync (`S`).
    Sync,
    /// Flush (`H`).
    Flush,
    /// Close (`C`) a statement or portal.
    Close {
        /// Statement or portal.
        target: Target,
        /// Its name.
        name: String,
    },
    /// FunctionCall (`F`): legacy fast-path call.
    FunctionCall {
        /// Function OID.
        function: u32,
        /// Argument format codes.
        arg_formats: Vec<i16>,
        /// Argument values (`None`: NULL).
        args: Vec<Option<Vec<u8>>>,
        /// Result format code.
        result_format: i16,
    },
    /// CopyData (`d`).
    CopyData(Vec<u8>),
    /// CopyDone (`c`).
    CopyDone,
    /// CopyFail (`f`) with an error message.
    CopyFail(String),
    /// Terminate (`X`).
    Terminate,
}

impl FrontendMessage {
    /// The type byte of a typed message; `None` for startup-phase packets.
    pub fn tag(&self) -> Option<u8> {
        use FrontendMessage::*;
        Some(match self {
            SslRequest | GssEncRequest | CancelRequest { .. } | Startup { .. } => return None,
            AuthResponse(_) | Password(_) | SaslInitialResponse { .. } | SaslResponse(_) => b'p',
            Query(_) => b'Q',
            Parse { .. } => b'P',
            Bind { .. } => b'B',
            Describe { .. } => b'D',
            Execute { .. } => b'E',
            Sync => b'S',
            Flush => b'H',
            Close { .. } => b'C',
            FunctionCall { .. } => b'F',
            CopyData(_) => b'd',
            CopyDone => b'c',
            CopyFail(_) => b'f',
            Terminate => b'X',
        })
    }

    /// The StartupMessage v3.0 the gateway sends upstream: `user`, plus `database` unless equal to it.
    pub fn upstream_startup(user: &str, database: &str) -> FrontendMessage {
        let mut params = vec![("user".to_owned(), user.to_owned())];
        if database != user {
            params.push(("database".to_owned(), database.to_owned()));
        }
        FrontendMessage::Startup {
            version: ProtocolVersion::V3_0,
            params,
        }
    }

    /// Value of a StartupMessage parameter (first occurrence); `None` for other messages.
    pub fn startup_param(&self, key: &str) -> Option<&str> {
        match self {
            FrontendMessage::Startup { params, .. } => params
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str()),
            _ => None,
        }
    }

    /// Decodes a startup-phase packet from its payload (bytes after the length field).
    pub fn decode_startup(payload: &[u8]) -> Result<FrontendMessage, PgError> {
        let mut r = Reader::new(payload, "startup packet");
        let code = r.i32("request code")?;
        let msg = match code {
            SSL_REQUEST_CODE => FrontendMessage::SslRequest,
            GSSENC_REQUEST_CODE => FrontendMessage::GssEncRequest,
            CANCEL_REQUEST_CODE => {
                let process_id = r.i32("process id")?;
                let key = r.rest();
                if key.len() < 4 || key.len() > MAX_SECRET_KEY_LEN {
                    return Err(r.invalid("secret key length", key.len() as i64));
                }
                FrontendMessage::CancelRequest {
                    process_id,
                    secret_key: key.to_vec(),
                }
            }
            _ => {
                let version = ProtocolVersion {
                    major: (code >> 16) as u16,
                    minor: (code & 0xffff) as u16,
                };
                if version != ProtocolVersion::V3_0 && version != ProtocolVersion::V3_2 {
                    return Err(PgError::UnsupportedProtocol {
                        major: version.major,
                        minor: version.minor,
                    });
                }
                let mut params = Vec::new();
                loop {
                    let key = r.cstr("parameter name")?;
                    if key.is_empty() {
                        break;
                    }
                    let value = r.cstr("parameter value")?;
                    params.push((key, value));
                }
                FrontendMessage::Startup { version, params }
            }
        };
        r.finish()?;
        Ok(msg)
    }

    /// Decodes a typed message from its type byte and payload.
    pub fn decode_typed(
        tag: u8,
        payload: &[u8],
        auth: AuthResponseKind,
    ) -> Result<FrontendMessage, PgError> {
        use FrontendMessage as M;
        let mut r = Reader::new(payload, msg_name(tag));
        let msg = match tag {
            b'p' => match auth {
                AuthResponseKind::Raw => M::AuthResponse(r.rest().to_vec()),
                AuthResponseKind::Password => M::Password(r.cstr_bytes("password")?.to_vec()),
                AuthResponseKind::SaslInitial => M::SaslInitialResponse {
                    mechanism: r.cstr("mechanism")?,
                    data: r.nullable("initial response")?,
                },
                AuthResponseKind::Sasl => M::SaslResponse(r.rest().to_vec()),
            },
            b'Q' => M::Query(r.cstr("query")?),
            b'P' => {
                let name = r.cstr("statement name")?;
                let query = r.cstr("query")?;
                let n = r.count("parameter type count")?;
                let mut param_types = Vec::with_capacity(n.min(r.remaining() / 4));
                for _ in 0..n {
                    param_types.push(r.u32("parameter type")?);
                }
                M::Parse {
                    name,
                    query,
                    param_types,
                }
            }
            b'B' => {
                let portal = r.cstr("portal name")?;
                let statement = r.cstr("statement name")?;
                let param_formats = read_formats(&mut r, "parameter format")?;
                let n = r.count("parameter count")?;
                let mut params = Vec::with_capacity(n.min(r.remaining() / 4));
                for _ in 0..n {
                    params.push(r.nullable("parameter value")?);
                }
                let result_formats = read_formats(&mut r, "result format")?;
                M::Bind {
                    portal,
                    statement,
                    param_formats,
                    params,
                    result_formats,
                }
            }
            b'D' | b'C' => {
                let t = r.u8("target")?;
                let target = match t {
                    b'S' => Target::Statement,
                    b'P' => Target::Portal,
                    other => return Err(r.invalid("target", other.into())),
                };
                let name = r.cstr("name")?;
                if tag == b'D' {
                    M::Describe { target, name }
                } else {
                    M::Close { target, name }
                }
            }
            b'E' => M::Execute {
                portal: r.cstr("portal name")?,
                max_rows: r.i32("max rows")?,
            },
            b'S' => M::Sync,
            b'H' => M::Flush,
            b'F' => {
                let function = r.u32("function oid")?;
                let arg_formats = read_formats(&mut r, "argument format")?;
                let n = r.count("argument count")?;
                let mut args = Vec::with_capacity(n.min(r.remaining() / 4));
                for _ in 0..n {
                    args.push(r.nullable("argument value")?);
                }
                M::FunctionCall {
                    function,
                    arg_formats,
                    args,
                    result_format: r.i16("result format")?,
                }
            }
            b'd' => M::CopyData(r.rest().to_vec()),
            b'c' => M::CopyDone,
            b'f' => M::CopyFail(r.cstr("error message")?),
            b'X' => M::Terminate,
            other => {
                return Err(PgError::UnknownTag {
                    direction: "frontend",
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
        use FrontendMessage as M;
        let at = begin(out, self.tag());
        match self {
            M::SslRequest => out.extend_from_slice(&SSL_REQUEST_CODE.to_be_bytes()),
            M::GssEncRequest => out.extend_from_slice(&GSSENC_REQUEST_CODE.to_be_bytes()),
            M::CancelRequest {
                process_id,
                secret_key,
            } => {
                if secret_key.len() < 4 || secret_key.len() > MAX_SECRET_KEY_LEN {
                    return Err(PgError::NotEncodable("secret key outside 4..=256 bytes"));
                }
                out.extend_from_slice(&CANCEL_REQUEST_CODE.to_be_bytes());
                out.extend_from_slice(&process_id.to_be_bytes());
                out.extend_from_slice(secret_key);
            }
            M::Startup { version, params } => {
                out.extend_from_slice(&version.code().to_be_bytes());
                for (k, v) in params {
                    if k.is_empty() {
                        return Err(PgError::NotEncodable(
                            "startup parameter with an empty name",
                        ));
                    }
                    put_cstr(out, k.as_bytes(), "startup parameter name")?;
                    put_cstr(out, v.as_bytes(), "startup parameter value")?;
                }
                out.push(0);
            }
            M::AuthResponse(b) | M::SaslResponse(b) | M::CopyData(b) => out.extend_from_slice(b),
            M::Password(p) => put_cstr(out, p, "password")?,
            M::SaslInitialResponse { mechanism, data } => {
                put_cstr(out, mechanism.as_bytes(), "mechanism")?;
                put_nullable(out, data.as_deref(), "initial response")?;
            }
            M::Query(q) => put_cstr(out, q.as_bytes(), "query")?,
            M::Parse {
                name,
                query,
                param_types,
            } => {
                put_cstr(out, name.as_bytes(), "statement name")?;
                put_cstr(out, query.as_bytes(), "query")?;
                put_count(out, param_types.len(), "parameter type")?;
                for t in param_types {
                    out.extend_from_slice(&t.to_be_bytes());
                }
            }
            M::Bind {
                portal,
                statement,
                param_formats,
                params,
                result_formats,
            } => {
                put_cstr(out, portal.as_bytes(), "portal name")?;
                put_cstr(out, statement.as_bytes(), "statement name")?;
                put_formats(out, param_formats, "parameter format")?;
                put_count(out, params.len(), "parameter")?;
                for p in params {
                    put_nullable(out, p.as_deref(), "parameter value")?;
                }
                put_formats(out, result_formats, "result format")?;
            }
            M::Describe { target, name } | M::Close { target, name } => {
                out.push(target.byte());
                put_cstr(out, name.as_bytes(), "name")?;
            }
            M::Execute { portal, max_rows } => {
                put_cstr(out, portal.as_bytes(), "portal name")?;
                out.extend_from_slice(&max_rows.to_be_bytes());
            }
            M::Sync | M::Flush | M::CopyDone | M::Terminate => {}
            M::FunctionCall {
                function,
                arg_formats,
                args,
                result_format,
            } => {
                out.extend_from_slice(&function.to_be_bytes());
                put_formats(out, arg_formats, "argument format")?;
                put_count(out, args.len(), "argument")?;
                for a in args {
                    put_nullable(out, a.as_deref(), "argument value")?;
                }
                out.extend_from_slice(&result_format.to_be_bytes());
            }
            M::CopyFail(m) => put_cstr(out, m.as_bytes(), "error message")?,
        }
        finish(out, at)
    }
}

fn read_formats(r: &mut Reader<'_>, what: &'static str) -> Result<Vec<i16>, PgError> {
    let n = r.count(what)?;
    let mut v = Vec::with_capacity(n.min(r.remaining() / 2));
    for _ in 0..n {
        v.push(r.i16(what)?);
    }
    Ok(v)
}

fn put_formats(out: &mut Vec<u8>, v: &[i16], what: &'static str) -> Result<(), PgError> {
    put_count(out, v.len(), what)?;
    for f in v {
        out.extend_from_slice(&f.to_be_bytes());
    }
    Ok(())
}

fn msg_name(tag: u8) -> &'static str {
    match tag {
        b'p' => "password message",
        b'Q' => "Query",
        b'P' => "Parse",
        b'B' => "Bind",
        b'D' => "Describe",
        b'E' => "Execute",
        b'S' => "Sync",
        b'H' => "Flush",
        b'C' => "Close",
        b'F' => "FunctionCall",
        b'd' => "CopyData",
        b'c' => "CopyDone",
        b'f' => "CopyFail",
        b'X' => "Terminate",
        _ => "frontend message",
    }
}

/// Incremental decoder of the client → server byte stream.
///
/// Feed bytes with [`feed`](Self::feed), then call [`next_frame`](Self::next_frame) until it
/// returns `Ok(None)` ("need more"). The caller switches to [`FrontendPhase::Typed`] after the
/// StartupMessage. After an error the decoder returns [`PgError::Poisoned`]: close the connection.
#[derive(Debug, Clone)]
pub struct FrontendDecoder {
    frames: FrameBuffer,
    phase: FrontendPhase,
    auth: AuthResponseKind,
}

impl Default for FrontendDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrontendDecoder {
    /// A decoder in the startup phase with the default 1 MiB payload limit.
    pub fn new() -> Self {
        Self::with_max_payload(DEFAULT_MAX_PAYLOAD_LEN)
    }

    /// A decoder in the startup phase with a payload limit of `max_payload_len` bytes.
    pub fn with_max_payload(max_payload_len: usize) -> Self {
        FrontendDecoder {
            frames: FrameBuffer::new(max_payload_len),
            phase: FrontendPhase::Startup,
            auth: AuthResponseKind::Raw,
        }
    }

    /// Stream oversize typed frames as [`Decoded::OversizeStart`]/chunks/end instead of failing.
    pub fn set_stream_oversize(&mut self, on: bool) {
        self.frames.stream_oversize = on;
    }

    /// The payload limit in bytes.
    pub fn max_payload_len(&self) -> usize {
        self.frames.max_payload
    }

    /// The current phase.
    pub fn phase(&self) -> FrontendPhase {
        self.phase
    }

    /// Switches between startup-phase and typed framing.
    pub fn set_phase(&mut self, phase: FrontendPhase) {
        self.phase = phase;
    }

    /// Sets how the next `p` messages are decoded.
    pub fn set_auth_response_kind(&mut self, kind: AuthResponseKind) {
        self.auth = kind;
    }

    /// Appends received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        self.frames.feed(data);
    }

    /// Number of bytes fed but not yet returned.
    pub fn buffered_len(&self) -> usize {
        self.frames.buffered_len()
    }

    /// True while the body of an oversize frame is being streamed.
    pub fn in_oversize_frame(&self) -> bool {
        self.frames.in_oversize()
    }

    /// Header of the next typed frame, if its 5 header bytes are buffered (body may not be).
    pub fn peek_header(&self) -> Result<Option<FrameHeader>, PgError> {
        self.frames.check()?;
        if self.phase != FrontendPhase::Typed || self.frames.in_oversize() {
            return Ok(None);
        }
        FrameHeader::parse(self.frames.pending())
    }

    /// Next complete message or oversize-stream event; `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Decoded<FrontendMessage>>, PgError> {
        let r = self.next_inner();
        self.frames.poison(r)
    }

    fn next_inner(&mut self) -> Result<Option<Decoded<FrontendMessage>>, PgError> {
        match self.phase {
            FrontendPhase::Startup => match self.frames.next_startup()? {
                None => Ok(None),
                Some(payload) => Ok(Some(Decoded::Message(FrontendMessage::decode_startup(
                    &payload,
                )?))),
            },
            FrontendPhase::Typed => match self.frames.next_typed()? {
                None => Ok(None),
                Some(RawItem::Oversize(ev)) => Ok(Some(ev.into_decoded())),
                Some(RawItem::Frame { tag, payload }) => Ok(Some(Decoded::Message(
                    FrontendMessage::decode_typed(tag, &payload, self.auth)?,
                ))),
            },
        }
    }
}
