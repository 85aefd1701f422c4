//! The pre-auth phase: SSL negotiation with the agent, StartupMessage, credential dispatch,
//! upstream login, and the post-auth frames replayed to the agent. Failures answer
//! `ErrorResponse(FATAL, 28000)` and close.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clawpatrol_core::audit::{redact_text, AuditRecord};
use clawpatrol_core::config::model::AttrValue;
use clawpatrol_core::dispatch::DispatchRequest;
use clawpatrol_protocols::postgres::{
    fatal_auth_error, Authentication, BackendMessage, Decoded, FrontendDecoder, FrontendMessage,
    FrontendPhase, ProtocolVersion,
};
use clawpatrol_protocols::sql::postgres_encoding_readable;
use ring::rand::SecureRandom;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use super::session::{self, SessionInfo};
use super::settings::decide_settings;
use super::upstream::{self, UpstreamTarget};
use super::{BoxStream, CancelMap, CancelTarget, SessionError};
use crate::listen::identity::identify;
use crate::runtime::{endpoint, now_ns, peer_ip, Shared};

/// Time allowed from accept to the agent's StartupMessage.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for the upstream dial, TLS and login.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest StartupMessage (length field included) the server accepts
/// (`MAX_STARTUP_PACKET_LENGTH`).
const MAX_STARTUP_PACKET: usize = 10_000;
/// Startup parameters never forwarded from the agent: replaced (`user`, `database`), or
/// dangerous (`replication` opens the replication protocol, `_pq_.*` are 3.2 extensions).
const DROPPED_PARAMS: &[&str] = &["user", "database", "replication"];

/// The agent's first packets, read up to the StartupMessage.
enum Opening {
    /// A StartupMessage (with the decoder, which may hold pipelined bytes).
    Startup(BoxStream, FrontendMessage, Box<FrontendDecoder>),
    /// A CancelRequest was relayed; nothing else to do.
    Cancelled,
}

/// Serves one agent connection from accept to close.
pub async fn handle(
    tcp: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    endpoint_name: String,
    cancels: Arc<CancelMap>,
) {
    let opening = tokio::time::timeout(
        STARTUP_TIMEOUT,
        opening(tcp, &shared, &endpoint_name, &cancels),
    )
    .await;
    let (mut agent, startup, dec) = match opening {
        Ok(Ok(Opening::Startup(a, s, d))) => (a, s, d),
        Ok(Ok(Opening::Cancelled)) => return,
        Ok(Err(e)) => {
            tracing::info!(peer = %peer, endpoint = %endpoint_name, error = %e, "postgres startup failed");
            return;
        }
        Err(_) => {
            tracing::info!(peer = %peer, endpoint = %endpoint_name, "postgres startup timed out");
            return;
        }
    };
    let started = Instant::now();
    let mut secrets = Vec::new();
    let mut setting_rows = Vec::new();
    let login = tokio::time::timeout(
        LOGIN_TIMEOUT,
        login(
            &shared,
            &endpoint_name,
            &startup,
            peer,
            &cancels,
            &mut secrets,
            &mut setting_rows,
        ),
    )
    .await
    .unwrap_or(Err(SessionError::Timeout));
    let mut conn = AuditRecord {
        action_id: uuid::Uuid::now_v7().to_string(),
        ts_ns: now_ns(),
        mode: "pg".to_string(),
        family: "sql".to_string(),
        agent_ip: peer_ip(&peer),
        method: "connect".to_string(),
        endpoint: Some(endpoint_name.clone()),
        extra: serde_json::json!({}),
        ..AuditRecord::default()
    };
    // The decided startup settings come before the connect row: they were decided first.
    for row in setting_rows {
        shared.audit.record(row).await;
    }
    let established = match login {
        Ok(est) => est,
        Err(e) => {
            let reason = redact_text(&format!("clawpatrol: {e}"), &secrets);
            tracing::warn!(peer = %peer, endpoint = %endpoint_name, reason = %reason, "postgres login refused");
            let _ = agent.write_all(&fatal_auth_error(&reason)).await;
            let _ = agent.shutdown().await;
            conn.action = "error".to_string();
            conn.reason = reason;
            conn.path = startup.startup_param("database").unwrap_or("").to_string();
            conn.ms = elapsed_ms(started);
            shared.audit.record(conn).await;
            return;
        }
    };
    let Established {
        upstream,
        info,
        agent_bytes,
        cancel_key,
    } = established;
    conn.action = "allow".to_string();
    conn.profile = info.profile.clone();
    conn.host = info.host.clone();
    conn.path = info.database.clone();
    conn.credential = Some(info.credential.clone());
    conn.ms = elapsed_ms(started);
    tracing::info!(
        peer = %peer,
        endpoint = %info.endpoint,
        database = %info.database,
        credential = %info.credential,
        profile = info.profile.as_deref().unwrap_or(""),
        "postgres session established"
    );
    shared.audit.record(conn).await;
    let result = async {
        agent.write_all(&agent_bytes).await?;
        let mut dec = *dec;
        dec.set_phase(FrontendPhase::Typed);
        dec.set_stream_oversize(true);
        session::run(&shared, &info, agent, dec, upstream).await
    }
    .await;
    cancels.remove(&cancel_key);
    match result {
        Ok(()) => tracing::debug!(peer = %peer, "postgres session closed"),
        Err(e) => tracing::info!(peer = %peer, error = %e, "postgres session ended"),
    }
}

