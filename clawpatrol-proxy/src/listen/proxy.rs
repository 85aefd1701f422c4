//! The explicit forward proxy (DESIGN §3): `CONNECT` for HTTPS, absolute-form for plain HTTP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use clawpatrol_core::audit::AuditRecord;
use clawpatrol_core::config::model::UnknownHost;
use clawpatrol_protocols::http::{request_framing, BodyDecoder, HttpError, Limits, RequestHead};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use super::identity::identify;
use super::tls::{dispatch, Destination};
use crate::http::conn::{clean_head, head_bytes};
use crate::http::io::{stream_body, ReadError, Wire};
use crate::http::respond;
use crate::runtime::{claiming_endpoint, now_ns, peer_ip, Shared};

/// Accepts proxy connections until shutdown.
pub async fn run(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = shared.shutdown.cancelled() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let s = shared.clone();
                shared.tracker.spawn(handle(stream, peer, s));
            }
            Err(e) => {
                tracing::warn!(error = %e, "proxy accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Splits a CONNECT authority `host:port` / `[v6]:port`.
pub fn parse_authority(target: &str) -> Option<(String, u16)> {
    let (host, port) = target.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || host.contains(['/', ' ', '@']) {
        return None;
    }
    Some((host.to_ascii_lowercase(), port))
}

async fn handle(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "set_nodelay failed");
    }
    let t = shared.timeouts;
    let mut wire = Wire::new(stream, Vec::new());
    let head = match wire
        .read_request_head(&Limits::default(), t.head, t.head)
        .await
    {
        Ok(Some(h)) => h,
        Ok(None) => return,
        Err(e) => {
            let reply = match &e {
                ReadError::Http(
                    HttpError::HeadTooLarge { .. } | HttpError::TooManyHeaders { .. },
                ) => Some(respond::head_too_large(&e.to_string())),
                ReadError::Http(h) => Some(respond::bad_request(&h.to_string())),
                _ => None,
            };
            if let Some(r) = reply {
                let _ = wire.write_all(&r).await;
            }
            return;
        }
    };
    let policy = shared.policy.load_full();
    let auth = head.header_values("proxy-authorization").next();
    let profile = match identify(&policy, &shared.state, auth) {
        Ok(p) => p,
        Err(why) => {
            tracing::info!(%peer, reason = %why, "proxy authentication refused");
            let _ = wire.write_all(&respond::proxy_auth_required(&why)).await;
            return;
        }
    };
    drop(policy);
    if head.method == "CONNECT" {
        let Some((host, port)) = parse_authority(&head.target) else {
            let _ = wire
                .write_all(&respond::bad_request("CONNECT target must be host:port"))
                .await;
            return;
        };
        if wire.write_all(respond::CONNECT_OK).await.is_err() {
            return;
        }
        let pending = wire.take_buffered();
        let dest = Destination {
            host: Some(host),
            port,
        };
        dispatch(wire.io, pending, peer, profile, dest, shared).await;
    } else if head.target.starts_with("http://") {
        plain_http(wire, head, peer, profile, shared).await;
    } else {
        let why = "this proxy takes CONNECT host:port and absolute-form http:// requests";
        let _ = wire.write_all(&respond::bad_request(why)).await;
    }
}

/// `http://host[:port]/…` → (host, port).
fn http_authority(target: &str) -> Option<(String, u16)> {
    let rest = target.strip_prefix("http://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    match parse_authority(authority) {
        Some(hp) => Some(hp),
        None if !authority.is_empty() && !authority.contains(':') => {
            Some((authority.to_ascii_lowercase(), 80))
        }
        None => None,
    }
}

