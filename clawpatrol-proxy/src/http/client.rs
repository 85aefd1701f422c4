//! A small HTTP/1.1 client for the gateway's own calls (Slack, webhooks): one request per
//! connection, verified TLS, bounded response, timeouts. Plain `http://` only to loopback.

use std::net::IpAddr;
use std::time::Duration;

use clawpatrol_protocols::http::{response_framing, BodyDecoder, Limits};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::io::{stream_body, Io, Wire};
use crate::runtime::Shared;

/// A response with its (capped) body.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// The body, at most the caller's cap.
    pub body: Vec<u8>,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not `https://host[:port]/path` (or `http://` to a loopback address).
    #[error("invalid url `{0}`")]
    Url(String),
    /// Connecting or the TLS handshake failed.
    #[error("{0}")]
    Connect(String),
    /// Sending or receiving failed.
    #[error("{0}")]
    Io(String),
    /// The whole exchange took too long.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}

/// The parts of a URL a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `https` or `http`.
    pub tls: bool,
    /// Host name or IP (no brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Path and query (`/` when empty).
    pub path: String,
}

/// Parses `https://host[:port][/path]`, or `http://` when the host is a loopback address.
pub fn parse_url(url: &str) -> Result<Target, ClientError> {
    let bad = || ClientError::Url(url.to_string());
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(bad());
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let default_port = if tls { 443 } else { 80 };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(bad)?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad())?,
            None => default_port,
        };
        (h.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().map_err(|_| bad())?),
            None => (authority.to_string(), default_port),
        }
    };
    if host.is_empty() || host.contains(['@', ' ']) {
        return Err(bad());
    }
    let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !tls && !loopback {
        return Err(ClientError::Url(format!(
            "{url} (plain http is allowed only to loopback)"
        )));
    }
    Ok(Target {
        tls,
        host: host.to_ascii_lowercase(),
        port,
        path: path.to_string(),
    })
}

/// What a call needs, owned, so it can run in a detached task.
#[derive(Clone)]
pub struct ClientCtx {
    dialer: super::upstream::Dialer,
    tls: std::sync::Arc<rustls::ClientConfig>,
    timeouts: crate::runtime::Timeouts,
}

impl ClientCtx {
    /// The gateway's dialer, system roots plus `--extra-ca`, and timeouts.
    pub fn from_shared(shared: &Shared) -> Result<ClientCtx, ClientError> {
        let tls = shared
            .upstream_tls
            .client_config(shared.extra_ca.as_deref(), None)
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        Ok(ClientCtx {
            dialer: shared.dialer.clone(),
            tls,
            timeouts: shared.timeouts,
        })
    }
}

/// Sends one request and reads the response (body capped at `max_body` bytes).
pub async fn send(
    ctx: &ClientCtx,
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    body: &[u8],
    timeout: Duration,
    max_body: usize,
) -> Result<Response, ClientError> {
    let target = parse_url(url)?;
    match tokio::time::timeout(
        timeout,
        exchange(ctx, &target, method, headers, body, max_body),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => Err(ClientError::Timeout(timeout)),
    }
}

async fn exchange(
    ctx: &ClientCtx,
    t: &Target,
    method: &str,
    headers: &[(&str, String)],
    body: &[u8],
    max_body: usize,
) -> Result<Response, ClientError> {
    let io: Box<dyn Io> = if t.tls {
        Box::new(
            ctx.dialer
                .dial_tls(&t.host, t.port, ctx.tls.clone(), ctx.timeouts.handshake)
                .await
                .map_err(|e| ClientError::Connect(e.to_string()))?,
        )
    } else {
        Box::new(
            ctx.dialer
                .dial(&t.host, t.port)
                .await
                .map_err(|e| ClientError::Connect(e.to_string()))?,
        )
    };
    let mut wire = Wire::new(io, Vec::new());
    let host = if t.host.contains(':') {
        format!("[{}]", t.host)
    } else {
        t.host.clone()
    };
    let mut head = format!("{method} {} HTTP/1.1\r\nHost: {host}\r\n", t.path);
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let io_err = |e: std::io::Error| ClientError::Io(e.to_string());
    wire.write_all(head.as_bytes()).await.map_err(io_err)?;
    wire.write_all(body).await.map_err(io_err)?;
    wire.io.flush().await.map_err(io_err)?;
    let limits = Limits {
        body_buffer: max_body,
        ..Limits::default()
    };
    let resp = wire
        .read_response_head(&limits, ctx.timeouts.response)
        .await
        .map_err(|e| ClientError::Io(e.to_string()))?;
    let framing = response_framing(method, &resp).map_err(|e| ClientError::Io(e.to_string()))?;
    let mut decoder = BodyDecoder::new(framing, &limits);
    let mut sink = tokio::io::sink();
    stream_body(
        &mut wire,
        &mut sink,
        &mut decoder,
        &mut Sha256::new(),
        ctx.timeouts.idle,
    )
    .await
    .map_err(|e| ClientError::Io(e.to_string()))?;
    Ok(Response {
        status: resp.status,
        body: decoder.inspected().bytes().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = parse_url("https://slack.com/api/chat.postMessage").unwrap();
        assert_eq!(
            (t.tls, t.host.as_str(), t.port, t.path.as_str()),
            (true, "slack.com", 443, "/api/chat.postMessage")
        );
        let t = parse_url("http://127.0.0.1:9000").unwrap();
        assert_eq!((t.port, t.path.as_str()), (9000, "/"));
        assert!(parse_url("http://example.com/x").is_err());
        assert!(parse_url("ftp://x").is_err());
        let t = parse_url("https://[::1]:8443/a").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 8443));
    }
}
