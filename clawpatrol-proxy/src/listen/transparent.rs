//! The transparent TLS listener: flows redirected here by nftables/iptables are dispatched
//! on their SNI (reference §9.3); the original destination port comes from
//! `SO_ORIGINAL_DST` when the kernel redirected the flow, else 443.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};

use super::identity::identify;
use super::tls::{dispatch, Destination};
use crate::runtime::Shared;

/// Accepts redirected connections until shutdown.
pub async fn run(listener: TcpListener, shared: Arc<Shared>) {
    let local = listener.local_addr().ok();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = shared.shutdown.cancelled() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let s = shared.clone();
                shared.tracker.spawn(handle(stream, peer, local, s));
            }
            Err(e) => {
                tracing::warn!(error = %e, "transparent accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// The pre-redirect destination of a flow, when netfilter rewrote it.
fn original_dst(stream: &TcpStream) -> Option<SocketAddr> {
    let addr = nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::OriginalDst).ok()?;
    let ip = Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr));
    Some(SocketAddr::V4(SocketAddrV4::new(
        ip,
        u16::from_be(addr.sin_port),
    )))
}

async fn handle(
    stream: TcpStream,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    shared: Arc<Shared>,
) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "set_nodelay failed");
    }
    let port = original_dst(&stream)
        .filter(|d| Some(*d) != local)
        .map_or(443, |d| d.port());
    let profile = match identify(&shared.policy.load(), &shared.state, None) {
        Ok(p) => p,
        Err(why) => {
            tracing::info!(%peer, reason = %why, "transparent connection has no profile; closing");
            return;
        }
    };
    dispatch(
        stream,
        Vec::new(),
        peer,
        profile,
        Destination { host: None, port },
        shared,
    )
    .await;
}
