//! The interception loop (reference §9.3 item 8): every request on a terminated agent
//! connection is parsed, decided, injected, forwarded, and audited.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use clawpatrol_core::audit::AuditRecord;
use clawpatrol_core::audit::{body_sample, record_extra, redact_headers, redact_text};
use clawpatrol_core::config::model::Credential;
use clawpatrol_core::dispatch::{http_haystack, DispatchRequest};
use clawpatrol_core::facts::from_http::{http_action, k8s_action};
use clawpatrol_core::facts::Family;
use clawpatrol_core::inject::SecretMaterial;
use clawpatrol_core::inject::{inject_http, InjectError, Injected};
use clawpatrol_core::{Decision, Verdict};
use clawpatrol_protocols::http::{
    request_framing, response_framing, split_target, strip_credential_headers, BodyDecoder,
    BodyFraming, HttpError, Limits, RequestHead, ResponseHead,
};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::io::{stream_body, stream_body_after, Io, ReadError, StreamError, Wire};
use super::respond;
use crate::approvals::{run_chain, ApprovalRequest, ApprovalVerdict};
use crate::runtime::{claiming_endpoint, endpoint, now_ns, peer_ip, Shared};

/// Who is on the agent side of an intercepted connection, and where it was going.
#[derive(Debug, Clone)]
pub struct ConnCtx {
    /// The agent's address.
    pub peer: SocketAddr,
    /// The profile the agent was identified as.
    pub profile: Option<String>,
    /// The host the agent addressed (SNI, else CONNECT host), lower-case.
    pub host: String,
    /// The upstream port.
    pub port: u16,
}

/// Headers never forwarded upstream (reference §9.3 item 8), except on WebSocket upgrades
/// where `Connection` and `Upgrade` must pass.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailers",
    "upgrade",
    "cf-worker",
    "cf-ray",
    "cf-ew-via",
    "cf-connecting-ip",
    "cdn-loop",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "via",
    "x-hitl-thread-ts",
    "x-hitl-channel",
];

/// What to do with the agent connection after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    KeepAlive,
    Close,
}

/// An open upstream connection and the client certificate it was made with.
struct UpConn {
    wire: Wire<Box<dyn Io>>,
    client_cert: Option<[u8; 32]>,
}

/// Serves every request of one intercepted (TLS-terminated) agent connection.
pub async fn serve<S: Io + 'static>(client: S, ctx: ConnCtx, shared: Arc<Shared>) {
    let mut client = Wire::new(client, Vec::new());
    let mut upstream: Option<UpConn> = None;
    let t = shared.timeouts;
    loop {
        // While the audit writer is behind, no new request is read: the agent waits rather
        // than sending requests faster than they are audited.
        tokio::select! {
            () = shared.audit.room() => {}
            () = shared.shutdown.cancelled() => break,
        }
        let limits = Shared::http_limits(&shared.policy.load());
        let read = tokio::select! {
            r = client.read_request_head(&limits, t.idle, t.head) => r,
            () = shared.shutdown.cancelled(), if client.buffered().is_empty() => break,
        };
        let head = match read {
            Ok(Some(h)) => h,
            Ok(None) => break,
            Err(e) => {
                refuse_unreadable(&mut client, &e, &ctx).await;
                break;
            }
        };
        let flow = handle(&mut client, &mut upstream, head, &ctx, &shared).await;
        if flow == Flow::Close || shared.shutdown.is_cancelled() {
            break;
        }
    }
    linger(client).await;
}

/// Most bytes read and discarded after the gateway closed its side.
const LINGER_BYTES: usize = 16 << 20;

/// Closes the write side, then reads and discards what the agent still sends for a short
/// while (a body the gateway refused), so the kernel does not reset the connection before
/// the agent has read the response.
async fn linger<S: Io>(mut client: Wire<S>) {
    let _ = client.io.shutdown().await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    let mut drained = 0usize;
    let mut sink = vec![0u8; super::io::READ_CHUNK];
    while drained < LINGER_BYTES {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(
            left,
            tokio::io::AsyncReadExt::read(&mut client.io, &mut sink),
        )
        .await
        {
            Ok(Ok(n)) if n > 0 => drained += n,
            _ => break,
        }
    }
}

