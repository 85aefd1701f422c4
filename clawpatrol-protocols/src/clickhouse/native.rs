//! ClickHouse native TCP protocol: the client packets the gateway gates (`Hello`, `Query`,
//! `Data`, `Ping`, `Cancel`) and the server packets it writes (`Hello`, `Exception`, `Pong`,
//! `EndOfStream`) — reference §2.10, §2.11, §4.4.3.
//!
//! Wire types: `varuint` is unsigned LEB128 (at most 10 bytes), `string` is a varuint length
//! followed by that many bytes, fixed-width integers are little-endian.
//!
//! Revision gates assumed (the protocol revision is `min(client, server)` after the Hello
//! exchange; the constants below name the first revision with each field):
//!
//! | field | revision |
//! |---|---|
//! | client info in Query | 54032 |
//! | quota key in client info | 54060 |
//! | client version patch | 54401 |
//! | settings as strings with flags (binary before: refused unless empty) | 54429 |
//! | interserver secret | 54441 |
//! | externally granted roles (a string before the interserver secret) | 54472 |
//! | OpenTelemetry trace context | 54442 |
//! | `X-Forwarded-For` (HTTP interface) | 54443 |
//! | HTTP referer (HTTP interface) | 54447 |
//! | distributed depth | 54448 |
//! | initial query start time | 54449 |
//! | parallel replicas fields | 54453 |
//! | custom serialization flag per Data column | 54454 |
//! | Hello addendum (quota key) | 54458 |
//! | query parameters | 54459 |
//! | server Hello password rules | 54461 |
//! | server Hello nonce | 54462 |
//! | chunked-packet capabilities (Hello, addendum) | 54470 |
//! | parallel replicas protocol version (Hello, addendum) | 54471 |
//! | server settings in server Hello | 54474 |
//! | script query/line numbers in client info | 54475 |
//! | JWT in client info | 54476 |
//! | query plan serialization version in server Hello | 54477 |
//! | cluster function protocol version in server Hello | 54479 |
//!
//! Chunked packet framing (negotiated only when both sides ask for `chunked`) is not
//! decoded: the gateway must keep both capabilities at `notchunked`.
//!
//! `Data` packets are framed far enough to skip them: uncompressed blocks of common column
//! types are walked; compressed blocks are skipped frame by frame, a block ending at the
//! first frame whose decompressed size is below the 1 MiB `max_compress_block_size` the
//! writer flushes at (a block that is an exact multiple of it is misframed and then fails
//! to decode: fail closed).

use thiserror::Error;

/// The Query-body inspection cap of the gateway (reference §2.10): 1 MiB.
pub const QUERY_INSPECTION_CAP: usize = 1 << 20;
/// Default largest packet a decoder buffers: the inspection cap plus 64 KiB of headroom.
pub const DEFAULT_MAX_PACKET: usize = QUERY_INSPECTION_CAP + (64 << 10);
/// `DB::ErrorCodes::ACCESS_DENIED`.
pub const ACCESS_DENIED: i32 = 497;
/// The exception name the gateway's deny carries.
pub const EXCEPTION_NAME: &str = "DB::Exception";
/// Block size at which ClickHouse's compressed writer cuts frames (`max_compress_block_size`).
pub const MAX_COMPRESS_BLOCK_SIZE: u32 = 1 << 20;

/// First revision with client info in Query.
pub const REV_CLIENT_INFO: u64 = 54032;
/// First revision with the server timezone in server Hello.
pub const REV_SERVER_TIMEZONE: u64 = 54058;
/// First revision with the quota key in client info.
pub const REV_QUOTA_KEY_IN_CLIENT_INFO: u64 = 54060;
/// First revision with the server display name in server Hello.
pub const REV_SERVER_DISPLAY_NAME: u64 = 54372;
/// First revision with the version patch.
pub const REV_VERSION_PATCH: u64 = 54401;
/// First revision with settings serialised as strings with flags.
pub const REV_SETTINGS_AS_STRINGS: u64 = 54429;
/// First revision with the interserver secret in Query.
pub const REV_INTERSERVER_SECRET: u64 = 54441;
/// First revision with the OpenTelemetry context in client info.
pub const REV_OPENTELEMETRY: u64 = 54442;
/// First revision with `X-Forwarded-For` in client info.
pub const REV_X_FORWARDED_FOR: u64 = 54443;
/// First revision with the HTTP referer in client info.
pub const REV_REFERER: u64 = 54447;
/// First revision with the distributed depth in client info.
pub const REV_DISTRIBUTED_DEPTH: u64 = 54448;
/// First revision with the initial query start time in client info.
pub const REV_INITIAL_QUERY_START_TIME: u64 = 54449;
/// First revision with parallel replicas fields in client info.
pub const REV_PARALLEL_REPLICAS: u64 = 54453;
/// First revision with a custom serialization flag per Data column.
pub const REV_CUSTOM_SERIALIZATION: u64 = 54454;
/// First revision with the Hello addendum.
pub const REV_ADDENDUM: u64 = 54458;
/// First revision with query parameters.
pub const REV_PARAMETERS: u64 = 54459;
/// First revision with password complexity rules in server Hello.
pub const REV_PASSWORD_RULES: u64 = 54461;
/// First revision with the interserver nonce in server Hello.
pub const REV_INTERSERVER_SECRET_V2: u64 = 54462;
/// First revision with chunked-packet capabilities.
pub const REV_CHUNKED_PACKETS: u64 = 54470;
/// First revision with the versioned parallel replicas protocol.
pub const REV_VERSIONED_PARALLEL_REPLICAS: u64 = 54471;
/// First revision with externally granted roles in Query.
pub const REV_EXTERNAL_ROLES: u64 = 54472;
/// First revision with server settings in server Hello.
pub const REV_SERVER_SETTINGS: u64 = 54474;
/// First revision with script query and line numbers in client info.
pub const REV_QUERY_AND_LINE_NUMBERS: u64 = 54475;
/// First revision with a JWT in client info.
pub const REV_JWT_IN_INTERSERVER: u64 = 54476;
/// First revision with the query plan serialization version in server Hello.
pub const REV_QUERY_PLAN_SERIALIZATION: u64 = 54477;
/// First revision with the cluster function protocol version in server Hello.
pub const REV_VERSIONED_CLUSTER_FUNCTION: u64 = 54479;

/// Client packet type numbers.
pub mod client_kind {
    /// Hello.
    pub const HELLO: u64 = 0;
    /// Query.
    pub const QUERY: u64 = 1;
    /// Data block.
    pub const DATA: u64 = 2;
    /// Cancel the running query.
    pub const CANCEL: u64 = 3;
    /// Ping.
    pub const PING: u64 = 4;
}

/// Server packet type numbers.
pub mod server_kind {
    /// Hello.
    pub const HELLO: u64 = 0;
    /// Exception.
    pub const EXCEPTION: u64 = 2;
    /// Pong.
    pub const PONG: u64 = 4;
    /// End of stream.
    pub const END_OF_STREAM: u64 = 5;
}

