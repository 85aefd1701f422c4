//! The generic approval webhook: a signed POST per pending approval and a signed callback
//! that decides it (forged callbacks refused).

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

const HOOK_KEY: &str = "webhook-signing-key-4a7e";

fn sign(ts: u64, body: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, HOOK_KEY.as_bytes());
    format!(
        "sha256={}",
        hex::encode(ring::hmac::sign(&key, format!("{ts}.{body}").as_bytes()).as_ref())
    )
}

/// A receiver that records (headers, body) of each POST and answers 204.
#[test]
fn webhook_notifies_and_signed_callbacks_decide() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let upstream = Upstream::start(ca.server_config(&["api.test"]));
    let (hook_port, hooks) =
        plain_server(|_| "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n".to_string());
    let config = dir.path().join("policy.hcl");
    std::fs::write(
        &config,
        open_api_policy(
            &ca.pem,
            &format!(
                r##"credential "bearer_token" "hook-key" {{
}}
approver "human_approver" "ci" {{
  channel     = "#deploys"
  credential  = bearer_token.hook-key
  webhook_url = "http://127.0.0.1:{hook_port}/hook"
  timeout     = 60
}}
rule "deploys" {{
  endpoint  = https.api
  condition = "http.path.startsWith('/deploy')"
  approve   = [human_approver.ci]
}}
"##
            ),
        ),
    )
    .unwrap();
    let mut g = Gateway::start(
        &config,
        dir.path(),
        &[("CLAWPATROL_SECRET_HOOK_KEY", HOOK_KEY)],
        &[
            "--connect-to".to_string(),
            format!("api.test:443:{}", upstream.addr),
        ],
    );
    let proxy = format!("http://{}", g.proxy);
    let gca = g.ca.to_str().unwrap().to_string();
    let child = Command::new("curl")
        .args([
            "-sS",
            "--suppress-connect-headers",
            "-x",
            &proxy,
            "--cacert",
            &gca,
            "-X",
            "POST",
            "https://api.test/deploy/7",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let (head, body) = loop {
        if let Some(raw) = hooks.lock().unwrap().first().cloned() {
            let (head, body) = raw.split_once("\r\n\r\n").unwrap();
            break (head.to_string(), body.to_string());
        }
        assert!(Instant::now() < deadline, "no webhook");
        std::thread::sleep(Duration::from_millis(50));
    };
    // The notification is signed with the approver's credential.
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap()
    };
    let ts: u64 = header("x-clawpatrol-timestamp").parse().unwrap();
    assert_eq!(header("x-clawpatrol-signature"), sign(ts, &body));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["event"], "approval.pending");
    assert_eq!(v["approval"]["path"], "/deploy/7");
    let callback = v["callback"].as_str().unwrap().to_string();
    assert!(!body.contains(HOOK_KEY));

    let post = |ts: u64, sig: &str, body: &str| -> u16 {
        let o = curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            &format!("X-Clawpatrol-Timestamp: {ts}"),
            "-H",
            &format!("X-Clawpatrol-Signature: {sig}"),
            "--data-binary",
            body,
            &callback,
        ]);
        text(&o).parse().unwrap()
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let id = v["approval"]["id"].as_u64().unwrap();
    let decision =
        format!(r#"{{"id":{id},"decision":"deny","by":"ci-bot","reason":"pipeline is red"}}"#);
    let decision = decision.as_str();
    // A signed decision naming another approval is refused (no replay across ids).
    let other = format!(r#"{{"id":{},"decision":"approve"}}"#, id + 1);
    assert_eq!(post(now, &sign(now, &other), &other), 400);
    assert_eq!(post(now, "sha256=00", decision), 401);
    assert_eq!(post(now - 900, &sign(now - 900, decision), decision), 401);
    assert_eq!(post(now, &sign(now, decision), decision), 200);
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "pipeline is red");
    assert!(upstream.seen().is_empty());

    assert!(g.stop());
    assert!(files_containing(&g.state, HOOK_KEY.as_bytes()).is_empty());
    let o = Command::new(bin())
        .args(["audit", "tail", "--json", "--state-dir"])
        .arg(&g.state)
        .output()
        .unwrap();
    let row = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["path"] == "/deploy/7")
        .unwrap();
    assert_eq!(
        (row["action"].as_str(), row["approver_by"].as_str()),
        (Some("denied"), Some("webhook:ci-bot"))
    );
}
