//! Splicing unclaimed TLS flows to their real destination unchanged (reference §9.3 item 5).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use clawpatrol_core::audit::AuditRecord;
use tokio::io::AsyncWriteExt;

use crate::http::io::Io;
use crate::runtime::{now_ns, peer_ip, Shared};

/// Dials `host:port`, writes the bytes already read from the agent, and pipes both ways.
pub async fn splice<S: Io>(
    mut client: S,
    prefix: Vec<u8>,
    host: &str,
    port: u16,
    peer: SocketAddr,
    profile: Option<String>,
    shared: Arc<Shared>,
) {
    let started = Instant::now();
    let mut rec = AuditRecord {
        action_id: uuid::Uuid::now_v7().to_string(),
        ts_ns: now_ns(),
        mode: "splice".to_string(),
        agent_ip: peer_ip(&peer),
        profile,
        host: host.to_string(),
        method: "CONNECT".to_string(),
        path: format!("{host}:{port}"),
        extra: serde_json::json!({}),
        ..AuditRecord::default()
    };
    let result = async {
        let mut up = shared
            .dialer
            .dial(host, port)
            .await
            .map_err(|e| e.to_string())?;
        up.write_all(&prefix).await.map_err(|e| e.to_string())?;
        tokio::io::copy_bidirectional(&mut client, &mut up)
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    rec.ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match result {
        Ok((from_agent, to_agent)) => {
            rec.bytes_in = from_agent + prefix.len() as u64;
            rec.bytes_out = to_agent;
            rec.action = "allow".to_string();
        }
        Err(why) => {
            rec.action = "error".to_string();
            rec.reason = why;
        }
    }
    tracing::info!(host, port, action = %rec.action, reason = %rec.reason, "splice");
    shared.audit.record(rec).await;
}
