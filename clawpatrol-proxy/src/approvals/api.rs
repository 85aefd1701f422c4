//! The management API on loopback: list pending approvals and decide them. Every request
//! carries `Authorization: Bearer <token>` (the token in `<state_dir>/management-token`).
//!
//! - `GET /api/approvals` → `{"pending":[…]}`
//! - `GET /api/approvals/<id>` → the pending entry
//! - `POST /api/approvals/<id>/approve` and `…/deny`, optional JSON body
//!   `{"reason": "...", "by": "..."}` → `{"ok":true,"state":"approved"|"denied"}`
//! - `POST /api/cred/<credential>/interactive`: Slack's interactivity webhook, authenticated
//!   by Slack's request signature instead of the bearer token (reference §5.3)

use std::net::SocketAddr;
use std::sync::Arc;

use clawpatrol_protocols::http::{request_framing, BodyDecoder, BodyFraming, Limits};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use super::pending::HumanDecision;
use super::{slack, webhook};
use crate::http::io::Wire;
use crate::runtime::Shared;

/// Handles a Slack interactivity request (public route, authenticated by Slack's signature).
fn slack_interactive(
    shared: &Shared,
    credential: &str,
    head: &clawpatrol_protocols::http::RequestHead,
    body: &[u8],
) -> Vec<u8> {
    let header = |name: &str| {
        head.header_values(name)
            .next()
            .and_then(|v| std::str::from_utf8(v).ok())
            .unwrap_or("")
            .to_string()
    };
    let now = u64::try_from(crate::runtime::now_ns() / 1_000_000_000).unwrap_or(0);
    let checked = slack::signing_secret(shared, credential).and_then(|secret| {
        slack::verify_signature(
            &secret,
            &header("x-slack-request-timestamp"),
            &header("x-slack-signature"),
            body,
            now,
        )
    });
    if let Err(e) = checked {
        tracing::warn!(credential, error = %e, "slack interactivity request refused");
        return error(401, "Unauthorized", &e.to_string());
    }
    let click = match slack::parse_payload(body) {
        Ok(p) => p,
        Err(e) => return error(400, "Bad Request", &e.to_string()),
    };
    // The button must sit on the message the gateway posted for this approval, through this
    // credential: a card forged by anyone with the bot token decides nothing.
    if !shared
        .approvals
        .slack
        .matches(click.id, credential, click.message_ts.as_deref())
    {
        let e = slack::InteractiveError::Foreign(click.id);
        tracing::warn!(credential, error = %e, "slack interactivity request refused");
        return error(403, "Forbidden", &e.to_string());
    }
    let (id, allow, user) = (click.id, click.allow, click.user);
    let by = format!("slack:{user}");
    match shared.approvals.pending.decide(
        id,
        HumanDecision {
            allow,
            by: by.clone(),
            reason: String::new(),
        },
    ) {
        Ok(_) => tracing::info!(id, allow, by = %by, "approval decided from slack"),
        Err(e) => tracing::info!(id, error = %e, "slack decision on a settled approval"),
    }
    json_response(200, "OK", &serde_json::json!({}))
}

/// Handles a signed webhook callback deciding pending approval `id`.
fn webhook_callback(
    shared: &Shared,
    id: u64,
    head: &clawpatrol_protocols::http::RequestHead,
    body: &[u8],
) -> Vec<u8> {
    let header = |name: &str| {
        head.header_values(name)
            .next()
            .and_then(|v| std::str::from_utf8(v).ok())
            .unwrap_or("")
            .to_string()
    };
    let Some(view) = shared.approvals.pending.get(id) else {
        return error(404, "Not Found", &format!("no pending approval `{id}`"));
    };
    let policy = shared.policy.load();
    let key = view
        .approver
        .split_once('.')
        .and_then(|(k, n)| {
            policy
                .config()
                .approvers
                .iter()
                .find(|a| a.kind == k && a.name == n)
        })
        .and_then(|a| super::chain::webhook_key(shared, &policy, a));
    let Some(key) = key else {
        return error(
            401,
            "Unauthorized",
            "this approval takes no webhook callbacks",
        );
    };
    let now = u64::try_from(crate::runtime::now_ns() / 1_000_000_000).unwrap_or(0);
    if let Err(why) = webhook::verify(
        &key,
        &header("x-clawpatrol-timestamp"),
        &header("x-clawpatrol-signature"),
        body,
        now,
    ) {
        tracing::warn!(id, why, "webhook callback refused");
        return error(401, "Unauthorized", &format!("invalid signature: {why}"));
    }
    let (allow, by, reason) = match webhook::parse_callback(body, id) {
        Ok(d) => d,
        Err(e) => return error(400, "Bad Request", &e),
    };
    let by = format!("webhook:{by}");
    match shared.approvals.pending.decide(
        id,
        HumanDecision {
            allow,
            by: by.clone(),
            reason,
        },
    ) {
        Ok(_) => {
            tracing::info!(id, allow, by = %by, "approval decided by webhook callback");
            let state = if allow { "approved" } else { "denied" };
            json_response(
                200,
                "OK",
                &serde_json::json!({"ok": true, "state": state, "id": id}),
            )
        }
        Err(e) => error(404, "Not Found", &e.to_string()),
    }
}

/// Largest request body the API reads.
const MAX_BODY: usize = 64 * 1024;