/// Answers a request that could not be read (reference §4.5: only a category is logged).
async fn refuse_unreadable<S: Io>(client: &mut Wire<S>, e: &ReadError, ctx: &ConnCtx) {
    let (category, reply) = match e {
        ReadError::Http(HttpError::HeadTooLarge { .. } | HttpError::TooManyHeaders { .. }) => (
            "request_too_large",
            Some(respond::head_too_large(&e.to_string())),
        ),
        ReadError::Http(h) => (
            "invalid_request",
            Some(respond::bad_request(&h.to_string())),
        ),
        ReadError::Timeout(_) if !client.buffered().is_empty() => (
            "timeout",
            Some(respond::plain(
                408,
                "Request Timeout",
                "request head timed out\n",
                &[],
            )),
        ),
        ReadError::Timeout(_) => ("timeout", None),
        ReadError::Incomplete => ("incomplete_request", None),
        ReadError::Io(_) => ("network_error", None),
    };
    tracing::info!(host = %ctx.host, peer = %ctx.peer, category, "unreadable request");
    if let Some(bytes) = reply {
        let _ = client.write_all(&bytes).await;
    }
}

/// Everything known about one request while it is handled, for the audit row.
struct Exchange {
    rec: AuditRecord,
    started: Instant,
    secrets: Vec<String>,
    /// An approval chain allowed the request (audited as `approved`).
    approved: bool,
}

impl Exchange {
    fn new(head: &RequestHead, ctx: &ConnCtx) -> Exchange {
        let (path, _) = split_target(&head.target);
        Exchange {
            rec: AuditRecord {
                action_id: uuid::Uuid::now_v7().to_string(),
                ts_ns: now_ns(),
                mode: "mitm".to_string(),
                family: "http".to_string(),
                agent_ip: peer_ip(&ctx.peer),
                profile: ctx.profile.clone(),
                host: ctx.host.clone(),
                method: head.method.clone(),
                path: path.to_string(),
                extra: serde_json::json!({}),
                ..AuditRecord::default()
            },
            started: Instant::now(),
            secrets: Vec::new(),
            approved: false,
        }
    }

    /// Sends the row to the audit queue (waiting while it is full) and logs one line.
    async fn finish(mut self, shared: &Shared, action: &str, reason: &str) {
        let rec = &mut self.rec;
        rec.action = if self.approved && action == "allow" {
            "approved".to_string()
        } else {
            action.to_string()
        };
        rec.reason = redact_text(reason, &self.secrets);
        rec.ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(
            action = %rec.action,
            method = %rec.method,
            host = %rec.host,
            path = %rec.path,
            status = %rec.status,
            endpoint = rec.endpoint.as_deref().unwrap_or(""),
            rule = rec.rule.as_deref().unwrap_or(""),
            credential = rec.credential.as_deref().unwrap_or(""),
            reason = %rec.reason,
            ms = rec.ms,
            "request"
        );
        shared.audit.record(self.rec).await;
    }
}

/// Writes the deny response, audits it, and closes (reference §2.11).
async fn deny<S: Io>(client: &mut Wire<S>, shared: &Shared, x: Exchange, reason: &str) -> Flow {
    refuse(client, shared, x, "deny", reason).await
}

/// Writes the 403 of §2.11 for a refusal the policy did not decide (missing secret, no
/// approver runtime, …), audited as `audit_action` so exported fixtures keep the policy's
/// verdict.
async fn refuse<S: Io>(
    client: &mut Wire<S>,
    shared: &Shared,
    mut x: Exchange,
    audit_action: &str,
    reason: &str,
) -> Flow {
    let bytes = respond::deny(reason);
    x.rec.status = "403".to_string();
    x.rec.bytes_out = bytes.len() as u64;
    let _ = client.write_all(&bytes).await;
    x.finish(shared, audit_action, reason).await;
    Flow::Close
}

/// Writes a gateway-generated error response, audits it as `error`, and closes.
async fn fail<S: Io>(
    client: &mut Wire<S>,
    shared: &Shared,
    mut x: Exchange,
    bytes: Vec<u8>,
    status: &str,
    reason: &str,
) -> Flow {
    x.rec.status = status.to_string();
    x.rec.bytes_out = bytes.len() as u64;
    let _ = client.write_all(&bytes).await;
    x.finish(shared, "error", reason).await;
    Flow::Close
}

/// The request body read so far for inspection, raw (framing included).
struct BodyPrefix {
    decoder: BodyDecoder,
    raw: Vec<u8>,
    hash: Sha256,
    /// The raw bytes outgrew their bound before the inspection view filled.
    overflowed: bool,
}