/// Errors of the ClickHouse native codec.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NativeError {
    /// A packet is larger than the decoder's limit.
    #[error("packet over the limit of {max} bytes")]
    PacketTooLarge {
        /// The decoder's limit.
        max: usize,
    },
    /// A varuint ran over 10 bytes.
    #[error("varuint longer than 10 bytes in {what}")]
    VarUintOverflow {
        /// Field name.
        what: &'static str,
    },
    /// A string or list declared a length over the limit.
    #[error("{what} declares length {len}, over the limit of {max}")]
    TooLong {
        /// Field name.
        what: &'static str,
        /// Declared length.
        len: u64,
        /// Limit.
        max: usize,
    },
    /// A packet type the client may not send (or this codec does not decode).
    #[error("unsupported client packet type {0}")]
    UnknownPacket(u64),
    /// The first packet was not a Hello, or a second Hello arrived.
    #[error("unexpected {0} packet")]
    Unexpected(&'static str),
    /// A field holds a value the protocol does not allow.
    #[error("invalid {what} `{value}`")]
    InvalidValue {
        /// Field name.
        what: &'static str,
        /// The value.
        value: u64,
    },
    /// Settings of a revision before 54429 are typed binary values this codec cannot skip.
    #[error("binary settings of revision {0} are not supported; revision 54429 or later needed")]
    BinarySettings(u64),
    /// A Data column type this codec cannot skip.
    #[error("unsupported column type `{0}` in a data block")]
    UnsupportedColumnType(String),
    /// A compressed Data frame uses an unknown method byte.
    #[error("unknown compression method {0:#04x}")]
    UnknownCompression(u8),
    /// Bytes arrived after the Hello before the server revision was set.
    #[error("client sent bytes before the server revision was known; call set_server_revision")]
    RevisionUnknown,
    /// The decoder hit an error earlier; the stream is out of sync.
    #[error("decoder stopped after an earlier error; close the connection")]
    Poisoned,
}

/// Reading ran out of input (internal; becomes "need more" or a size error).
#[derive(Debug)]
enum Short {
    /// More bytes are needed.
    More,
    /// A real error.
    Err(NativeError),
}

impl From<NativeError> for Short {
    fn from(e: NativeError) -> Short {
        Short::Err(e)
    }
}

type R<T> = Result<T, Short>;

/// A cursor over buffered bytes.
struct Rd<'a> {
    buf: &'a [u8],
    pos: usize,
    max: usize,
}

impl<'a> Rd<'a> {
    fn new(buf: &'a [u8], max: usize) -> Rd<'a> {
        Rd { buf, pos: 0, max }
    }

    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(Short::More)?;
        if end > self.max {
            return Err(Short::Err(NativeError::PacketTooLarge { max: self.max }));
        }
        let s = self.buf.get(self.pos..end).ok_or(Short::More)?;
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> R<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> R<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn varuint(&mut self, what: &'static str) -> R<u64> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Short::Err(NativeError::VarUintOverflow { what }))
    }

    fn len(&mut self, what: &'static str) -> R<usize> {
        let n = self.varuint(what)?;
        let room = self.max.saturating_sub(self.pos);
        if n > room as u64 {
            return Err(Short::Err(NativeError::TooLong {
                what,
                len: n,
                max: self.max,
            }));
        }
        Ok(n as usize)
    }

    fn bytes(&mut self, what: &'static str) -> R<Vec<u8>> {
        let n = self.len(what)?;
        Ok(self.take(n)?.to_vec())
    }

    fn string(&mut self, what: &'static str) -> R<String> {
        Ok(String::from_utf8_lossy(&self.bytes(what)?).into_owned())
    }

    fn bool(&mut self, what: &'static str) -> R<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(Short::Err(NativeError::InvalidValue {
                what,
                value: u64::from(v),
            })),
        }
    }
}

/// Appends an unsigned LEB128 varuint.
pub fn put_varuint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// Appends a length-prefixed string.
pub fn put_bytes(out: &mut Vec<u8>, s: &[u8]) {
    put_varuint(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// The client's Hello (reference §4.4.3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientHello {
    /// Client name (`ClickHouse client`).
    pub client_name: String,
    /// Client major version.
    pub version_major: u64,
    /// Client minor version.
    pub version_minor: u64,
    /// The client's protocol revision.
    pub revision: u64,
    /// Default database (`""` when unset).
    pub database: String,
    /// User name.
    pub user: String,
    /// Password (may be a placeholder the gateway replaces).
    pub password: String,
}

impl ClientHello {
    /// Encodes the packet (type included).
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_varuint(out, client_kind::HELLO);
        put_bytes(out, self.client_name.as_bytes());
        put_varuint(out, self.version_major);
        put_varuint(out, self.version_minor);
        put_varuint(out, self.revision);
        put_bytes(out, self.database.as_bytes());
        put_bytes(out, self.user.as_bytes());
        put_bytes(out, self.password.as_bytes());
    }

    /// The placeholder haystack of reference §4.3: `user + "\0" + password`.
    pub fn placeholder_haystack(&self) -> String {
        format!("{}\0{}", self.user, self.password)
    }
}

/// The addendum a client sends after reading the server Hello (revision ≥ 54458).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HelloAddendum {
    /// Quota key.
    pub quota_key: String,
    /// Chunked send capability (revision ≥ 54470).
    pub send_chunked: Option<String>,
    /// Chunked receive capability (revision ≥ 54470).
    pub recv_chunked: Option<String>,
    /// Parallel replicas protocol version (revision ≥ 54471).
    pub parallel_replicas_version: Option<u64>,
}

impl HelloAddendum {
    /// Encodes the addendum for the negotiated `revision` (it has no packet type).
    pub fn encode(&self, revision: u64, out: &mut Vec<u8>) {
        put_bytes(out, self.quota_key.as_bytes());
        if revision >= REV_CHUNKED_PACKETS {
            put_bytes(out, self.send_chunked.as_deref().unwrap_or("").as_bytes());
            put_bytes(out, self.recv_chunked.as_deref().unwrap_or("").as_bytes());
        }
        if revision >= REV_VERSIONED_PARALLEL_REPLICAS {
            put_varuint(out, self.parallel_replicas_version.unwrap_or(0));
        }
    }
}

/// The OpenTelemetry trace context of a query.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TraceContext {
    /// Trace id (UUID bytes).
    pub trace_id: [u8; 16],
    /// Span id.
    pub span_id: u64,
    /// W3C tracestate.
    pub tracestate: String,
    /// Trace flags.
    pub flags: u8,
}

/// Interface-specific part of the client info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientInterface {
    /// Native TCP (interface 1).
    Tcp {
        /// OS user of the client.
        os_user: String,
        /// Client host name.
        hostname: String,
        /// Client name.
        client_name: String,
        /// Major version.
        version_major: u64,
        /// Minor version.
        version_minor: u64,
        /// The client's protocol revision.
        revision: u64,
    },
    /// HTTP (interface 2), as forwarded between servers.
    Http {
        /// HTTP method code.
        method: u8,
        /// User agent.
        user_agent: String,
        /// `X-Forwarded-For` (revision ≥ 54443).
        forwarded_for: String,
        /// Referer (revision ≥ 54447).
        referer: String,
    },
    /// Another interface number (gRPC, MySQL, …): no interface fields.
    Other(u8),
}

