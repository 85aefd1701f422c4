//! Slack notifications for human approvals: the Block Kit message, the signed
//! interactivity webhook (forged and stale signatures refused), and the message update.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

const BOT: &str = "xoxb-real-bot-token-5d2e";
const SIGNING: &str = "slack-signing-secret-8f1c";

fn sign(ts: u64, body: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SIGNING.as_bytes());
    let msg = format!("v0:{ts}:{body}");
    format!(
        "v0={}",
        hex::encode(ring::hmac::sign(&key, msg.as_bytes()).as_ref())
    )
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn interactive(api: &str, ts: u64, signature: &str, body: &str) -> u16 {
    let url = format!("http://{api}/api/cred/slackbot/interactive");
    let o = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        &format!("X-Slack-Request-Timestamp: {ts}"),
        "-H",
        &format!("X-Slack-Signature: {signature}"),
        "-H",
        "Content-Type: application/x-www-form-urlencoded",
        "--data-binary",
        body,
        &url,
    ]);
    text(&o).parse().unwrap()
}

#[test]
fn slack_buttons_decide_parked_requests() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let upstream = Upstream::start(ca.server_config(&["api.test", "slack.com"]));
    let ca_path = dir.path().join("test-ca.pem");
    std::fs::write(&ca_path, &ca.pem).unwrap();
    let config = dir.path().join("policy.hcl");
    std::fs::write(
        &config,
        open_api_policy(
            &ca.pem,
            r##"credential "slack_tokens" "slackbot" {
}
approver "human_approver" "ops" {
  channel    = "#ops"
  credential = slack_tokens.slackbot
  timeout    = 60
  message    = "{{method}} {{path}} by {{profile}}"
}
rule "merges" {
  endpoint  = https.api
  condition = "http.path.startsWith('/merge')"
  approve   = [human_approver.ops]
  reason    = "merges need a human"
}
"##,
        ),
    )
    .unwrap();
    let up = upstream.addr;
    let mut g = Gateway::start(
        &config,
        dir.path(),
        &[
            ("CLAWPATROL_SECRET_SLACKBOT", BOT),
            ("CLAWPATROL_SECRET_SLACKBOT_SIGNING_SECRET", SIGNING),
        ],
        &[
            "--connect-to".to_string(),
            format!("api.test:443:{up}"),
            "--connect-to".to_string(),
            format!("slack.com:443:{up}"),
            "--extra-ca".to_string(),
            ca_path.to_str().unwrap().to_string(),
        ],
    );
    let api = std::fs::read_to_string(g.state.join("management.addr"))
        .unwrap()
        .trim()
        .to_string();
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
            "PUT",
            "https://api.test/merge/9",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // The approval message reaches Slack with the bot token, the template and the buttons.
    let deadline = Instant::now() + Duration::from_secs(20);
    let post = loop {
        if let Some(p) = upstream
            .seen()
            .into_iter()
            .find(|s| s.target == "/api/chat.postMessage")
        {
            break p;
        }
        assert!(Instant::now() < deadline, "no chat.postMessage");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        post.header("authorization"),
        Some(format!("Bearer {BOT}").as_str())
    );
    let msg: serde_json::Value = serde_json::from_slice(&post.body).unwrap();
    assert_eq!(msg["channel"], "#ops");
    let blocks = msg["blocks"].to_string();
    assert!(blocks.contains("Approve PUT · api.test"), "{blocks}");
    assert!(blocks.contains("PUT /merge/9 by dev"), "{blocks}");
    assert!(blocks.contains("merges need a human"), "{blocks}");
    let id = msg["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .map(|b| b["elements"][0]["value"].as_str().unwrap().to_string())
        .unwrap();

    let click = |ts: &str| {
        let payload = format!(
            r#"{{"type":"block_actions","user":{{"id":"U1","username":"dana"}},"container":{{"message_ts":"{ts}"}},"actions":[{{"action_id":"approve","value":"{id}"}}]}}"#
        );
        let enc: String = payload.bytes().map(|b| format!("%{b:02X}")).collect();
        format!("payload={enc}")
    };
    // A correctly signed click on a card the gateway did not post decides nothing.
    let forged = click("1699999999.000001");
    let ts = now();
    assert_eq!(interactive(&api, ts, &sign(ts, &forged), &forged), 403);
    let body = click("1700000000.000100");
    // Forged and stale signatures are refused and decide nothing.
    assert_eq!(interactive(&api, now(), "v0=00ff", &body), 401);
    let old = now() - 600;
    assert_eq!(interactive(&api, old, &sign(old, &body), &body), 401);
    assert!(upstream.seen().iter().all(|s| s.target != "/merge/9"));
    // A correctly signed click approves.
    let ts = now();
    assert_eq!(interactive(&api, ts, &sign(ts, &body), &body), 200);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from upstream /merge/9"
    );

    // The message is updated with the outcome.
    let deadline = Instant::now() + Duration::from_secs(20);
    let update = loop {
        if let Some(u) = upstream
            .seen()
            .into_iter()
            .find(|s| s.target == "/api/chat.update")
        {
            break u;
        }
        assert!(Instant::now() < deadline, "no chat.update");
        std::thread::sleep(Duration::from_millis(50));
    };
    let u: serde_json::Value = serde_json::from_slice(&update.body).unwrap();
    assert_eq!(u["ts"], "1700000000.000100");
    assert!(u["text"]
        .as_str()
        .unwrap()
        .contains("approved by slack:dana"));

    assert!(g.stop());
    for secret in [BOT, SIGNING] {
        assert!(files_containing(&g.state, secret.as_bytes()).is_empty());
        assert!(!g.log_text().contains(secret));
    }
    let o = Command::new(bin())
        .args(["audit", "tail", "-n", "10", "--json", "--state-dir"])
        .arg(&g.state)
        .output()
        .unwrap();
    let row = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["path"] == "/merge/9")
        .unwrap();
    assert_eq!(row["action"], "approved");
    assert_eq!(row["approver_by"], "slack:dana");
}
