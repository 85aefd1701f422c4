//! The generic webhook notifier for human approvals (our extension): a `human_approver` with
//! `webhook_url` POSTs each pending approval as JSON, signed with HMAC-SHA256 over
//! `<timestamp>.<body>` keyed by the primary secret of the approver's `credential`
//! (headers `X-Clawpatrol-Timestamp` and `X-Clawpatrol-Signature: sha256=<hex>`). The
//! receiver decides through the management API, or by POSTing
//! `{"id":<id>,"decision":"approve"|"deny","by":"…","reason":"…"}` to the `callback` URL in
//! the payload, signed the same way.

use std::time::Duration;

use serde_json::{json, Value};

use super::pending::PendingView;
use crate::http::client;
use crate::runtime::Shared;

/// Largest accepted age of a signed callback.
pub const MAX_AGE_SECS: u64 = 300;

/// `sha256=<hex HMAC-SHA256(key, "<ts>.<body>")>`.
pub fn signature(key: &[u8], ts: u64, body: &[u8]) -> String {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut msg = format!("{ts}.").into_bytes();
    msg.extend_from_slice(body);
    format!(
        "sha256={}",
        hex::encode(ring::hmac::sign(&k, &msg).as_ref())
    )
}

/// Checks a callback's timestamp (within five minutes of `now`) and signature.
pub fn verify(key: &[u8], ts: &str, sig: &str, body: &[u8], now: u64) -> Result<(), &'static str> {
    let ts: u64 = ts.trim().parse().map_err(|_| "bad timestamp")?;
    if now.abs_diff(ts) > MAX_AGE_SECS {
        return Err("stale timestamp");
    }
    let hex_sig = sig
        .trim()
        .strip_prefix("sha256=")
        .ok_or("not a sha256 signature")?;
    let raw = hex::decode(hex_sig).map_err(|_| "not hex")?;
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut msg = format!("{ts}.").into_bytes();
    msg.extend_from_slice(body);
    ring::hmac::verify(&k, &msg, &raw).map_err(|_| "mismatch")
}

/// POSTs the pending approval to `url` (three attempts on 429/5xx); errors are logged, the
/// approval stays decidable through the management API.
pub async fn notify(
    shared: &Shared,
    url: &str,
    key: &[u8],
    view: &PendingView,
    callback: Option<String>,
) {
    let ctx = match client::ClientCtx::from_shared(shared) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(id = view.id, error = %e, "approval webhook failed");
            return;
        }
    };
    let body = json!({
        "event": "approval.pending",
        "approval": view,
        "callback": callback,
    })
    .to_string();
    let now = u64::try_from(crate::runtime::now_ns() / 1_000_000_000).unwrap_or(0);
    let headers = [
        ("Content-Type", "application/json".to_string()),
        ("X-Clawpatrol-Timestamp", now.to_string()),
        (
            "X-Clawpatrol-Signature",
            signature(key, now, body.as_bytes()),
        ),
    ];
    for attempt in 0..3u64 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500 * attempt)).await;
        }
        match client::send(
            &ctx,
            "POST",
            url,
            &headers,
            body.as_bytes(),
            Duration::from_secs(5),
            64 * 1024,
        )
        .await
        {
            Ok(r) if (200..300).contains(&r.status) => return,
            Ok(r) if r.status == 429 || r.status >= 500 => {
                tracing::warn!(
                    id = view.id,
                    status = r.status,
                    "approval webhook answered with an error; retrying"
                )
            }
            Ok(r) => {
                tracing::warn!(
                    id = view.id,
                    status = r.status,
                    "approval webhook refused the notification"
                );
                return;
            }
            Err(e) => tracing::warn!(id = view.id, error = %e, "approval webhook failed"),
        }
    }
}

/// A decision from a signed callback body for pending approval `id` (the body must name the
/// same `id`, so a captured callback cannot be replayed against another approval).
pub fn parse_callback(body: &[u8], id: u64) -> Result<(bool, String, String), String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("invalid json body: {e}"))?;
    if v["id"].as_u64() != Some(id) {
        return Err(format!(
            "the body's `id` must be {id}, the approval in the url"
        ));
    }
    let allow = match v["decision"].as_str() {
        Some("approve") => true,
        Some("deny") => false,
        _ => return Err("`decision` must be \"approve\" or \"deny\"".to_string()),
    };
    let by = v["by"].as_str().unwrap_or("webhook").to_string();
    let reason = v["reason"].as_str().unwrap_or("").to_string();
    Ok((allow, by, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_round_trip_and_expire() {
        let sig = signature(b"k", 100, b"{}");
        assert!(verify(b"k", "100", &sig, b"{}", 150).is_ok());
        assert_eq!(
            verify(b"k", "100", &sig, b"{}", 500),
            Err("stale timestamp")
        );
        assert_eq!(verify(b"x", "100", &sig, b"{}", 100), Err("mismatch"));
        assert_eq!(verify(b"k", "100", &sig, b"{ }", 100), Err("mismatch"));
    }

    #[test]
    fn callbacks() {
        assert_eq!(
            parse_callback(br#"{"id":3,"decision":"deny","by":"ci","reason":"no"}"#, 3).unwrap(),
            (false, "ci".into(), "no".into())
        );
        assert!(parse_callback(br#"{"id":3,"decision":"deny"}"#, 4).is_err());
        assert!(parse_callback(br#"{"decision":"deny"}"#, 3).is_err());
        assert!(parse_callback(br#"{"id":3,"decision":"maybe"}"#, 3).is_err());
    }
}