/// The client info block of a Query (present when `query_kind != 0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// 1 initial query, 2 secondary query.
    pub query_kind: u8,
    /// Initial user.
    pub initial_user: String,
    /// Initial query id.
    pub initial_query_id: String,
    /// Initial address (`host:port`).
    pub initial_address: String,
    /// Initial query start time in microseconds (revision ≥ 54449).
    pub initial_query_start_time_us: u64,
    /// Interface fields.
    pub interface: ClientInterface,
    /// Quota key (revision ≥ 54060).
    pub quota_key: String,
    /// Distributed depth (revision ≥ 54448).
    pub distributed_depth: u64,
    /// Version patch of a TCP client (revision ≥ 54401).
    pub version_patch: u64,
    /// Trace context (revision ≥ 54442).
    pub trace: Option<TraceContext>,
    /// Parallel replicas: collaborate with initiator, replica count, replica number (≥ 54453).
    pub parallel_replicas: (u64, u64, u64),
    /// Script query number and line number (revision ≥ 54475).
    pub script_position: (u64, u64),
    /// Interserver JWT (revision ≥ 54476).
    pub jwt: Option<String>,
}

/// One setting or query parameter (strings-with-flags format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Name.
    pub name: String,
    /// Flags (0x01 important, 0x02 custom).
    pub flags: u64,
    /// Value as text.
    pub value: String,
}

/// A Query packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Query id (may be empty).
    pub query_id: String,
    /// Client info; `None` for an empty block (query kind 0) or revision < 54032.
    pub client_info: Option<Box<ClientInfo>>,
    /// Per-query settings.
    pub settings: Vec<Setting>,
    /// Serialised externally granted roles (revision ≥ 54472).
    pub external_roles: Vec<u8>,
    /// Interserver secret hash (revision ≥ 54441).
    pub interserver_secret: Vec<u8>,
    /// Processing stage (2 = complete).
    pub stage: u64,
    /// Whether Data blocks of this query are compressed.
    pub compression: bool,
    /// The query text bytes (the first cap bytes when `truncated`).
    pub query: Vec<u8>,
    /// The text was longer than the inspection cap; `query` holds its prefix.
    pub truncated: bool,
    /// Query parameters (revision ≥ 54459; empty for a truncated query until its end).
    pub parameters: Vec<Setting>,
}

impl Query {
    /// The query text, lossily decoded as UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.query).into_owned()
    }

    /// Encodes the packet for the negotiated `revision` (type included).
    pub fn encode(&self, revision: u64, out: &mut Vec<u8>) -> Result<(), NativeError> {
        put_varuint(out, client_kind::QUERY);
        put_bytes(out, self.query_id.as_bytes());
        if revision >= REV_CLIENT_INFO {
            encode_client_info(self.client_info.as_deref(), revision, out);
        }
        encode_settings(&self.settings, revision, out)?;
        if revision >= REV_EXTERNAL_ROLES {
            put_bytes(out, &self.external_roles);
        }
        if revision >= REV_INTERSERVER_SECRET {
            put_bytes(out, &self.interserver_secret);
        }
        put_varuint(out, self.stage);
        put_varuint(out, u64::from(self.compression));
        put_bytes(out, &self.query);
        if revision >= REV_PARAMETERS {
            encode_settings(&self.parameters, revision, out)?;
        }
        Ok(())
    }
}

fn encode_settings(s: &[Setting], revision: u64, out: &mut Vec<u8>) -> Result<(), NativeError> {
    if !s.is_empty() && revision < REV_SETTINGS_AS_STRINGS {
        return Err(NativeError::BinarySettings(revision));
    }
    for x in s {
        put_bytes(out, x.name.as_bytes());
        put_varuint(out, x.flags);
        put_bytes(out, x.value.as_bytes());
    }
    put_bytes(out, b"");
    Ok(())
}

fn encode_client_info(ci: Option<&ClientInfo>, revision: u64, out: &mut Vec<u8>) {
    let Some(ci) = ci.filter(|c| c.query_kind != 0) else {
        out.push(0);
        return;
    };
    out.push(ci.query_kind);
    put_bytes(out, ci.initial_user.as_bytes());
    put_bytes(out, ci.initial_query_id.as_bytes());
    put_bytes(out, ci.initial_address.as_bytes());
    if revision >= REV_INITIAL_QUERY_START_TIME {
        out.extend_from_slice(&ci.initial_query_start_time_us.to_le_bytes());
    }
    match &ci.interface {
        ClientInterface::Tcp {
            os_user,
            hostname,
            client_name,
            version_major,
            version_minor,
            revision: client_rev,
        } => {
            out.push(1);
            put_bytes(out, os_user.as_bytes());
            put_bytes(out, hostname.as_bytes());
            put_bytes(out, client_name.as_bytes());
            put_varuint(out, *version_major);
            put_varuint(out, *version_minor);
            put_varuint(out, *client_rev);
        }
        ClientInterface::Http {
            method,
            user_agent,
            forwarded_for,
            referer,
        } => {
            out.push(2);
            out.push(*method);
            put_bytes(out, user_agent.as_bytes());
            if revision >= REV_X_FORWARDED_FOR {
                put_bytes(out, forwarded_for.as_bytes());
            }
            if revision >= REV_REFERER {
                put_bytes(out, referer.as_bytes());
            }
        }
        ClientInterface::Other(i) => out.push(*i),
    }
    if revision >= REV_QUOTA_KEY_IN_CLIENT_INFO {
        put_bytes(out, ci.quota_key.as_bytes());
    }
    if revision >= REV_DISTRIBUTED_DEPTH {
        put_varuint(out, ci.distributed_depth);
    }
    if matches!(ci.interface, ClientInterface::Tcp { .. }) && revision >= REV_VERSION_PATCH {
        put_varuint(out, ci.version_patch);
    }
    if revision >= REV_OPENTELEMETRY {
        match &ci.trace {
            Some(t) => {
                out.push(1);
                out.extend_from_slice(&t.trace_id);
                out.extend_from_slice(&t.span_id.to_le_bytes());
                put_bytes(out, t.tracestate.as_bytes());
                out.push(t.flags);
            }
            None => out.push(0),
        }
    }
    if revision >= REV_PARALLEL_REPLICAS {
        put_varuint(out, ci.parallel_replicas.0);
        put_varuint(out, ci.parallel_replicas.1);
        put_varuint(out, ci.parallel_replicas.2);
    }
    if revision >= REV_QUERY_AND_LINE_NUMBERS {
        put_varuint(out, ci.script_position.0);
        put_varuint(out, ci.script_position.1);
    }
    if revision >= REV_JWT_IN_INTERSERVER {
        match &ci.jwt {
            Some(j) => {
                out.push(1);
                put_bytes(out, j.as_bytes());
            }
            None => out.push(0),
        }
    }
}

/// A decoded client packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientPacket {
    /// Hello.
    Hello(ClientHello),
    /// The Hello addendum.
    Addendum(HelloAddendum),
    /// A complete Query (`truncated` is false).
    Query(Query),
    /// A Data packet, skipped: its table name and whether it was an empty block.
    Data {
        /// External table name (`""` for the main data).
        table: String,
        /// The block had no columns and no rows (the end-of-data marker).
        empty: bool,
    },
    /// Cancel.
    Cancel,
    /// Ping.
    Ping,
}