/// Relays one plain-HTTP request. Hosts claimed by an endpoint are refused: credentials
/// are injected only over TLS, and rules are written for the https endpoint.
async fn plain_http(
    mut wire: Wire<TcpStream>,
    mut head: RequestHead,
    peer: SocketAddr,
    profile: Option<String>,
    shared: Arc<Shared>,
) {
    let started = Instant::now();
    let Some((host, port)) = http_authority(&head.target) else {
        let _ = wire
            .write_all(&respond::bad_request("invalid http:// target"))
            .await;
        return;
    };
    let mut rec = AuditRecord {
        action_id: uuid::Uuid::now_v7().to_string(),
        ts_ns: now_ns(),
        mode: "proxy".to_string(),
        agent_ip: peer_ip(&peer),
        profile: profile.clone(),
        host: host.clone(),
        method: head.method.clone(),
        path: clawpatrol_protocols::http::split_target(&head.target)
            .0
            .to_string(),
        extra: serde_json::json!({}),
        ..AuditRecord::default()
    };
    let policy = shared.policy.load_full();
    let claimed = claiming_endpoint(&policy, &host, port, profile.as_deref());
    let refusal = match claimed {
        Ok(Some(ep)) => {
            rec.endpoint = Some(ep.clone());
            Some(format!(
                "plain http to `{host}` is refused: endpoint `{ep}` is reached over https only"
            ))
        }
        Ok(None) if Shared::unknown_host(&policy) == UnknownHost::Deny => Some(format!(
            "host `{host}` is not claimed by any endpoint and defaults.unknown_host is deny"
        )),
        Ok(None) => None,
        Err(e) => Some(e),
    };
    drop(policy);
    if let Some(why) = refusal {
        let bytes = respond::deny(&why);
        let _ = wire.write_all(&bytes).await;
        rec.status = "403".to_string();
        rec.action = "deny".to_string();
        rec.reason = why;
        rec.bytes_out = bytes.len() as u64;
        rec.ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        shared.audit.record(rec).await;
        return;
    }
    let outcome = relay(&mut wire, &mut head, &host, port, &shared).await;
    rec.ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match outcome {
        Ok((sent, received)) => {
            rec.action = "allow".to_string();
            rec.bytes_in = sent;
            rec.bytes_out = received;
        }
        Err(why) => {
            let _ = wire.write_all(&respond::bad_gateway(&why)).await;
            rec.status = "502".to_string();
            rec.action = "error".to_string();
            rec.reason = why;
        }
    }
    tracing::info!(%host, port, action = %rec.action, "plain http relay");
    shared.audit.record(rec).await;
}

/// Sends the request upstream with `Connection: close` and copies the response back.
async fn relay(
    wire: &mut Wire<TcpStream>,
    head: &mut RequestHead,
    host: &str,
    port: u16,
    shared: &Shared,
) -> Result<(u64, u64), String> {
    let framing = request_framing(head).map_err(|e| e.to_string())?;
    clean_head(head, false, false);
    head.headers
        .push(("Connection".to_string(), b"close".to_vec()));
    let up = shared
        .dialer
        .dial(host, port)
        .await
        .map_err(|e| e.to_string())?;
    let mut up = Wire::new(up, Vec::new());
    up.write_all(&head_bytes(head))
        .await
        .map_err(|e| e.to_string())?;
    let mut decoder = BodyDecoder::new(
        framing,
        &Limits {
            body_buffer: 0,
            ..Limits::default()
        },
    );
    let sent = stream_body(
        wire,
        &mut up.io,
        &mut decoder,
        &mut Sha256::new(),
        shared.timeouts.idle,
    )
    .await
    .map_err(|e| e.to_string())?;
    let received = tokio::io::copy(&mut up.io, &mut wire.io)
        .await
        .map_err(|e| e.to_string())?;
    let _ = wire.io.shutdown().await;
    Ok((sent.bytes, received))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities() {
        assert_eq!(
            parse_authority("API.test:443"),
            Some(("api.test".into(), 443))
        );
        assert_eq!(parse_authority("[::1]:8443"), Some(("::1".into(), 8443)));
        assert_eq!(parse_authority("nohost"), None);
        assert_eq!(parse_authority(":443"), None);
        assert_eq!(
            http_authority("http://a.test/x"),
            Some(("a.test".into(), 80))
        );
        assert_eq!(
            http_authority("http://a.test:8080"),
            Some(("a.test".into(), 8080))
        );
        assert_eq!(
            http_authority("http://u:p@a.test:81/"),
            Some(("a.test".into(), 81))
        );
    }
}