/// Reads the body up to the inspection cap (and a bound on raw bytes).
async fn read_prefix<S: Io>(
    client: &mut Wire<S>,
    framing: BodyFraming,
    limits: &Limits,
    inspect: bool,
    shared: &Shared,
) -> Result<BodyPrefix, ReadError> {
    let mut p = BodyPrefix {
        decoder: BodyDecoder::new(framing, limits),
        raw: Vec::new(),
        hash: Sha256::new(),
        overflowed: false,
    };
    if !inspect {
        return Ok(p);
    }
    let raw_cap = limits
        .body_buffer
        .saturating_mul(2)
        .saturating_add(64 * 1024);
    while !p.decoder.is_done() && !p.decoder.inspected().truncated() {
        if p.raw.len() >= raw_cap {
            p.overflowed = true;
            break;
        }
        if client.buffered().is_empty() && client.read_more(shared.timeouts.idle).await? == 0 {
            p.decoder.finish()?;
            break;
        }
        let progress = p.decoder.feed(client.buffered())?;
        let chunk = &client.buffered()[..progress.consumed];
        p.hash.update(chunk);
        p.raw.extend_from_slice(chunk);
        client.consume(progress.consumed);
    }
    Ok(p)
}

/// Removes hop-by-hop and proxy headers, and `Expect` when the gateway answered it.
pub(crate) fn clean_head(head: &mut RequestHead, websocket: bool, drop_expect: bool) {
    head.headers.retain(|(name, _)| {
        let lower = name.to_ascii_lowercase();
        if drop_expect && lower == "expect" {
            return false;
        }
        if websocket && (lower == "connection" || lower == "upgrade") {
            return true;
        }
        !HOP_BY_HOP.contains(&lower.as_str())
    });
}

/// Serialises a request head for the upstream in origin form.
pub(crate) fn head_bytes(head: &RequestHead) -> Vec<u8> {
    let (path, query) = split_target(&head.target);
    let mut target = if path.is_empty() {
        "/".to_string()
    } else {
        path.to_string()
    };
    if head.target.starts_with('/') || head.target == "*" {
        target = head.target.clone();
    } else if let Some(q) = query {
        target.push('?');
        target.push_str(q);
    }
    let mut out = Vec::with_capacity(head.head_len.max(256));
    out.extend_from_slice(head.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.version.as_str().as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &head.headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Whether a message asks to close the connection after it.
fn wants_close(headers: &[(String, Vec<u8>)], http10: bool) -> bool {
    let tokens = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, v)| v.split(|&b| b == b','))
        .map(|t| t.trim_ascii().to_ascii_lowercase())
        .collect::<Vec<_>>();
    if http10 {
        !tokens.iter().any(|t| t == b"keep-alive")
    } else {
        tokens.iter().any(|t| t == b"close")
    }
}

/// The secret-lookup variable of a credential (reference §4.1).
pub fn secret_var(credential: &str) -> String {
    crate::secrets::SecretStore::variable_name(credential)
}

/// The variables that hold a credential's secret, for error messages: the named slots for
/// types whose secret lives only there (`mtls_credential`), else the primary variable.
fn secret_hint(kind: &str, credential: &str) -> String {
    let base = secret_var(credential);
    match kind {
        "mtls_credential" => format!("{base}_CERT and {base}_KEY"),
        _ => base,
    }
}