/// One step of the client decoder's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientItem {
    /// A complete packet and its exact wire bytes.
    Packet {
        /// The packet.
        packet: ClientPacket,
        /// Its bytes as received.
        raw: Vec<u8>,
    },
    /// A Query whose text exceeds the inspection cap: everything up to the first cap bytes
    /// of the text (`query.truncated` is true); its tail follows as [`ClientItem::QueryTail`].
    OversizeQuery {
        /// The query, text cut at the cap.
        query: Query,
        /// Bytes received so far (header and text prefix).
        raw: Vec<u8>,
    },
    /// Raw bytes of the oversize query text's tail.
    QueryTail(Vec<u8>),
    /// The oversize Query is complete: its parameters and their raw bytes.
    OversizeEnd {
        /// The query parameters.
        parameters: Vec<Setting>,
        /// Their bytes as received.
        raw: Vec<u8>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the Hello.
    Hello,
    /// Hello seen; server revision unknown.
    AwaitServer,
    /// Next bytes are the addendum.
    Addendum,
    /// Packets.
    Packets,
    /// Streaming the tail of an oversize query text.
    Tail { left: u64, compression: bool },
    /// Reading the parameters of an oversize query.
    TailParams { compression: bool },
    /// An error was returned.
    Poisoned,
}

/// Sans-IO decoder of the client→server direction.
#[derive(Debug)]
pub struct ClientDecoder {
    buf: Vec<u8>,
    max: usize,
    cap: usize,
    state: State,
    client_revision: u64,
    revision: u64,
    compression: bool,
}

impl Default for ClientDecoder {
    fn default() -> Self {
        ClientDecoder::new(DEFAULT_MAX_PACKET)
    }
}

impl ClientDecoder {
    /// A decoder buffering at most `max_packet` bytes of one packet (query texts over
    /// [`QUERY_INSPECTION_CAP`] or `max_packet`, whichever is smaller, are streamed).
    pub fn new(max_packet: usize) -> ClientDecoder {
        ClientDecoder {
            buf: Vec::new(),
            max: max_packet,
            cap: QUERY_INSPECTION_CAP.min(max_packet),
            state: State::Hello,
            client_revision: 0,
            revision: 0,
            compression: false,
        }
    }

    /// Appends received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The negotiated revision (the client's until [`Self::set_server_revision`]).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Records the server Hello's revision; the negotiated revision becomes the smaller one.
    pub fn set_server_revision(&mut self, server: u64) {
        self.revision = self.client_revision.min(server);
        if self.state == State::AwaitServer {
            self.state = if self.revision >= REV_ADDENDUM {
                State::Addendum
            } else {
                State::Packets
            };
        }
    }

    /// Bytes buffered and not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next item, `Ok(None)` when more bytes are needed. After an error the decoder
    /// is poisoned.
    pub fn next_item(&mut self) -> Result<Option<ClientItem>, NativeError> {
        let r = self.step();
        if r.is_err() {
            self.state = State::Poisoned;
        }
        r
    }

    fn step(&mut self) -> Result<Option<ClientItem>, NativeError> {
        match self.state {
            State::Poisoned => Err(NativeError::Poisoned),
            State::AwaitServer => {
                if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(NativeError::RevisionUnknown)
                }
            }
            State::Tail { left, compression } => {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                let n = (self.buf.len() as u64).min(left) as usize;
                let chunk: Vec<u8> = self.buf.drain(..n).collect();
                let left = left - n as u64;
                self.state = if left == 0 {
                    State::TailParams { compression }
                } else {
                    State::Tail { left, compression }
                };
                Ok(Some(ClientItem::QueryTail(chunk)))
            }
            State::TailParams { compression } => {
                let revision = self.revision;
                let parsed = self.parse(|rd| {
                    if revision >= REV_PARAMETERS {
                        read_settings(rd, revision)
                    } else {
                        Ok(Vec::new())
                    }
                })?;
                Ok(parsed.map(|(parameters, raw)| {
                    self.compression = compression;
                    self.state = State::Packets;
                    ClientItem::OversizeEnd { parameters, raw }
                }))
            }
            State::Hello => {
                let parsed = self.parse(|rd| {
                    let kind = rd.varuint("packet type")?;
                    if kind != client_kind::HELLO {
                        return Err(Short::Err(NativeError::Unexpected("non-Hello first")));
                    }
                    read_hello_body(rd)
                })?;
                Ok(parsed.map(|(h, raw)| {
                    self.client_revision = h.revision;
                    self.revision = h.revision;
                    self.state = State::AwaitServer;
                    ClientItem::Packet {
                        packet: ClientPacket::Hello(h),
                        raw,
                    }
                }))
            }
            State::Addendum => {
                let revision = self.revision;
                let parsed = self.parse(|rd| read_addendum(rd, revision))?;
                Ok(parsed.map(|(a, raw)| {
                    self.state = State::Packets;
                    ClientItem::Packet {
                        packet: ClientPacket::Addendum(a),
                        raw,
                    }
                }))
            }
            State::Packets => self.packet(),
        }
    }

    /// Runs `f` over the buffer; on success drains the consumed bytes.
    fn parse<T>(
        &mut self,
        f: impl FnOnce(&mut Rd<'_>) -> R<T>,
    ) -> Result<Option<(T, Vec<u8>)>, NativeError> {
        let mut rd = Rd::new(&self.buf, self.max);
        match f(&mut rd) {
            Ok(v) => {
                let n = rd.pos;
                Ok(Some((v, self.buf.drain(..n).collect())))
            }
            Err(Short::More) => {
                if self.buf.len() >= self.max {
                    Err(NativeError::PacketTooLarge { max: self.max })
                } else {
                    Ok(None)
                }
            }
            Err(Short::Err(e)) => Err(e),
        }
    }

    fn packet(&mut self) -> Result<Option<ClientItem>, NativeError> {
        let revision = self.revision;
        let compression = self.compression;
        let cap = self.cap;
        let mut rd = Rd::new(&self.buf, self.max);
        let res = (|| -> R<Step> {
            let kind = rd.varuint("packet type")?;
            match kind {
                client_kind::HELLO => Err(Short::Err(NativeError::Unexpected("second Hello"))),
                client_kind::QUERY => read_query(&mut rd, revision, cap),
                client_kind::DATA => {
                    let table = rd.string("table name")?;
                    let empty = if compression {
                        skip_compressed_block(&mut rd)?
                    } else {
                        skip_block(&mut rd, revision)?
                    };
                    Ok(Step::Done(ClientPacket::Data { table, empty }))
                }
                client_kind::CANCEL => Ok(Step::Done(ClientPacket::Cancel)),
                client_kind::PING => Ok(Step::Done(ClientPacket::Ping)),
                other => Err(Short::Err(NativeError::UnknownPacket(other))),
            }
        })();
        let n = rd.pos;
        match res {
            Ok(Step::Done(packet)) => {
                if let ClientPacket::Query(q) = &packet {
                    self.compression = q.compression;
                }
                Ok(Some(ClientItem::Packet {
                    packet,
                    raw: self.buf.drain(..n).collect(),
                }))
            }
            Ok(Step::Oversize { query, left }) => {
                self.state = State::Tail {
                    left,
                    compression: query.compression,
                };
                Ok(Some(ClientItem::OversizeQuery {
                    query: *query,
                    raw: self.buf.drain(..n).collect(),
                }))
            }
            Err(Short::More) => {
                if self.buf.len() >= self.max {
                    Err(NativeError::PacketTooLarge { max: self.max })
                } else {
                    Ok(None)
                }
            }
            Err(Short::Err(e)) => Err(e),
        }
    }
}