/// Serves the API until shutdown.
pub async fn run(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = shared.shutdown.cancelled() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let s = shared.clone();
                tokio::spawn(async move {
                    if let Err(e) = handle(stream, peer, &s).await {
                        tracing::debug!(%peer, error = %e, "management request failed");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "management accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct DecisionBody {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    by: String,
}

fn json_response(status: u16, phrase: &str, body: &serde_json::Value) -> Vec<u8> {
    let text = body.to_string();
    format!(
        "HTTP/1.1 {status} {phrase}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    )
    .into_bytes()
}

fn error(status: u16, phrase: &str, why: &str) -> Vec<u8> {
    json_response(
        status,
        phrase,
        &serde_json::json!({"ok": false, "error": why}),
    )
}

async fn handle(stream: TcpStream, peer: SocketAddr, shared: &Shared) -> std::io::Result<()> {
    let t = shared.timeouts;
    let mut wire = Wire::new(stream, Vec::new());
    let limits = Limits {
        body_buffer: MAX_BODY,
        ..Limits::default()
    };
    let head = match wire.read_request_head(&limits, t.head, t.head).await {
        Ok(Some(h)) => h,
        Ok(None) => return Ok(()),
        Err(e) => {
            return wire
                .write_all(&error(400, "Bad Request", &e.to_string()))
                .await
        }
    };
    let path = head.target.split('?').next().unwrap_or("").to_string();
    let slack_cred = path
        .strip_prefix("/api/cred/")
        .and_then(|r| r.strip_suffix("/interactive"))
        .filter(|n| !n.is_empty() && !n.contains('/'))
        .map(str::to_string);
    let callback_id = path
        .strip_prefix("/api/approvals/")
        .and_then(|r| r.strip_suffix("/callback"))
        .and_then(|n| n.parse::<u64>().ok());
    if slack_cred.is_none() && callback_id.is_none() {
        let token = head
            .header_values("authorization")
            .next()
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or("");
        if !shared.approvals.check_token(token) {
            tracing::info!(%peer, "management request with a wrong or missing token");
            return wire
                .write_all(&error(401, "Unauthorized", "missing or wrong bearer token"))
                .await;
        }
    }
    let body = match request_framing(&head) {
        Ok(BodyFraming::Length(n)) if n as usize > MAX_BODY => {
            return wire
                .write_all(&error(413, "Payload Too Large", "body over 64 KiB"))
                .await
        }
        Ok(framing) => {
            let mut dec = BodyDecoder::new(framing, &limits);
            while !dec.is_done() {
                if wire.buffered().is_empty()
                    && wire
                        .read_more(t.head)
                        .await
                        .map_err(std::io::Error::other)?
                        == 0
                {
                    break;
                }
                let p = dec.feed(wire.buffered()).map_err(std::io::Error::other)?;
                let n = p.consumed;
                wire.consume(n);
                if dec.inspected().truncated() {
                    return wire
                        .write_all(&error(413, "Payload Too Large", "body over 64 KiB"))
                        .await;
                }
            }
            dec.inspected().bytes().to_vec()
        }
        Err(e) => {
            return wire
                .write_all(&error(400, "Bad Request", &e.to_string()))
                .await
        }
    };
    if let Some(id) = callback_id {
        if head.method != "POST" {
            return wire
                .write_all(&error(405, "Method Not Allowed", "POST only"))
                .await;
        }
        let reply = webhook_callback(shared, id, &head, &body);
        return wire.write_all(&reply).await;
    }
    if let Some(cred) = slack_cred {
        if head.method != "POST" {
            return wire
                .write_all(&error(405, "Method Not Allowed", "POST only"))
                .await;
        }
        let reply = slack_interactive(shared, &cred, &head, &body);
        return wire.write_all(&reply).await;
    }
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let pool = &shared.approvals.pending;
    let reply = match (head.method.as_str(), parts.as_slice()) {
        ("GET", ["api", "approvals"]) => {
            json_response(200, "OK", &serde_json::json!({"pending": pool.list()}))
        }
        ("GET", ["api", "approvals", id]) => match id.parse::<u64>().ok().and_then(|i| pool.get(i))
        {
            Some(v) => json_response(200, "OK", &serde_json::to_value(v).unwrap_or_default()),
            None => error(404, "Not Found", &format!("no pending approval `{id}`")),
        },
        ("POST", ["api", "approvals", id, verb @ ("approve" | "deny")]) => {
            let Ok(id) = id.parse::<u64>() else {
                return wire
                    .write_all(&error(400, "Bad Request", "the id must be a number"))
                    .await;
            };
            let parsed: DecisionBody = if body.iter().all(u8::is_ascii_whitespace) {
                DecisionBody::default()
            } else {
                match serde_json::from_slice(&body) {
                    Ok(b) => b,
                    Err(e) => {
                        return wire
                            .write_all(&error(
                                400,
                                "Bad Request",
                                &format!("invalid json body: {e}"),
                            ))
                            .await
                    }
                }
            };
            let allow = *verb == "approve";
            let by = if parsed.by.is_empty() {
                "operator".to_string()
            } else {
                parsed.by
            };
            match pool.decide(
                id,
                HumanDecision {
                    allow,
                    by: by.clone(),
                    reason: parsed.reason,
                },
            ) {
                Ok(view) => {
                    tracing::info!(id, approver = %view.approver, allow, by = %by, "approval decided through the management api");
                    let state = if allow { "approved" } else { "denied" };
                    json_response(
                        200,
                        "OK",
                        &serde_json::json!({"ok": true, "state": state, "id": id}),
                    )
                }
                Err(e) => error(404, "Not Found", &e.to_string()),
            }
        }
        _ => error(404, "Not Found", "unknown route"),
    };
    wire.write_all(&reply).await?;
    wire.io.shutdown().await
}