/// Handles one request; the head has been read.
async fn handle<S: Io>(
    client: &mut Wire<S>,
    upstream: &mut Option<UpConn>,
    mut head: RequestHead,
    ctx: &ConnCtx,
    shared: &Shared,
) -> Flow {
    let policy = shared.policy.load_full();
    let limits = Shared::http_limits(&policy);
    let mut x = Exchange::new(&head, ctx);
    let framing = match request_framing(&head) {
        Ok(f) => f,
        Err(e) => {
            let why = e.to_string();
            return fail(client, shared, x, respond::bad_request(&why), "400", &why).await;
        }
    };
    if let Err(why) = check_host_header(&head, &ctx.host) {
        return fail(client, shared, x, respond::bad_request(&why), "400", &why).await;
    }
    let endpoint_name =
        match claiming_endpoint(&policy, &ctx.host, ctx.port, ctx.profile.as_deref()) {
            Ok(Some(e)) => e,
            Ok(None) => {
                let why = format!(
                    "host `{}` is not claimed by an endpoint of this profile",
                    ctx.host
                );
                return refuse(client, shared, x, "error", &why).await;
            }
            Err(e) => return refuse(client, shared, x, "error", &e).await,
        };
    x.rec.endpoint = Some(endpoint_name.clone());
    let Some(ep) = endpoint(&policy, &endpoint_name) else {
        return refuse(client, shared, x, "error", "endpoint vanished").await;
    };
    let family = ep.family;
    if !matches!(family, Family::Http | Family::K8s) {
        let why = format!("endpoint `{endpoint_name}` does not take http requests");
        return refuse(client, shared, x, "error", &why).await;
    }
    x.rec.family = if family == Family::K8s { "k8s" } else { "http" }.to_string();

    let websocket = head.is_websocket_upgrade();
    let answered_continue = head.expects_continue() && framing != BodyFraming::None;
    if answered_continue && client.write_all(respond::CONTINUE).await.is_err() {
        return Flow::Close;
    }
    let mut body =
        match read_prefix(client, framing, &limits, head.body_is_inspected(), shared).await {
            Ok(b) => b,
            Err(e) => {
                let why = e.to_string();
                return fail(client, shared, x, respond::bad_request(&why), "400", &why).await;
            }
        };

    let mut action = if family == Family::K8s {
        k8s_action(&head, body.decoder.inspected())
    } else {
        http_action(&head, body.decoder.inspected())
    };
    action.truncated |= body.overflowed;
    action.host = ctx.host.clone();
    action.endpoint = Some(endpoint_name.clone());
    action.peer_ip = peer_ip(&ctx.peer);
    let haystack = http_haystack(&head);
    let hay: Vec<&str> = haystack.iter().map(String::as_str).collect();
    let credential = policy
        .resolve_credential(
            ctx.profile.as_deref(),
            &endpoint_name,
            &DispatchRequest {
                haystack: &hay,
                user: None,
                database: None,
            },
        )
        .map(str::to_string);
    action.credential = credential.clone().unwrap_or_default();
    x.rec.credential = credential.clone();

    let decision = policy.decide(&action);
    record_decision(&mut x, &decision, &action, Shared::body_storage(&policy));
    if let Some(detail) = &decision.log_detail {
        tracing::warn!(rule = decision.rule.as_deref().unwrap_or(""), detail = %detail, "rule could not be evaluated");
    }
    match &decision.verdict {
        Verdict::Deny => return deny(client, shared, x, decision.agent_reason()).await,
        Verdict::Approve(chain) => {
            let req = approval_request(&head, &action, &decision, ctx, &x, &policy);
            let verdict = match await_approval(client, shared, &policy, chain, &req).await {
                Some(v) => v,
                None => {
                    let why = "original client connection closed before approval; upstream request was not sent";
                    x.finish(shared, "denied", why).await;
                    return Flow::Close;
                }
            };
            x.rec.approver = Some(verdict.approver.clone());
            x.rec.approver_type = Some(verdict.approver_type.clone());
            x.rec.approver_by = Some(verdict.by.clone()).filter(|b| !b.is_empty());
            if verdict.cached {
                if let serde_json::Value::Object(m) = &mut x.rec.extra {
                    m.insert("approval_cached".to_string(), serde_json::Value::Bool(true));
                }
            }
            if !verdict.allow {
                return refuse(client, shared, x, "denied", &verdict.reason).await;
            }
            x.approved = true;
        }
        Verdict::Allow | Verdict::Passthrough => {}
    }

    // Injection: the chosen credential must have its secret, else fail closed.
    let cred_model = credential
        .as_deref()
        .and_then(|c| policy.config().credentials.iter().find(|m| m.name == c));
    let secret = match cred_model {
        Some(c) if c.kind != "passthrough" => match shared.secrets.get(&c.name) {
            Ok(Some(s)) => s,
            Ok(None) => {
                let why = format!(
                    "credential `{}` has no secret configured (set {})",
                    c.name,
                    secret_hint(&c.kind, &c.name)
                );
                return refuse(client, shared, x, "error", &why).await;
            }
            Err(e) => {
                tracing::warn!(credential = %c.name, error = %e, "secret lookup failed");
                let why = format!("credential `{}`: secret lookup failed", c.name);
                return refuse(client, shared, x, "error", &why).await;
            }
        },
        _ => SecretMaterial::default(),
    };
    x.secrets = secret.redaction_strings();
    clean_head(&mut head, websocket, answered_continue);
    let complete = body.decoder.is_done();
    let mut client_cert = None;
    if let Some(c) = cred_model {
        match inject(
            c,
            &secret,
            &mut head,
            complete.then(|| body.decoder.inspected().bytes()),
        ) {
            Ok(inj) => {
                x.secrets.extend(inj.secrets_used);
                x.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
                x.secrets.dedup();
                if let Some(t) = inj.new_target {
                    head.target = t;
                }
                if let Some(new_body) = inj.new_body {
                    head.headers.retain(|(n, _)| {
                        !n.eq_ignore_ascii_case("content-length")
                            && !n.eq_ignore_ascii_case("transfer-encoding")
                    });
                    head.headers.push((
                        "Content-Length".to_string(),
                        new_body.len().to_string().into_bytes(),
                    ));
                    body.raw = new_body;
                }
                client_cert = inj.client_cert;
            }
            Err(e) => {
                let why = e.to_string();
                tracing::warn!(credential = %c.name, error = %why, "credential injection failed");
                return refuse(client, shared, x, "error", &why).await;
            }
        }
    }
    if client_cert.is_none() {
        client_cert = endpoint_client_cert(&policy, ep, shared, &mut x.secrets);
    }
    x.rec.req_headers = redact_headers(&head.headers, &x.secrets);
    let storage = Shared::body_storage(&policy);
    let ca = ep.attrs.get("ca_cert").and_then(|v| match v {
        clawpatrol_core::config::model::AttrValue::Str(s) => Some(s.clone()),
        _ => None,
    });
    forward(
        client,
        upstream,
        head,
        body,
        client_cert,
        ca,
        ctx,
        shared,
        x,
        storage,
        websocket,
        &limits,
    )
    .await
}