enum Step {
    Done(ClientPacket),
    Oversize { query: Box<Query>, left: u64 },
}

fn read_hello_body(rd: &mut Rd<'_>) -> R<ClientHello> {
    Ok(ClientHello {
        client_name: rd.string("client name")?,
        version_major: rd.varuint("version major")?,
        version_minor: rd.varuint("version minor")?,
        revision: rd.varuint("protocol revision")?,
        database: rd.string("database")?,
        user: rd.string("user")?,
        password: rd.string("password")?,
    })
}

fn read_addendum(rd: &mut Rd<'_>, revision: u64) -> R<HelloAddendum> {
    let mut a = HelloAddendum {
        quota_key: rd.string("quota key")?,
        ..HelloAddendum::default()
    };
    if revision >= REV_CHUNKED_PACKETS {
        a.send_chunked = Some(rd.string("send chunked")?);
        a.recv_chunked = Some(rd.string("recv chunked")?);
    }
    if revision >= REV_VERSIONED_PARALLEL_REPLICAS {
        a.parallel_replicas_version = Some(rd.varuint("parallel replicas version")?);
    }
    Ok(a)
}

fn read_settings(rd: &mut Rd<'_>, revision: u64) -> R<Vec<Setting>> {
    let mut out = Vec::new();
    loop {
        let name = rd.string("setting name")?;
        if name.is_empty() {
            return Ok(out);
        }
        if revision < REV_SETTINGS_AS_STRINGS {
            return Err(Short::Err(NativeError::BinarySettings(revision)));
        }
        let flags = rd.varuint("setting flags")?;
        let value = rd.string("setting value")?;
        out.push(Setting { name, flags, value });
    }
}

fn read_client_info(rd: &mut Rd<'_>, revision: u64) -> R<Option<ClientInfo>> {
    let query_kind = rd.u8()?;
    if query_kind == 0 {
        return Ok(None);
    }
    if query_kind > 2 {
        return Err(Short::Err(NativeError::InvalidValue {
            what: "query kind",
            value: u64::from(query_kind),
        }));
    }
    let initial_user = rd.string("initial user")?;
    let initial_query_id = rd.string("initial query id")?;
    let initial_address = rd.string("initial address")?;
    let initial_query_start_time_us = if revision >= REV_INITIAL_QUERY_START_TIME {
        rd.u64()?
    } else {
        0
    };
    let iface = rd.u8()?;
    let interface = match iface {
        1 => ClientInterface::Tcp {
            os_user: rd.string("os user")?,
            hostname: rd.string("client hostname")?,
            client_name: rd.string("client name")?,
            version_major: rd.varuint("version major")?,
            version_minor: rd.varuint("version minor")?,
            revision: rd.varuint("client revision")?,
        },
        2 => {
            let method = rd.u8()?;
            let user_agent = rd.string("user agent")?;
            let forwarded_for = if revision >= REV_X_FORWARDED_FOR {
                rd.string("forwarded for")?
            } else {
                String::new()
            };
            let referer = if revision >= REV_REFERER {
                rd.string("referer")?
            } else {
                String::new()
            };
            ClientInterface::Http {
                method,
                user_agent,
                forwarded_for,
                referer,
            }
        }
        other => ClientInterface::Other(other),
    };
    let quota_key = if revision >= REV_QUOTA_KEY_IN_CLIENT_INFO {
        rd.string("quota key")?
    } else {
        String::new()
    };
    let distributed_depth = if revision >= REV_DISTRIBUTED_DEPTH {
        rd.varuint("distributed depth")?
    } else {
        0
    };
    let version_patch = if iface == 1 && revision >= REV_VERSION_PATCH {
        rd.varuint("version patch")?
    } else {
        0
    };
    let trace = if revision >= REV_OPENTELEMETRY && rd.bool("trace flag")? {
        let mut trace_id = [0u8; 16];
        trace_id.copy_from_slice(rd.take(16)?);
        Some(TraceContext {
            trace_id,
            span_id: rd.u64()?,
            tracestate: rd.string("tracestate")?,
            flags: rd.u8()?,
        })
    } else {
        None
    };
    let parallel_replicas = if revision >= REV_PARALLEL_REPLICAS {
        (
            rd.varuint("collaborate with initiator")?,
            rd.varuint("replica count")?,
            rd.varuint("replica number")?,
        )
    } else {
        (0, 0, 0)
    };
    let script_position = if revision >= REV_QUERY_AND_LINE_NUMBERS {
        (
            rd.varuint("script query number")?,
            rd.varuint("script line number")?,
        )
    } else {
        (0, 0)
    };
    let jwt = if revision >= REV_JWT_IN_INTERSERVER && rd.bool("jwt flag")? {
        Some(rd.string("jwt")?)
    } else {
        None
    };
    Ok(Some(ClientInfo {
        query_kind,
        initial_user,
        initial_query_id,
        initial_address,
        initial_query_start_time_us,
        interface,
        quota_key,
        distributed_depth,
        version_patch,
        trace,
        parallel_replicas,
        script_position,
        jwt,
    }))
}

fn read_query(rd: &mut Rd<'_>, revision: u64, cap: usize) -> R<Step> {
    let query_id = rd.string("query id")?;
    let client_info = if revision >= REV_CLIENT_INFO {
        read_client_info(rd, revision)?.map(Box::new)
    } else {
        None
    };
    let settings = read_settings(rd, revision)?;
    let external_roles = if revision >= REV_EXTERNAL_ROLES {
        rd.bytes("external roles")?
    } else {
        Vec::new()
    };
    let interserver_secret = if revision >= REV_INTERSERVER_SECRET {
        rd.bytes("interserver secret")?
    } else {
        Vec::new()
    };
    let stage = rd.varuint("stage")?;
    let compression = match rd.varuint("compression")? {
        0 => false,
        1 => true,
        v => {
            return Err(Short::Err(NativeError::InvalidValue {
                what: "compression",
                value: v,
            }))
        }
    };
    let text_len = rd.varuint("query text")?;
    let mut q = Query {
        query_id,
        client_info,
        settings,
        external_roles,
        interserver_secret,
        stage,
        compression,
        query: Vec::new(),
        truncated: false,
        parameters: Vec::new(),
    };
    let limit = cap.min(rd.max.saturating_sub(rd.pos));
    if text_len > limit as u64 {
        q.query = rd.take(limit)?.to_vec();
        q.truncated = true;
        return Ok(Step::Oversize {
            query: Box::new(q),
            left: text_len - limit as u64,
        });
    }
    q.query = rd.take(text_len as usize)?.to_vec();
    if revision >= REV_PARAMETERS {
        q.parameters = read_settings(rd, revision)?;
    }
    Ok(Step::Done(ClientPacket::Query(q)))
}

