//! An `llm_approver` end to end through the gateway: a local server speaking the OpenAI
//! chat-completions wire format judges curl requests; verdicts are cached.

mod support;

use std::process::Command;

use support::*;

const JUDGE_KEY: &str = "judge-key-real-3c91";

/// A chat-completions server: answers `allow` for bodies mentioning `/judge/ok`, else
/// `deny`; records every request.
fn judge_server() -> (u16, Recorded) {
    plain_server(|text| {
        let verdict = if text.contains("/judge/ok") {
            "allow\\nreading public data is fine"
        } else {
            "deny\\nthis writes data"
        };
        let body = format!(
            r#"{{"id":"x","object":"chat.completion","choices":[{{"index":0,"message":{{"role":"assistant","content":"{verdict}"}},"finish_reason":"stop"}}]}}"#
        );
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    })
}

#[test]
fn llm_judge_allows_denies_and_caches() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let upstream = Upstream::start(ca.server_config(&["api.test"]));
    let (judge_port, judged) = judge_server();
    let config = dir.path().join("policy.hcl");
    std::fs::write(
        &config,
        open_api_policy(
            &ca.pem,
            &format!(
                r##"credential "bearer_token" "judge-key" {{
}}
approver "llm_approver" "judge" {{
  model      = "local-judge"
  credential = bearer_token.judge-key
  base_url   = "http://127.0.0.1:{judge_port}/v1"
  policy     = "reads are fine, writes are not"
}}
rule "judged" {{
  endpoint  = https.api
  condition = "http.path.startsWith('/judge')"
  approve   = [llm_approver.judge]
}}
"##
            ),
        ),
    )
    .unwrap();
    let to = format!("api.test:443:{}", upstream.addr);
    let mut g = Gateway::start(
        &config,
        dir.path(),
        &[("CLAWPATROL_SECRET_JUDGE_KEY", JUDGE_KEY)],
        &["--connect-to".to_string(), to],
    );
    let proxy = format!("http://{}", g.proxy);
    let gca = g.ca.to_str().unwrap().to_string();
    let get = |path: &str| {
        let url = format!("https://api.test{path}");
        text(&curl(&[
            "--suppress-connect-headers",
            "-x",
            &proxy,
            "--cacert",
            &gca,
            &url,
        ]))
    };

    assert_eq!(get("/judge/ok"), "hello from upstream /judge/ok");
    let first = judged.lock().unwrap()[0].clone();
    assert!(first.contains(&format!("Bearer {JUDGE_KEY}")), "{first}");
    assert!(first.contains("local-judge"));
    assert!(first.contains("reads are fine, writes are not"));

    // The same request again: the verdict comes from the cache, no second provider call.
    assert_eq!(get("/judge/ok"), "hello from upstream /judge/ok");
    assert_eq!(judged.lock().unwrap().len(), 1);

    // A deny reaches the agent with the judge's reason; the upstream never sees it.
    let seen = upstream.seen().len();
    assert_eq!(get("/judge/write"), "this writes data");
    assert_eq!(upstream.seen().len(), seen);

    assert!(g.stop());
    assert!(files_containing(&g.state, JUDGE_KEY.as_bytes()).is_empty());
    assert!(!g.log_text().contains(JUDGE_KEY));
    let o = Command::new(bin())
        .args(["audit", "tail", "-n", "10", "--json", "--state-dir"])
        .arg(&g.state)
        .output()
        .unwrap();
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ok: Vec<_> = rows.iter().filter(|r| r["path"] == "/judge/ok").collect();
    assert_eq!(ok.len(), 2);
    assert!(ok
        .iter()
        .all(|r| r["action"] == "approved" && r["approver_by"] == "llm:local-judge"));
    assert_eq!(
        ok.iter()
            .filter(|r| r["extra"]["approval_cached"] == true)
            .count(),
        1
    );
    let denied = rows.iter().find(|r| r["path"] == "/judge/write").unwrap();
    assert_eq!(denied["action"], "denied");
    assert_eq!(denied["approver_type"], "llm_approver");
}