/// The client certificate of the first `mtls_credential` bound to the endpoint (reference
/// §4.4.1), when the dispatched credential did not supply one. A missing secret is logged
/// and the dial proceeds without a client certificate (the upstream then refuses).
fn endpoint_client_cert(
    policy: &clawpatrol_core::Policy,
    ep: &clawpatrol_core::config::model::Endpoint,
    shared: &Shared,
    secrets: &mut Vec<String>,
) -> Option<(Vec<u8>, Vec<u8>)> {
    let cred = policy
        .config()
        .credentials
        .iter()
        .find(|c| c.kind == "mtls_credential" && c.endpoints.contains(&ep.name))?;
    let secret = match shared.secrets.get(&cred.name) {
        Ok(Some(s)) => s,
        Ok(None) => {
            tracing::warn!(credential = %cred.name, "mtls credential has no secret; dialling without a client certificate");
            return None;
        }
        Err(e) => {
            tracing::warn!(credential = %cred.name, error = %e, "mtls secret lookup failed");
            return None;
        }
    };
    let mut scratch = RequestHead {
        method: String::new(),
        target: String::new(),
        version: clawpatrol_protocols::http::Version::Http11,
        headers: Vec::new(),
        head_len: 0,
    };
    match inject_http(cred, &secret, &mut scratch, None) {
        Ok(inj) => {
            secrets.extend(secret.redaction_strings());
            inj.client_cert
        }
        Err(e) => {
            tracing::warn!(credential = %cred.name, error = %e, "mtls credential unusable");
            None
        }
    }
}

/// Refuses a request whose `Host` names another host than the TLS server name it arrived
/// on: rules, credentials and the upstream dial all follow the server name, so a different
/// `Host` (domain fronting) could carry an injected credential to another site.
fn check_host_header(head: &RequestHead, host: &str) -> Result<(), String> {
    let mut values = head.header_values("host");
    let Some(value) = values.next() else {
        return Ok(());
    };
    if values.next().is_some() {
        return Err("several Host headers".to_string());
    }
    let text = String::from_utf8_lossy(value.trim_ascii()).to_ascii_lowercase();
    let name = match text.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => text.rsplit_once(':').map_or(text.as_str(), |(h, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                text.as_str()
            }
        }),
    };
    let want = host.trim_start_matches('[').trim_end_matches(']');
    if name.trim_end_matches('.') == want {
        Ok(())
    } else {
        Err(format!(
            "Host `{text}` does not match the connection's server name `{host}`"
        ))
    }
}