/// Skips an uncompressed block; returns whether it had no columns and no rows.
fn skip_block(rd: &mut Rd<'_>, revision: u64) -> R<bool> {
    // BlockInfo: (field number varuint, value)*, terminated by field number 0.
    loop {
        match rd.varuint("block info field")? {
            0 => break,
            1 => {
                rd.u8()?;
            }
            2 => {
                rd.take(4)?;
            }
            3 => {
                let n = rd.len("bucket list")?;
                rd.take(n.checked_mul(4).ok_or(Short::More)?)?;
            }
            v => {
                return Err(Short::Err(NativeError::InvalidValue {
                    what: "block info field",
                    value: v,
                }))
            }
        }
    }
    let columns = rd.varuint("column count")?;
    let rows = rd.varuint("row count")?;
    for _ in 0..columns {
        rd.string("column name")?;
        let ty = rd.string("column type")?;
        if revision >= REV_CUSTOM_SERIALIZATION && rd.bool("custom serialization")? {
            return Err(Short::Err(NativeError::UnsupportedColumnType(format!(
                "{ty} (custom serialization)"
            ))));
        }
        skip_column(rd, ty.trim(), rows, 0)?;
    }
    Ok(columns == 0 && rows == 0)
}

fn fixed_width(ty: &str) -> Option<usize> {
    Some(match ty {
        "UInt8" | "Int8" | "Bool" | "Enum8" => 1,
        "UInt16" | "Int16" | "Date" | "Enum16" => 2,
        "UInt32" | "Int32" | "Float32" | "Date32" | "DateTime" | "IPv4" => 4,
        "UInt64" | "Int64" | "Float64" => 8,
        "UInt128" | "Int128" | "UUID" | "IPv6" => 16,
        "UInt256" | "Int256" => 32,
        _ => {
            if ty.starts_with("DateTime(") || ty.starts_with("Enum8(") {
                return Some(if ty.starts_with("Enum8(") { 1 } else { 4 });
            }
            if ty.starts_with("Enum16(") {
                return Some(2);
            }
            if ty.starts_with("DateTime64(") {
                return Some(8);
            }
            if let Some(args) = ty
                .strip_prefix("Decimal(")
                .and_then(|r| r.strip_suffix(')'))
            {
                let p: usize = args.split(',').next()?.trim().parse().ok()?;
                return Some(match p {
                    0..=9 => 4,
                    10..=18 => 8,
                    19..=38 => 16,
                    _ => 32,
                });
            }
            return None;
        }
    })
}

fn skip_n(rd: &mut Rd<'_>, width: usize, rows: u64) -> R<()> {
    let total = (width as u64)
        .checked_mul(rows)
        .ok_or(Short::Err(NativeError::PacketTooLarge { max: rd.max }))?;
    if total > rd.max as u64 {
        return Err(Short::Err(NativeError::PacketTooLarge { max: rd.max }));
    }
    rd.take(total as usize)?;
    Ok(())
}

fn skip_column(rd: &mut Rd<'_>, ty: &str, rows: u64, depth: u32) -> R<()> {
    if depth > 16 {
        return Err(Short::Err(NativeError::UnsupportedColumnType(
            ty.to_string(),
        )));
    }
    if let Some(w) = fixed_width(ty) {
        return skip_n(rd, w, rows);
    }
    if ty == "String" {
        for _ in 0..rows {
            let n = rd.len("string value")?;
            rd.take(n)?;
        }
        return Ok(());
    }
    if let Some(n) = ty
        .strip_prefix("FixedString(")
        .and_then(|r| r.strip_suffix(')'))
    {
        let n: usize = n
            .trim()
            .parse()
            .map_err(|_| Short::Err(NativeError::UnsupportedColumnType(ty.to_string())))?;
        return skip_n(rd, n, rows);
    }
    if let Some(inner) = ty
        .strip_prefix("Nullable(")
        .and_then(|r| r.strip_suffix(')'))
    {
        skip_n(rd, 1, rows)?;
        return skip_column(rd, inner.trim(), rows, depth + 1);
    }
    if let Some(inner) = ty.strip_prefix("Array(").and_then(|r| r.strip_suffix(')')) {
        let mut last = 0u64;
        for _ in 0..rows {
            last = rd.u64()?;
        }
        return skip_column(rd, inner.trim(), last, depth + 1);
    }
    Err(Short::Err(NativeError::UnsupportedColumnType(
        ty.to_string(),
    )))
}

/// Skips compressed frames of one block; an empty block cannot be told apart without
/// decompressing, so `false` is returned.
fn skip_compressed_block(rd: &mut Rd<'_>) -> R<bool> {
    loop {
        rd.take(16)?; // checksum
        let method = rd.u8()?;
        if !matches!(
            method,
            0x02 | 0x82 | 0x90 | 0x91 | 0x92 | 0x93 | 0x94 | 0x95 | 0x96
        ) {
            return Err(Short::Err(NativeError::UnknownCompression(method)));
        }
        let compressed = rd.u32()?;
        let decompressed = rd.u32()?;
        let body =
            (compressed as usize)
                .checked_sub(9)
                .ok_or(Short::Err(NativeError::InvalidValue {
                    what: "compressed size",
                    value: u64::from(compressed),
                }))?;
        rd.take(body)?;
        if decompressed < MAX_COMPRESS_BLOCK_SIZE {
            return Ok(false);
        }
    }
}

/// Encodes an empty uncompressed Data block (the end-of-data marker) for `revision`.
pub fn encode_empty_data(table: &str, out: &mut Vec<u8>) {
    put_varuint(out, client_kind::DATA);
    put_bytes(out, table.as_bytes());
    // BlockInfo: is_overflows = false, bucket_num = -1, end.
    out.extend_from_slice(&[1, 0, 2, 0xff, 0xff, 0xff, 0xff, 0]);
    put_varuint(out, 0);
    put_varuint(out, 0);
}

/// Encodes a client Ping.
pub fn encode_ping(out: &mut Vec<u8>) {
    put_varuint(out, client_kind::PING);
}

/// Encodes a client Cancel.
pub fn encode_cancel(out: &mut Vec<u8>) {
    put_varuint(out, client_kind::CANCEL);
}

/// The server's Hello.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerHello {
    /// Server name (`ClickHouse`).
    pub name: String,
    /// Major version.
    pub version_major: u64,
    /// Minor version.
    pub version_minor: u64,
    /// The server's protocol revision.
    pub revision: u64,
    /// Parallel replicas protocol version (client revision ≥ 54471).
    pub parallel_replicas_version: u64,
    /// Server timezone (≥ 54058).
    pub timezone: String,
    /// Display name (≥ 54372).
    pub display_name: String,
    /// Version patch (≥ 54401).
    pub version_patch: u64,
    /// Chunked send/receive capabilities (≥ 54470).
    pub chunked: (String, String),
    /// Password complexity rules: pattern and message (≥ 54461).
    pub password_rules: Vec<(String, String)>,
    /// Interserver nonce (≥ 54462).
    pub nonce: u64,
    /// Server settings (≥ 54474).
    pub settings: Vec<Setting>,
    /// Query plan serialization version (≥ 54477).
    pub query_plan_version: u64,
    /// Cluster function protocol version (≥ 54479).
    pub cluster_function_version: u64,
}