fn elapsed_ms(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Reads the next startup-phase packet from the agent.
async fn read_packet(
    agent: &mut BoxStream,
    dec: &mut FrontendDecoder,
    buf: &mut [u8],
) -> Result<FrontendMessage, SessionError> {
    loop {
        match dec.next_frame().map_err(SessionError::Protocol)? {
            Some(Decoded::Message(m)) => return Ok(m),
            Some(_) => {
                return Err(SessionError::Config(
                    "oversize packet during startup".into(),
                ))
            }
            None => {}
        }
        let n = agent.read(buf).await?;
        if n == 0 {
            return Err(SessionError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        dec.feed(&buf[..n]);
    }
}

/// Answers SSL/GSSENC requests and relays a CancelRequest, up to the StartupMessage.
async fn opening(
    tcp: TcpStream,
    shared: &Shared,
    endpoint_name: &str,
    cancels: &CancelMap,
) -> Result<Opening, SessionError> {
    let (agent_tls, host) = {
        let policy = shared.policy.load();
        let ep = endpoint(&policy, endpoint_name).ok_or_else(|| {
            SessionError::Config(format!(
                "endpoint `{endpoint_name}` is no longer configured"
            ))
        })?;
        let tls = matches!(ep.attrs.get("agent_tls"), Some(AttrValue::Bool(true)));
        let host = ep.hosts.first().map(|h| h.host.clone()).unwrap_or_default();
        (tls, host)
    };
    let mut agent: BoxStream = Box::new(tcp);
    let mut dec = FrontendDecoder::new();
    let mut buf = vec![0u8; 4096];
    let mut encrypted = false;
    loop {
        match read_packet(&mut agent, &mut dec, &mut buf).await? {
            FrontendMessage::SslRequest if agent_tls && !encrypted => {
                if dec.buffered_len() > 0 {
                    return Err(SessionError::AgentTls(
                        "plaintext bytes followed the SSLRequest".into(),
                    ));
                }
                agent.write_all(b"S").await?;
                let mut config = (*shared
                    .leaves
                    .server_config(&host)
                    .map_err(|e| SessionError::AgentTls(e.to_string()))?)
                .clone();
                config.alpn_protocols = vec![b"postgresql".to_vec()];
                let tls = TlsAcceptor::from(Arc::new(config))
                    .accept(agent)
                    .await
                    .map_err(|e| SessionError::AgentTls(e.to_string()))?;
                agent = Box::new(tls);
                encrypted = true;
            }
            FrontendMessage::SslRequest | FrontendMessage::GssEncRequest => {
                agent.write_all(b"N").await?;
            }
            FrontendMessage::CancelRequest {
                process_id,
                secret_key,
            } => {
                if let Some(t) = cancels.get(&(process_id, secret_key)) {
                    relay_cancel(shared, &t).await;
                }
                return Ok(Opening::Cancelled);
            }
            m @ FrontendMessage::Startup { .. } => {
                return Ok(Opening::Startup(agent, m, Box::new(dec)))
            }
            _ => {
                return Err(SessionError::Config(
                    "unexpected packet before the StartupMessage".into(),
                ))
            }
        }
    }
}

/// Sends a CancelRequest for the upstream backend behind an agent-visible key.
async fn relay_cancel(shared: &Shared, t: &CancelTarget) {
    let msg = FrontendMessage::CancelRequest {
        process_id: t.process_id,
        secret_key: t.secret_key.clone(),
    };
    let result = async {
        let mut up = upstream::connect(shared, &t.target).await?;
        let bytes = msg.to_bytes().map_err(SessionError::Protocol)?;
        up.write_all(&bytes).await?;
        let _ = up.shutdown().await;
        Ok::<(), SessionError>(())
    }
    .await;
    match result {
        Ok(()) => tracing::info!(host = %t.target.host, "postgres cancel request relayed"),
        Err(e) => tracing::warn!(error = %e, "postgres cancel request failed"),
    }
}

/// A logged-in upstream session.
struct Established {
    upstream: BoxStream,
    info: SessionInfo,
    agent_bytes: Vec<u8>,
    cancel_key: (i32, Vec<u8>),
}

/// Dispatches the credential, logs in upstream and prepares the agent's post-auth frames.
async fn login(
    shared: &Shared,
    endpoint_name: &str,
    startup: &FrontendMessage,
    peer: SocketAddr,
    cancels: &CancelMap,
    secrets: &mut Vec<String>,
    rows: &mut Vec<AuditRecord>,
) -> Result<Established, SessionError> {
    let FrontendMessage::Startup { version, params } = startup else {
        return Err(SessionError::Config("expected a StartupMessage".into()));
    };
    if version.major != 3 {
        return Err(SessionError::Config("unsupported protocol version".into()));
    }
    // The server refuses larger startup packets; the gateway decides no more than that.
    let packet_len = 9 + params
        .iter()
        .map(|(k, v)| k.len() + v.len() + 2)
        .sum::<usize>();
    if packet_len > MAX_STARTUP_PACKET {
        return Err(SessionError::Config(format!(
            "the startup packet is over the {MAX_STARTUP_PACKET} bytes the server accepts"
        )));
    }
    let policy = shared.policy.load_full();
    let ep = endpoint(&policy, endpoint_name).ok_or_else(|| {
        SessionError::Config(format!(
            "endpoint `{endpoint_name}` is no longer configured"
        ))
    })?;
    let target = UpstreamTarget::of(ep)?;
    let profile = identify(&policy, &shared.state, None).map_err(SessionError::Config)?;
    let user = startup.startup_param("user").unwrap_or("");
    if user.is_empty() {
        return Err(SessionError::Config(
            "the startup message has no user".into(),
        ));
    }
    let agent_db = startup.startup_param("database").filter(|d| !d.is_empty());
    let dispatch_db = agent_db.unwrap_or(user);
    let haystack = [user];
    let req = DispatchRequest {
        haystack: &haystack,
        user: Some(user),
        database: Some(dispatch_db),
    };
    let Some(cred_name) = policy.resolve_credential(profile.as_deref(), endpoint_name, &req) else {
        let bound = profile
            .as_deref()
            .map_or(0, |p| policy.dispatch_entries(p, endpoint_name).len());
        return Err(SessionError::Config(if bound == 0 {
            format!("no credential bound to postgres endpoint `{endpoint_name}`")
        } else {
            format!("no matching credential: user=\"{user}\" database=\"{dispatch_db}\"")
        }));
    };
    let cred = policy
        .config()
        .credentials
        .iter()
        .find(|c| c.name == cred_name && c.kind == "postgres_credential")
        .ok_or_else(|| {
            SessionError::Config(format!(
                "credential `{cred_name}` is not a postgres_credential"
            ))
        })?;
    let cred_attr = |k: &str| match cred.attrs.get(k) {
        Some(AttrValue::Str(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    let real_user = cred_attr("user").ok_or_else(|| {
        SessionError::Config("postgres credential has no user — set `user = ...` in HCL".into())
    })?;
    let password = match shared.secrets.get(cred_name) {
        Ok(Some(m)) => String::from_utf8(m.primary).map_err(|_| {
            SessionError::Config(format!(
                "the secret of postgres credential \"{cred_name}\" is not UTF-8"
            ))
        })?,
        Ok(None) => String::new(),
        Err(e) => return Err(SessionError::Config(e.to_string())),
    };
    if password.is_empty() {
        return Err(SessionError::Config(format!(
            "postgres credential \"{cred_name}\" has no password — set {}",
            crate::secrets::SecretStore::variable_name(cred_name)
        )));
    }
    secrets.push(password.clone());
    let upstream_db = agent_db
        .map(str::to_string)
        .or_else(|| cred_attr("database"));
    let database = upstream_db.clone().unwrap_or_else(|| real_user.clone());
    let mut info = SessionInfo {
        endpoint: endpoint_name.to_string(),
        host: target.host.clone(),
        profile,
        credential: cred_name.to_string(),
        database,
        peer_ip: peer_ip(&peer),
        server_encoding: String::new(),
        secrets: secrets.clone(),
    };
    // Every setting the agent asked for is decided before anything reaches the server.
    let forwarded = params
        .iter()
        .filter(|(k, _)| !DROPPED_PARAMS.contains(&k.as_str()) && !k.starts_with("_pq_."))
        .cloned()
        .collect();
    let forwarded = decide_settings(&policy, &info, forwarded, rows)?;
    let mut up_params = vec![("user".to_string(), real_user.clone())];
    if let Some(db) = &upstream_db {
        up_params.push(("database".to_string(), db.clone()));
    }
    up_params.extend(forwarded);
    // The gateway reads statements as UTF-8: the session must be read the same way by the
    // server (see `postgres_encoding_readable`). Without the agent's choice, UTF8 is pinned
    // at the client's priority, so no role, database or configuration default overrides it.
    // Setting names are case-insensitive to the server, and a repeated one counts.
    let chosen: Vec<&str> = params
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("client_encoding"))
        .map(|(_, v)| v.as_str())
        .collect();
    if let Some(e) = chosen
        .iter()
        .find(|e| !postgres_encoding_readable(e, "UTF8"))
    {
        return Err(SessionError::UnreadableEncoding(e.to_string()));
    }
    if chosen.is_empty() {
        up_params.push(("client_encoding".to_string(), "UTF8".to_string()));
    }
    let up_startup = FrontendMessage::Startup {
        version: ProtocolVersion::V3_0,
        params: up_params,
    };
    let mut up = upstream::connect(shared, &target).await?;
    let mut dec = upstream::authenticate(&mut up, &up_startup, &real_user, &password).await?;
    let mut agent_bytes = Vec::new();
    BackendMessage::Authentication(Authentication::Ok)
        .encode(&mut agent_bytes)
        .map_err(SessionError::Protocol)?;
    let mut buf = vec![0u8; 8192];
    let mut cancel_key = None;
    let mut client_encoding = String::new();
    let mut server_encoding = String::new();
    loop {
        let msg = upstream::next_message(&mut up, &mut dec, &mut buf).await?;
        match msg {
            BackendMessage::BackendKeyData {
                process_id,
                secret_key,
            } => {
                let key = agent_cancel_key()?;
                cancels.insert(
                    key.clone(),
                    CancelTarget {
                        target: target.clone(),
                        process_id,
                        secret_key,
                    },
                );
                BackendMessage::BackendKeyData {
                    process_id: key.0,
                    secret_key: key.1.clone(),
                }
                .encode(&mut agent_bytes)
                .map_err(SessionError::Protocol)?;
                cancel_key = Some(key);
            }
            BackendMessage::ErrorResponse(f) => {
                return Err(SessionError::Upstream(format!(
                    "the server refused the session: {} {}",
                    f.code().unwrap_or(""),
                    f.message().unwrap_or("")
                )))
            }
            BackendMessage::NegotiateProtocolVersion { .. } => {}
            BackendMessage::ParameterStatus { name, value } => {
                match name.as_str() {
                    "client_encoding" => client_encoding.clone_from(&value),
                    "server_encoding" => server_encoding.clone_from(&value),
                    _ => {}
                }
                BackendMessage::ParameterStatus { name, value }
                    .encode(&mut agent_bytes)
                    .map_err(SessionError::Protocol)?;
            }
            m @ BackendMessage::ReadyForQuery(_) => {
                m.encode(&mut agent_bytes).map_err(SessionError::Protocol)?;
                break;
            }
            m => m.encode(&mut agent_bytes).map_err(SessionError::Protocol)?,
        }
    }
    if dec.buffered_len() > 0 {
        return Err(SessionError::Upstream(
            "the server sent data before the first query".into(),
        ));
    }
    // Authoritative: `options` (`-c client_encoding=…`) may have set it too.
    if !postgres_encoding_readable(&client_encoding, &server_encoding) {
        return Err(SessionError::UnreadableEncoding(client_encoding));
    }
    let cancel_key = cancel_key.unwrap_or((0, Vec::new()));
    info.server_encoding = server_encoding;
    Ok(Established {
        upstream: up,
        info,
        agent_bytes,
        cancel_key,
    })
}

/// A random agent-visible cancel key (positive process id, 4-byte secret).
fn agent_cancel_key() -> Result<(i32, Vec<u8>), SessionError> {
    let mut raw = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| SessionError::Upstream("no randomness for the cancel key".into()))?;
    let pid = i32::from_be_bytes([raw[0] & 0x7f, raw[1], raw[2], raw[3]]).max(1);
    Ok((pid, raw[4..].to_vec()))
}
