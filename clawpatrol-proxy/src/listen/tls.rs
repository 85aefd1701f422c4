//! The TLS dispatcher: peek the ClientHello, then intercept, splice or close
//! (reference §9.3 items 1–7).

use std::net::SocketAddr;
use std::sync::Arc;

use clawpatrol_core::config::model::UnknownHost;
use clawpatrol_core::facts::Family;
use clawpatrol_protocols::tls::{peek_client_hello, Peek, MAX_CLIENT_HELLO};
use tokio::io::AsyncReadExt;
use tokio_rustls::TlsAcceptor;

use super::splice::splice;
use crate::http::conn::{self, ConnCtx};
use crate::http::io::{Io, Prefixed};
use crate::runtime::{claiming_endpoint, endpoint, Shared};

/// Where the agent's TLS flow was headed, as far as the listener knows.
#[derive(Debug, Clone)]
pub struct Destination {
    /// The CONNECT host (proxy mode); transparent mode knows only the SNI.
    pub host: Option<String>,
    /// The destination port.
    pub port: u16,
}

/// Dispatches one agent TLS flow.
pub async fn dispatch<S: Io + 'static>(
    mut stream: S,
    pending: Vec<u8>,
    peer: SocketAddr,
    profile: Option<String>,
    dest: Destination,
    shared: Arc<Shared>,
) {
    let mut buf = pending;
    let hello = loop {
        match peek_client_hello(&buf) {
            Ok(Peek::Complete(h)) => break h,
            Ok(Peek::NeedMore) if buf.len() < MAX_CLIENT_HELLO + 5 * 8 => {}
            Ok(Peek::NeedMore) => {
                tracing::info!(%peer, "client hello too large; closing");
                return;
            }
            Err(e) => {
                tracing::info!(%peer, error = %e, "not a tls client hello; closing");
                return;
            }
        }
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout(shared.timeouts.handshake, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => {
                tracing::info!(%peer, "client hello timed out; closing");
                return;
            }
        }
    };
    let sni = hello
        .server_name
        .map(|s| s.trim_end_matches('.').to_ascii_lowercase());
    // The name that is checked must be the name that is dialled: a CONNECT to one host with
    // the SNI of another would otherwise be decided (or spliced) under the wrong name.
    if let (Some(s), Some(h)) = (&sni, &dest.host) {
        if !s.eq_ignore_ascii_case(h.trim_end_matches('.')) {
            tracing::info!(%peer, sni = %s, connect = %h, "tls server name differs from the CONNECT host; closing");
            return;
        }
    }
    let Some(host) = sni.or_else(|| dest.host.clone().map(|h| h.to_ascii_lowercase())) else {
        tracing::info!(%peer, "tls flow without server name or destination host; closing");
        return;
    };
    let policy = shared.policy.load_full();
    let claimed = match claiming_endpoint(&policy, &host, dest.port, profile.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(%host, error = %e, "endpoint resolution failed; closing");
            return;
        }
    };
    let family = claimed
        .as_deref()
        .and_then(|c| endpoint(&policy, c))
        .map(|e| e.family);
    drop(policy);
    match family {
        Some(Family::Http | Family::K8s) => {
            let config = match shared.leaves.server_config(&host) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(%host, error = %e, "cannot mint a leaf certificate; closing");
                    return;
                }
            };
            let acceptor = TlsAcceptor::from(config);
            let accepted = tokio::time::timeout(
                shared.timeouts.handshake,
                acceptor.accept(Prefixed::new(buf, stream)),
            )
            .await;
            match accepted {
                Ok(Ok(tls)) => {
                    let ctx = ConnCtx {
                        peer,
                        profile,
                        host,
                        port: dest.port,
                    };
                    conn::serve(tls, ctx, shared).await;
                }
                Ok(Err(e)) => {
                    tracing::info!(%peer, %host, error = %e, "agent tls handshake failed")
                }
                Err(_) => tracing::info!(%peer, %host, "agent tls handshake timed out"),
            }
        }
        Some(_) => {
            let target = dest.host.clone().unwrap_or_else(|| host.clone());
            splice(stream, buf, &target, dest.port, peer, profile, shared).await;
        }
        None => {
            if Shared::unknown_host(&shared.policy.load()) == UnknownHost::Deny {
                tracing::info!(%peer, %host, "unknown host denied (defaults.unknown_host = deny)");
                return;
            }
            let target = dest.host.clone().unwrap_or_else(|| host.clone());
            splice(stream, buf, &target, dest.port, peer, profile, shared).await;
        }
    }
}