impl ServerHello {
    /// Encodes the packet for a client of revision `client_revision` (type included).
    pub fn encode(&self, client_revision: u64, out: &mut Vec<u8>) -> Result<(), NativeError> {
        let r = client_revision;
        put_varuint(out, server_kind::HELLO);
        put_bytes(out, self.name.as_bytes());
        put_varuint(out, self.version_major);
        put_varuint(out, self.version_minor);
        put_varuint(out, self.revision);
        if r >= REV_VERSIONED_PARALLEL_REPLICAS {
            put_varuint(out, self.parallel_replicas_version);
        }
        if r >= REV_SERVER_TIMEZONE {
            put_bytes(out, self.timezone.as_bytes());
        }
        if r >= REV_SERVER_DISPLAY_NAME {
            put_bytes(out, self.display_name.as_bytes());
        }
        if r >= REV_VERSION_PATCH {
            put_varuint(out, self.version_patch);
        }
        if r >= REV_CHUNKED_PACKETS {
            put_bytes(out, self.chunked.0.as_bytes());
            put_bytes(out, self.chunked.1.as_bytes());
        }
        if r >= REV_PASSWORD_RULES {
            put_varuint(out, self.password_rules.len() as u64);
            for (p, m) in &self.password_rules {
                put_bytes(out, p.as_bytes());
                put_bytes(out, m.as_bytes());
            }
        }
        if r >= REV_INTERSERVER_SECRET_V2 {
            out.extend_from_slice(&self.nonce.to_le_bytes());
        }
        if r >= REV_SERVER_SETTINGS {
            encode_settings(&self.settings, r, out)?;
        }
        if r >= REV_QUERY_PLAN_SERIALIZATION {
            put_varuint(out, self.query_plan_version);
        }
        if r >= REV_VERSIONED_CLUSTER_FUNCTION {
            put_varuint(out, self.cluster_function_version);
        }
        Ok(())
    }

    /// Decodes a server Hello sent to a client of `client_revision` from the start of `buf`;
    /// `Ok(None)` when more bytes are needed, else the packet and its length.
    pub fn decode(
        buf: &[u8],
        client_revision: u64,
        max: usize,
    ) -> Result<Option<(ServerHello, usize)>, NativeError> {
        let mut rd = Rd::new(buf, max);
        let r = client_revision;
        let res = (|| -> R<ServerHello> {
            let kind = rd.varuint("packet type")?;
            if kind != server_kind::HELLO {
                return Err(Short::Err(NativeError::Unexpected("non-Hello server")));
            }
            let mut h = ServerHello {
                name: rd.string("server name")?,
                version_major: rd.varuint("version major")?,
                version_minor: rd.varuint("version minor")?,
                revision: rd.varuint("protocol revision")?,
                ..ServerHello::default()
            };
            if r >= REV_VERSIONED_PARALLEL_REPLICAS {
                h.parallel_replicas_version = rd.varuint("parallel replicas version")?;
            }
            if r >= REV_SERVER_TIMEZONE {
                h.timezone = rd.string("timezone")?;
            }
            if r >= REV_SERVER_DISPLAY_NAME {
                h.display_name = rd.string("display name")?;
            }
            if r >= REV_VERSION_PATCH {
                h.version_patch = rd.varuint("version patch")?;
            }
            if r >= REV_CHUNKED_PACKETS {
                h.chunked = (rd.string("send chunked")?, rd.string("recv chunked")?);
            }
            if r >= REV_PASSWORD_RULES {
                let n = rd.len("password rules")?;
                for _ in 0..n {
                    h.password_rules
                        .push((rd.string("rule pattern")?, rd.string("rule message")?));
                }
            }
            if r >= REV_INTERSERVER_SECRET_V2 {
                h.nonce = rd.u64()?;
            }
            if r >= REV_SERVER_SETTINGS {
                h.settings = read_settings(&mut rd, r)?;
            }
            if r >= REV_QUERY_PLAN_SERIALIZATION {
                h.query_plan_version = rd.varuint("query plan version")?;
            }
            if r >= REV_VERSIONED_CLUSTER_FUNCTION {
                h.cluster_function_version = rd.varuint("cluster function version")?;
            }
            Ok(h)
        })();
        match res {
            Ok(h) => Ok(Some((h, rd.pos))),
            Err(Short::More) if buf.len() < max => Ok(None),
            Err(Short::More) => Err(NativeError::PacketTooLarge { max }),
            Err(Short::Err(e)) => Err(e),
        }
    }
}

/// A server Exception.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exception {
    /// Error code.
    pub code: i32,
    /// Exception class name.
    pub name: String,
    /// Message.
    pub message: String,
    /// Stack trace text.
    pub stack_trace: String,
    /// The nested (cause) exception.
    pub nested: Option<Box<Exception>>,
}

impl Exception {
    /// The gateway's deny: code 497 `ACCESS_DENIED`, name `DB::Exception`, the reason as
    /// message (reference §2.11).
    pub fn access_denied(reason: &str) -> Exception {
        Exception {
            code: ACCESS_DENIED,
            name: EXCEPTION_NAME.to_string(),
            message: reason.to_string(),
            stack_trace: String::new(),
            nested: None,
        }
    }

    /// Encodes the packet (type included; nested exceptions follow without a type).
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_varuint(out, server_kind::EXCEPTION);
        self.encode_body(out);
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.code.to_le_bytes());
        put_bytes(out, self.name.as_bytes());
        put_bytes(out, self.message.as_bytes());
        put_bytes(out, self.stack_trace.as_bytes());
        out.push(u8::from(self.nested.is_some()));
        if let Some(n) = &self.nested {
            n.encode_body(out);
        }
    }

    /// Decodes an Exception packet from the start of `buf`; `Ok(None)` when more is needed.
    pub fn decode(buf: &[u8], max: usize) -> Result<Option<(Exception, usize)>, NativeError> {
        let mut rd = Rd::new(buf, max);
        let res = (|| -> R<Exception> {
            if rd.varuint("packet type")? != server_kind::EXCEPTION {
                return Err(Short::Err(NativeError::Unexpected("non-Exception server")));
            }
            // Nesting is read iteratively to bound the stack.
            let mut chain = Vec::new();
            loop {
                let code = rd.u32()? as i32;
                let e = Exception {
                    code,
                    name: rd.string("exception name")?,
                    message: rd.string("exception message")?,
                    stack_trace: rd.string("stack trace")?,
                    nested: None,
                };
                let more = rd.bool("has nested")?;
                chain.push(e);
                if !more {
                    break;
                }
            }
            let mut cur: Option<Box<Exception>> = None;
            while let Some(mut e) = chain.pop() {
                e.nested = cur;
                cur = Some(Box::new(e));
            }
            cur.map(|b| *b).ok_or(Short::More)
        })();
        match res {
            Ok(e) => Ok(Some((e, rd.pos))),
            Err(Short::More) if buf.len() < max => Ok(None),
            Err(Short::More) => Err(NativeError::PacketTooLarge { max }),
            Err(Short::Err(e)) => Err(e),
        }
    }
}

/// Encodes a server Pong.
pub fn encode_pong(out: &mut Vec<u8>) {
    put_varuint(out, server_kind::PONG);
}

/// Encodes a server EndOfStream.
pub fn encode_end_of_stream(out: &mut Vec<u8>) {
    put_varuint(out, server_kind::END_OF_STREAM);
}

#[cfg(test)]
mod tests {
    use super::*;

    const REV: u64 = 54477;

    fn hello() -> ClientHello {
        ClientHello {
            client_name: "ClickHouse client".into(),
            version_major: 25,
            version_minor: 3,
            revision: REV,
            database: "analytics".into(),
            user: "agent".into(),
            password: "ph_secret".into(),
        }
    }