/// What the approvers of a chain are told about this request (reference §5.1).
fn approval_request(
    head: &RequestHead,
    action: &clawpatrol_core::Action,
    decision: &Decision,
    ctx: &ConnCtx,
    x: &Exchange,
    policy: &clawpatrol_core::Policy,
) -> ApprovalRequest {
    let mut redacted = action.clone();
    clawpatrol_core::audit::redact_action(&mut redacted, &x.secrets);
    let body = match &action.facts {
        clawpatrol_core::Facts::Http(h) | clawpatrol_core::Facts::K8s { http: h, .. } => h.body(),
        _ => &[],
    };
    ApprovalRequest {
        approver: String::new(),
        endpoint: x.rec.endpoint.clone().unwrap_or_default(),
        rule: decision.rule.as_deref().map(str::to_string),
        rule_reason: decision.reason.clone(),
        action: redacted,
        profile: ctx.profile.clone(),
        agent_ip: x.rec.agent_ip.clone(),
        method: head.method.clone(),
        host: ctx.host.clone(),
        path: head.target.clone(),
        user_agent: head
            .header_values("user-agent")
            .next()
            .map(|v| String::from_utf8_lossy(v).into_owned()),
        body_sample: body_sample(
            body,
            body.len() as u64,
            Shared::body_storage(policy),
            &x.secrets,
        ),
    }
}

