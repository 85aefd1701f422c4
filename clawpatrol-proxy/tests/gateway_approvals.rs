//! Human approvals through the gateway: curl requests parked by an `approve` rule are
//! released, denied, timed out or cancelled through `clawpatrol approvals`.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

const SECRET: &str = "approval-test-secret-91b2";

fn policy(ca: &str) -> String {
    format!(
        r##"schema_version = 1

endpoint "https" "api" {{
  hosts   = ["api.test"]
  ca_cert = <<EOT
{ca}EOT
}}

credential "bearer_token" "api-token" {{
  endpoint = https.api
}}

profile "dev" {{
  credentials = [bearer_token.api-token]
}}

approver "human_approver" "ops" {{
  channel = "#ops"
  timeout = 60
}}

approver "human_approver" "quick" {{
  channel = "#ops"
  timeout = 1
}}

rule "merges-need-a-human" {{
  endpoint  = https.api
  condition = "http.path.startsWith('/merge')"
  approve   = [human_approver.ops]
  reason    = "merges need a human"
}}

rule "hurry" {{
  endpoint  = https.api
  condition = "http.path == '/hurry'"
  approve   = [human_approver.quick]
}}
"##
    )
}

fn approvals(state: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .arg("approvals")
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .output()
        .unwrap()
}

/// Waits until exactly one approval is pending and returns it.
fn one_pending(state: &std::path::Path) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = approvals(state, &["list", "--json"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let list: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
        if list.len() == 1 {
            return list[0].clone();
        }
        assert!(Instant::now() < deadline, "no pending approval: {list:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn humans_release_deny_time_out_and_lose_parked_requests() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let upstream = Upstream::start(ca.server_config(&["api.test"]));
    let config = dir.path().join("policy.hcl");
    std::fs::write(&config, policy(&ca.pem)).unwrap();
    let to = format!("api.test:443:{}", upstream.addr);
    let mut g = Gateway::start(
        &config,
        dir.path(),
        &[("CLAWPATROL_SECRET_API_TOKEN", SECRET)],
        &["--connect-to".to_string(), to],
    );
    let proxy = format!("http://{}", g.proxy);
    let gca = g.ca.to_str().unwrap().to_string();
    let spawn_curl = |args: &[&str]| {
        Command::new("curl")
            .args([
                "-sS",
                "--suppress-connect-headers",
                "-x",
                &proxy,
                "--cacert",
                &gca,
            ])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };

    // Approve: the parked request goes upstream only after the decision.
    let child = spawn_curl(&["-X", "PUT", "https://api.test/merge/1"]);
    let p = one_pending(&g.state);
    assert_eq!(p["approver"], "human_approver.ops");
    assert_eq!(p["endpoint"], "https.api");
    assert_eq!(p["rule"], "merges-need-a-human");
    assert_eq!(p["reason"], "merges need a human");
    assert_eq!(p["profile"], "dev");
    let method = p["action"]["http"]["method"].as_str().unwrap_or_default();
    assert!(method.eq_ignore_ascii_case("put"), "{p}");
    assert!(
        upstream.seen().is_empty(),
        "upstream contacted before approval"
    );
    let id = p["id"].to_string();
    let shown = approvals(&g.state, &["show", &id]);
    assert!(String::from_utf8_lossy(&shown.stdout).contains("/merge/1"));
    let o = approvals(&g.state, &["approve", &id, "--by", "alice"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from upstream /merge/1"
    );
    assert_eq!(
        upstream.last().header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    // A second decision on the same id finds nothing (first decision wins).
    assert_eq!(approvals(&g.state, &["deny", &id]).status.code(), Some(1));

    // Deny: the agent gets the operator's reason; the upstream never sees it.
    let seen = upstream.seen().len();
    let child = spawn_curl(&["-X", "PUT", "https://api.test/merge/2"]);
    let id = one_pending(&g.state)["id"].to_string();
    let o = approvals(
        &g.state,
        &["deny", &id, "--reason", "release freeze", "--by", "bob"],
    );
    assert!(o.status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "release freeze");
    assert_eq!(upstream.seen().len(), seen);

    // Timeout: the exact reason of reference §5.3.
    let o = curl(&[
        "--suppress-connect-headers",
        "-x",
        &proxy,
        "--cacert",
        &gca,
        "https://api.test/hurry",
    ]);
    assert_eq!(
        text(&o),
        "approver \"quick\" timed out after 1s; upstream request was not sent"
    );
    assert_eq!(upstream.seen().len(), seen);

    // The agent disconnects while parked: the approval is withdrawn, nothing goes upstream.
    let o = curl(&[
        "--suppress-connect-headers",
        "-x",
        &proxy,
        "--cacert",
        &gca,
        "--max-time",
        "1",
        "-X",
        "PUT",
        "https://api.test/merge/3",
    ]);
    assert!(!o.status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let o = approvals(&g.state, &["list", "--json"]);
        let list: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
        if list.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "approval not withdrawn: {list:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(upstream.seen().len(), seen);

    // A wrong token is refused by the management API.
    std::fs::write(g.state.join("management-token"), "0".repeat(64)).unwrap();
    assert_eq!(approvals(&g.state, &["list"]).status.code(), Some(2));

    // Audit rows carry the approver, its type and who decided.
    assert!(g.stop());
    let o = Command::new(bin())
        .args(["audit", "tail", "-n", "50", "--json", "--state-dir"])
        .arg(&g.state)
        .output()
        .unwrap();
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |path: &str| rows.iter().find(|r| r["path"] == path).cloned().unwrap();
    let approved = find("/merge/1");
    assert_eq!(approved["action"], "approved");
    assert_eq!(approved["approver"], "human_approver.ops");
    assert_eq!(approved["approver_type"], "human_approver");
    assert_eq!(approved["approver_by"], "alice");
    let denied = find("/merge/2");
    assert_eq!(
        (denied["action"].as_str(), denied["approver_by"].as_str()),
        (Some("denied"), Some("bob"))
    );
    assert_eq!(find("/hurry")["action"], "denied");
    let gone = find("/merge/3");
    assert_eq!(gone["action"], "denied");
    assert!(gone["reason"]
        .as_str()
        .unwrap()
        .contains("closed before approval"));
    // Exported fixtures of approval rows replay as `approve`.
    let fixtures = dir.path().join("fx");
    let o = Command::new(bin())
        .args(["audit", "export", "--fixtures"])
        .arg(&fixtures)
        .arg("--state-dir")
        .arg(&g.state)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new(bin())
        .arg("test")
        .arg(&config)
        .arg(&fixtures)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}
