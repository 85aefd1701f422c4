//! What every connection of a running gateway shares: the live policy, TLS material,
//! secrets, the audit queue, and shutdown tracking.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use clawpatrol_core::config::model::{Endpoint, UnknownHost};
use clawpatrol_core::Policy;
use clawpatrol_protocols::http::Limits;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::audit::AuditHandle;
use crate::http::upstream::Dialer;
use crate::secrets::SecretStore;
use crate::state::StateDir;
use crate::tls::{LeafCache, UpstreamTls};

/// Timeouts of the data path.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Idle time allowed between requests on a keep-alive connection.
    pub idle: Duration,
    /// Time allowed to receive a whole request head once it started.
    pub head: Duration,
    /// Time allowed for the agent's TLS handshake (and ClientHello).
    pub handshake: Duration,
    /// Time allowed for an upstream TCP connect, per address.
    pub connect: Duration,
    /// Time allowed for the upstream response head.
    pub response: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            idle: Duration::from_secs(60),
            head: Duration::from_secs(30),
            handshake: Duration::from_secs(10),
            connect: Duration::from_secs(10),
            response: Duration::from_secs(300),
        }
    }
}

/// State shared by every listener and connection.
pub struct Shared {
    /// The policy in force; a reload swaps it, the next request reads the new one.
    pub policy: ArcSwap<Policy>,
    /// Leaf certificates minted per SNI.
    pub leaves: LeafCache,
    /// Upstream TLS client configurations.
    pub upstream_tls: UpstreamTls,
    /// Secret lookup.
    pub secrets: SecretStore,
    /// The audit queue.
    pub audit: AuditHandle,
    /// The state directory (profile tokens, CA).
    pub state: StateDir,
    /// Upstream resolution and connects.
    pub dialer: Dialer,
    /// Data-path timeouts.
    pub timeouts: Timeouts,
    /// Fired on SIGINT/SIGTERM: stop accepting, finish in-flight requests.
    pub shutdown: CancellationToken,
    /// Tracks connection tasks so shutdown can wait for them.
    pub tracker: TaskTracker,
    /// Extra CA certificates (PEM) trusted for the gateway's own calls (Slack, webhooks).
    pub extra_ca: Option<String>,
    /// Pending approvals and approver state.
    pub approvals: crate::approvals::Approvals,
}

impl Shared {
    /// The HTTP limits of the policy in force (`gateway.limits.body_buffer`).
    pub fn http_limits(policy: &Policy) -> Limits {
        let body_buffer = policy
            .config()
            .gateway
            .as_ref()
            .map_or(Limits::DEFAULT_BODY_BUFFER as u64, |g| g.body_buffer);
        Limits {
            body_buffer: usize::try_from(body_buffer).unwrap_or(usize::MAX),
            ..Limits::default()
        }
    }

    /// `gateway.limits.body_storage` of the policy in force.
    pub fn body_storage(policy: &Policy) -> usize {
        let n = policy
            .config()
            .gateway
            .as_ref()
            .map_or(4096, |g| g.body_storage);
        usize::try_from(n).unwrap_or(usize::MAX)
    }

    /// `defaults.unknown_host` of the policy in force.
    pub fn unknown_host(policy: &Policy) -> UnknownHost {
        policy.config().defaults.unknown_host
    }
}

/// The endpoint declaration named `typed` (`https.github`).
pub fn endpoint<'p>(policy: &'p Policy, typed: &str) -> Option<&'p Endpoint> {
    policy
        .config()
        .endpoints
        .iter()
        .find(|e| e.kind.len() + 1 + e.name.len() == typed.len() && e.typed_name() == typed)
}

/// The endpoint (typed name) claiming `host` (or `host:port`) for `profile`.
pub fn claiming_endpoint(
    policy: &Policy,
    host: &str,
    port: u16,
    profile: Option<&str>,
) -> Result<Option<String>, String> {
    let first = policy
        .endpoint_for_host_in_profile(host, profile)
        .map_err(|e| e.to_string())?;
    if let Some(e) = first {
        return Ok(Some(e.to_string()));
    }
    let with_port = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    policy
        .endpoint_for_host_in_profile(&with_port, profile)
        .map(|e| e.map(str::to_string))
        .map_err(|e| e.to_string())
}

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The peer's IP as text (audit `agent_ip`, action `peer_ip`).
pub fn peer_ip(peer: &SocketAddr) -> String {
    peer.ip().to_string()
}

/// Shared state handle.
pub type SharedRef = Arc<Shared>;