/// Runs the approval chain while watching the agent connection; `None` when the agent
/// went away first (the chain is cancelled and the upstream is never contacted).
async fn await_approval<S: Io>(
    client: &mut Wire<S>,
    shared: &Shared,
    policy: &clawpatrol_core::Policy,
    chain: &[String],
    req: &ApprovalRequest,
) -> Option<ApprovalVerdict> {
    let run = run_chain(shared, policy, chain, req);
    tokio::pin!(run);
    loop {
        // Pipelined bytes are kept (bounded); EOF or an error means the agent left.
        let watching = client.buffered().len() < 1 << 20;
        tokio::select! {
            v = &mut run => return Some(v),
            r = client.read_more(std::time::Duration::from_secs(24 * 3600)), if watching => {
                match r {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
        }
    }
}

/// Runs credential injection for one request.
fn inject(
    c: &Credential,
    secret: &SecretMaterial,
    head: &mut RequestHead,
    body: Option<&[u8]>,
) -> Result<Injected, InjectError> {
    inject_http(c, secret, head, body)
}

/// Fills the decision columns of the audit row and stores the decided action.
fn record_decision(
    x: &mut Exchange,
    d: &Decision,
    action: &clawpatrol_core::Action,
    storage: usize,
) {
    x.rec.rule = d.rule.as_deref().map(str::to_string);
    x.rec.extra = record_extra(action, &x.secrets, storage);
}

/// Forwards an allowed request upstream and streams the response back.
#[allow(clippy::too_many_arguments)]
async fn forward<S: Io>(
    client: &mut Wire<S>,
    upstream: &mut Option<UpConn>,
    head: RequestHead,
    mut body: BodyPrefix,
    client_cert: Option<(Vec<u8>, Vec<u8>)>,
    ca: Option<String>,
    ctx: &ConnCtx,
    shared: &Shared,
    mut x: Exchange,
    storage: usize,
    websocket: bool,
    limits: &Limits,
) -> Flow {
    let t = shared.timeouts;
    let cert_key = client_cert.as_ref().map(|(c, k)| {
        let mut h = Sha256::new();
        h.update(c);
        h.update(k);
        <[u8; 32]>::from(h.finalize())
    });
    if upstream.as_ref().is_some_and(|u| u.client_cert != cert_key) {
        *upstream = None;
    }
    let out_head = head_bytes(&head);
    let retryable = body.decoder.is_done();
    let mut attempt = 0;
    let resp = loop {
        attempt += 1;
        let reused = upstream.is_some();
        if upstream.is_none() {
            let cc = client_cert
                .as_ref()
                .map(|(c, k)| (c.as_slice(), k.as_slice()));
            let config = match shared.upstream_tls.client_config(ca.as_deref(), cc) {
                Ok(c) => c,
                Err(e) => {
                    let why = e.to_string();
                    return fail(client, shared, x, respond::bad_gateway(&why), "502", &why).await;
                }
            };
            match shared
                .dialer
                .dial_tls(&ctx.host, ctx.port, config, t.handshake)
                .await
            {
                Ok(s) => {
                    *upstream = Some(UpConn {
                        wire: Wire::new(Box::new(s), Vec::new()),
                        client_cert: cert_key,
                    })
                }
                Err(e) => {
                    let why = e.to_string();
                    return fail(client, shared, x, respond::bad_gateway(&why), "502", &why).await;
                }
            }
        }
        let Some(up) = upstream.as_mut() else {
            return Flow::Close;
        };
        let sent = async {
            if body.raw.is_empty() {
                up.wire.write_all(&out_head).await?;
            } else {
                let mut first = Vec::with_capacity(out_head.len() + body.raw.len());
                first.extend_from_slice(&out_head);
                first.extend_from_slice(&body.raw);
                up.wire.write_all(&first).await?;
            }
            up.wire.io.flush().await
        }
        .await;
        let write_failed = sent.is_err();
        let result = match sent {
            Ok(()) => {
                if !body.decoder.is_done() {
                    match stream_body(
                        client,
                        &mut up.wire.io,
                        &mut body.decoder,
                        &mut body.hash,
                        t.idle,
                    )
                    .await
                    {
                        Ok(s) => x.rec.bytes_in += s.bytes,
                        Err(StreamError::Read(e)) => {
                            let why = format!("request body: {e}");
                            *upstream = None;
                            x.rec.status = String::new();
                            x.finish(shared, "error", &why).await;
                            return Flow::Close;
                        }
                        Err(StreamError::Write(e)) => {
                            *upstream = None;
                            let why = format!("upstream write failed: {e}");
                            return fail(
                                client,
                                shared,
                                x,
                                respond::bad_gateway(&why),
                                "502",
                                &why,
                            )
                            .await;
                        }
                    }
                }
                read_final_head(up, client, limits, t.response).await
            }
            Err(e) => Err(ReadError::Io(e)),
        };
        match result {
            Ok(r) => break r,
            Err(e) => {
                *upstream = None;
                let stale = matches!(e, ReadError::Io(_) | ReadError::Incomplete);
                // A stale keep-alive connection: resend once, but only when the request
                // cannot have been executed (the write failed) or is safe to repeat.
                let safe = matches!(head.method.as_str(), "GET" | "HEAD" | "OPTIONS");
                if reused && retryable && stale && attempt == 1 && (write_failed || safe) {
                    continue;
                }
                let why = format!("upstream response: {e}");
                return fail(client, shared, x, respond::bad_gateway(&why), "502", &why).await;
            }
        }
    };
    x.rec.bytes_in += body.raw.len() as u64;
    let req_sha = body.hash.clone().finalize();
    if x.rec.bytes_in > 0 {
        x.rec.req_sha = hex::encode(req_sha);
    }
    x.rec.req_body = body_sample(
        body.decoder.inspected().bytes(),
        x.rec.bytes_in,
        storage,
        &x.secrets,
    );
    x.rec.status = resp.status.to_string();
    x.rec.resp_headers = redact_headers(&resp.headers, &x.secrets);
    let Some(up) = upstream.as_mut() else {
        return Flow::Close;
    };

    if websocket && resp.status == 101 {
        let mut resp = resp;
        strip_credential_headers(&mut resp);
        let head_out = resp.to_bytes();
        let pending_up = up.wire.take_buffered();
        let pending_client = client.take_buffered();
        let ok = client.write_all(&head_out).await.is_ok()
            && client.write_all(&pending_up).await.is_ok()
            && up.wire.write_all(&pending_client).await.is_ok();
        x.finish(shared, "allow", "").await;
        if ok {
            if let Some(mut u) = upstream.take() {
                if let Err(e) = tokio::io::copy_bidirectional(&mut client.io, &mut u.wire.io).await
                {
                    tracing::debug!(error = %e, "websocket bridge ended");
                }
            }
        }
        return Flow::Close;
    }

    let framing = match response_framing(&head.method, &resp) {
        Ok(f) => f,
        Err(e) => {
            *upstream = None;
            let why = format!("upstream response: {e}");
            return fail(client, shared, x, respond::bad_gateway(&why), "502", &why).await;
        }
    };
    let upstream_close = wants_close(&resp.headers, resp.version.as_str() == "HTTP/1.0")
        || framing == BodyFraming::UntilClose;
    let client_close = wants_close(&head.headers, head.version.as_str() == "HTTP/1.0");
    let mut resp = resp;
    strip_credential_headers(&mut resp);
    if client_close || upstream_close {
        set_connection_close(&mut resp);
    }
    let head_out = resp.to_bytes();
    let head_len = head_out.len() as u64;
    let body_limits = Limits {
        body_buffer: storage,
        ..*limits
    };
    let mut decoder = BodyDecoder::new(framing, &body_limits);
    let mut hash = Sha256::new();
    let streamed = stream_body_after(
        head_out,
        &mut up.wire,
        &mut client.io,
        &mut decoder,
        &mut hash,
        t.response,
    )
    .await;
    x.rec.bytes_out = head_len;
    let flow = match streamed {
        Ok(s) => {
            x.rec.bytes_out += s.bytes;
            if s.bytes > 0 {
                x.rec.resp_sha = hex::encode(hash.finalize());
            }
            x.rec.resp_body =
                body_sample(decoder.inspected().bytes(), s.bytes, storage, &x.secrets);
            if client_close || upstream_close {
                Flow::Close
            } else {
                Flow::KeepAlive
            }
        }
        Err(e) => {
            tracing::info!(host = %ctx.host, error = %e, "response stream interrupted");
            Flow::Close
        }
    };
    if upstream_close || flow == Flow::Close {
        *upstream = None;
    }
    x.finish(shared, "allow", "").await;
    flow
}

/// Replaces any `Connection` header of a response with `Connection: close`.
fn set_connection_close(resp: &mut ResponseHead) {
    resp.headers.retain(|(n, _)| {
        !n.eq_ignore_ascii_case("connection") && !n.eq_ignore_ascii_case("keep-alive")
    });
    resp.headers
        .push(("Connection".to_string(), b"close".to_vec()));
}

/// Reads response heads, relaying interim 1xx responses (other than 101) to the agent.
async fn read_final_head<S: Io>(
    up: &mut UpConn,
    client: &mut Wire<S>,
    limits: &Limits,
    within: std::time::Duration,
) -> Result<ResponseHead, ReadError> {
    loop {
        let r = up.wire.read_response_head(limits, within).await?;
        if (100..200).contains(&r.status) && r.status != 101 {
            if r.status != 100 {
                let mut r = r;
                strip_credential_headers(&mut r);
                client.write_all(&r.to_bytes()).await?;
            }
            continue;
        }
        return Ok(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clawpatrol_protocols::http::parse_request_head;

    fn head(raw: &str) -> RequestHead {
        parse_request_head(raw.as_bytes(), &Limits::default())
            .unwrap()
            .unwrap()
    }

    #[test]
    fn hop_by_hop_and_proxy_headers_are_removed() {
        let mut h = head("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nProxy-Authorization: Basic eA==\r\nVia: x\r\nExpect: 100-continue\r\nX-Keep: 1\r\n\r\n");
        clean_head(&mut h, false, true);
        let names: Vec<_> = h.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["Host", "X-Keep"]);
    }

    #[test]
    fn websocket_keeps_upgrade_headers() {
        let mut h = head(
            "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        );
        clean_head(&mut h, true, false);
        assert_eq!(h.headers.len(), 3);
    }

    #[test]
    fn absolute_targets_become_origin_form() {
        let h = head("GET http://a.test/x/y?q=1 HTTP/1.1\r\nHost: a.test\r\n\r\n");
        assert!(head_bytes(&h).starts_with(b"GET /x/y?q=1 HTTP/1.1\r\n"));
        let h = head("GET http://a.test HTTP/1.1\r\nHost: a.test\r\n\r\n");
        assert!(head_bytes(&h).starts_with(b"GET / HTTP/1.1\r\n"));
    }

    #[test]
    fn connection_close_rules() {
        let close = vec![("Connection".to_string(), b"close".to_vec())];
        assert!(wants_close(&close, false));
        assert!(wants_close(&[], true));
        assert!(!wants_close(&[], false));
        let ka = vec![("connection".to_string(), b"Keep-Alive".to_vec())];
        assert!(!wants_close(&ka, true));
    }

    #[test]
    fn host_header_must_match_the_server_name() {
        let h = head("GET / HTTP/1.1\r\nHost: API.test:443\r\n\r\n");
        assert!(check_host_header(&h, "api.test").is_ok());
        let h = head("GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n");
        assert!(check_host_header(&h, "api.test").is_err());
        let h = head("GET / HTTP/1.1\r\nHost: a.test\r\nHost: a.test\r\n\r\n");
        assert!(check_host_header(&h, "a.test").is_err());
        let h = head("GET / HTTP/1.1\r\nHost: [::1]:6443\r\n\r\n");
        assert!(check_host_header(&h, "::1").is_ok());
        let h = head("GET / HTTP/1.0\r\n\r\n");
        assert!(check_host_header(&h, "a.test").is_ok());
    }

    #[test]
    fn secret_variable_names() {
        assert_eq!(secret_var("github-pat"), "CLAWPATROL_SECRET_GITHUB_PAT");
        assert_eq!(
            secret_hint("mtls_credential", "svc"),
            "CLAWPATROL_SECRET_SVC_CERT and CLAWPATROL_SECRET_SVC_KEY"
        );
        assert_eq!(secret_hint("bearer_token", "t"), "CLAWPATROL_SECRET_T");
    }
}