    fn query(text: &str) -> Query {
        Query {
            query_id: "q1".into(),
            client_info: Some(Box::new(ClientInfo {
                query_kind: 1,
                initial_user: String::new(),
                initial_query_id: String::new(),
                initial_address: "0.0.0.0:0".into(),
                initial_query_start_time_us: 1_700_000_000_000_000,
                interface: ClientInterface::Tcp {
                    os_user: "me".into(),
                    hostname: "box".into(),
                    client_name: "ClickHouse client".into(),
                    version_major: 25,
                    version_minor: 3,
                    revision: REV,
                },
                quota_key: String::new(),
                distributed_depth: 0,
                version_patch: 1,
                trace: Some(TraceContext {
                    trace_id: [7; 16],
                    span_id: 9,
                    tracestate: "a=b".into(),
                    flags: 1,
                }),
                parallel_replicas: (0, 0, 0),
                script_position: (1, 2),
                jwt: None,
            })),
            settings: vec![Setting {
                name: "max_threads".into(),
                flags: 0,
                value: "4".into(),
            }],
            external_roles: Vec::new(),
            interserver_secret: Vec::new(),
            stage: 2,
            compression: false,
            query: text.as_bytes().to_vec(),
            truncated: false,
            parameters: vec![Setting {
                name: "id".into(),
                flags: 2,
                value: "'7'".into(),
            }],
        }
    }

    fn handshake(d: &mut ClientDecoder) -> Vec<u8> {
        let mut b = Vec::new();
        hello().encode(&mut b);
        d.feed(&b);
        let Some(ClientItem::Packet {
            packet: ClientPacket::Hello(h),
            raw,
        }) = d.next_item().unwrap()
        else {
            panic!("no hello")
        };
        assert_eq!(h, hello());
        assert_eq!(raw, b);
        d.set_server_revision(REV);
        let mut a = Vec::new();
        HelloAddendum {
            quota_key: String::new(),
            send_chunked: Some("notchunked".into()),
            recv_chunked: Some("notchunked".into()),
            parallel_replicas_version: Some(3),
        }
        .encode(REV, &mut a);
        d.feed(&a);
        assert!(matches!(
            d.next_item().unwrap(),
            Some(ClientItem::Packet {
                packet: ClientPacket::Addendum(_),
                ..
            })
        ));
        b
    }

    #[test]
    fn query_round_trip_byte_by_byte() {
        let mut d = ClientDecoder::default();
        handshake(&mut d);
        let q = query("SELECT 1");
        let mut b = Vec::new();
        q.encode(REV, &mut b).unwrap();
        encode_empty_data("", &mut b);
        encode_ping(&mut b);
        let mut got = Vec::new();
        for byte in &b {
            d.feed(std::slice::from_ref(byte));
            while let Some(i) = d.next_item().unwrap() {
                got.push(i);
            }
        }
        assert_eq!(got.len(), 3);
        assert!(
            matches!(&got[0], ClientItem::Packet { packet: ClientPacket::Query(x), .. } if *x == q)
        );
        assert!(matches!(
            &got[1],
            ClientItem::Packet {
                packet: ClientPacket::Data { empty: true, .. },
                ..
            }
        ));
        assert!(matches!(
            &got[2],
            ClientItem::Packet {
                packet: ClientPacket::Ping,
                ..
            }
        ));
    }

    #[test]
    fn oversize_query_streams() {
        let mut d = ClientDecoder::new(4096 + 512);
        handshake(&mut d);
        let long = "SELECT '".to_string() + &"x".repeat(10_000) + "'";
        let q = query(&long);
        let mut b = Vec::new();
        q.encode(REV, &mut b).unwrap();
        d.feed(&b);
        let Some(ClientItem::OversizeQuery { query, raw }) = d.next_item().unwrap() else {
            panic!("expected oversize")
        };
        assert!(query.truncated);
        assert!(query.query.len() > 4000 && raw.len() == 4096 + 512);
        let mut total = raw.len();
        let mut params = None;
        while let Some(i) = d.next_item().unwrap() {
            match i {
                ClientItem::QueryTail(c) => total += c.len(),
                ClientItem::OversizeEnd { parameters, raw } => {
                    total += raw.len();
                    params = Some(parameters);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(total, b.len());
        assert_eq!(params.unwrap(), q.parameters);
    }

    #[test]
    fn exception_round_trip() {
        let mut e = Exception::access_denied("denied by rule x");
        e.nested = Some(Box::new(Exception::access_denied("inner")));
        let mut b = Vec::new();
        e.encode(&mut b);
        assert_eq!(&b[..5], &[2, 0xf1, 0x01, 0, 0]);
        let (d, n) = Exception::decode(&b, 1024).unwrap().unwrap();
        assert_eq!(n, b.len());
        assert_eq!(d, e);
    }

    #[test]
    fn server_hello_round_trip() {
        let h = ServerHello {
            name: "ClickHouse".into(),
            version_major: 25,
            version_minor: 3,
            revision: REV,
            parallel_replicas_version: 4,
            timezone: "UTC".into(),
            display_name: "ch1".into(),
            version_patch: 2,
            chunked: ("notchunked".into(), "notchunked".into()),
            password_rules: vec![("^.{8,}$".into(), "8 chars".into())],
            nonce: 42,
            settings: vec![],
            query_plan_version: 1,
            cluster_function_version: 0,
        };
        let mut b = Vec::new();
        h.encode(REV, &mut b).unwrap();
        let (d, n) = ServerHello::decode(&b, REV, 4096).unwrap().unwrap();
        assert_eq!((d, n), (h, b.len()));
        assert_eq!(ServerHello::decode(&b[..b.len() - 1], REV, 4096), Ok(None));
    }

    #[test]
    fn rejects_non_hello_and_poisons() {
        let mut d = ClientDecoder::default();
        d.feed(&[4]);
        assert!(d.next_item().is_err());
        assert_eq!(d.next_item(), Err(NativeError::Poisoned));
    }

    #[test]
    fn huge_string_length_is_an_error_not_an_allocation() {
        let mut d = ClientDecoder::new(1024);
        d.feed(&[0, 0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(matches!(d.next_item(), Err(NativeError::TooLong { .. })));
    }

    #[test]
    fn uncompressed_data_block_with_columns_is_skipped() {
        let mut d = ClientDecoder::default();
        handshake(&mut d);
        let mut b = Vec::new();
        put_varuint(&mut b, client_kind::DATA);
        put_bytes(&mut b, b"");
        b.extend_from_slice(&[1, 0, 2, 0xff, 0xff, 0xff, 0xff, 0]);
        put_varuint(&mut b, 2);
        put_varuint(&mut b, 2);
        put_bytes(&mut b, b"id");
        put_bytes(&mut b, b"UInt32");
        b.push(0);
        b.extend_from_slice(&[1, 0, 0, 0, 2, 0, 0, 0]);
        put_bytes(&mut b, b"name");
        put_bytes(&mut b, b"Nullable(String)");
        b.push(0);
        b.extend_from_slice(&[0, 0]);
        put_bytes(&mut b, b"ab");
        put_bytes(&mut b, b"c");
        encode_ping(&mut b);
        d.feed(&b);
        assert!(matches!(
            d.next_item().unwrap(),
            Some(ClientItem::Packet {
                packet: ClientPacket::Data { empty: false, .. },
                ..
            })
        ));
        assert!(matches!(
            d.next_item().unwrap(),
            Some(ClientItem::Packet {
                packet: ClientPacket::Ping,
                ..
            })
        ));
    }
}
