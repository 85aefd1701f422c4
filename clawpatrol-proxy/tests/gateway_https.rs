//! The HTTPS gateway end to end with real components: curl (proxy and transparent mode),
//! a real HTTPS upstream with its own CA, the audit CLI, and hot reload.

mod support;

use std::path::Path;
use std::process::Command;

use support::*;

const SECRET: &str = "s3cr3t-real-token-7f3a9c";
const SLACK_SECRET: &str = "xoxb-real-slack-secret-55e1";

fn policy(ca_pem: &str, extra_rules: &str) -> String {
    format!(
        r#"schema_version = 1

endpoint "https" "api" {{
  hosts   = ["api.test"]
  ca_cert = <<EOT
{ca}EOT
}}

endpoint "https" "chat" {{
  hosts   = ["chat.test"]
  ca_cert = <<EOT
{ca}EOT
}}

credential "bearer_token" "api-token" {{
  endpoint    = https.api
  placeholder = "placeholder-token"
}}

credential "bearer_token" "unset-token" {{
  endpoint    = https.api
  placeholder = "placeholder-unset"
}}

credential "slack_tokens" "slack" {{
  endpoint = https.chat
}}

profile "dev" {{
  credentials = [bearer_token.api-token, bearer_token.unset-token, slack_tokens.slack]
}}

rule "no-deletes" {{
  endpoint  = https.api
  condition = "http.method == 'DELETE'"
  verdict   = "deny"
  reason    = "deletes are not allowed"
}}

rule "guarded-upload" {{
  endpoint  = https.api
  condition = "http.path == '/guarded' && http.body.contains('forbidden-word')"
  verdict   = "deny"
  reason    = "the body carries a forbidden word"
}}
{extra_rules}"#,
        ca = ca_pem
    )
}

struct Setup {
    dir: tempfile::TempDir,
    test_ca: TestCa,
    upstream: Upstream,
    gateway: Gateway,
    config: std::path::PathBuf,
}

fn setup(extra_rules: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let test_ca = TestCa::new();
    let upstream = Upstream::start(test_ca.server_config(&["api.test", "chat.test", "other.test"]));
    let config = dir.path().join("policy.hcl");
    std::fs::write(&config, policy(&test_ca.pem, extra_rules)).unwrap();
    let up = upstream.addr;
    let connect_to: Vec<String> = ["api.test", "chat.test", "other.test"]
        .iter()
        .flat_map(|h| ["--connect-to".to_string(), format!("{h}:443:{up}")])
        .collect();
    let gateway = Gateway::start(
        &config,
        dir.path(),
        &[
            ("CLAWPATROL_SECRET_API_TOKEN", SECRET),
            ("CLAWPATROL_SECRET_SLACK", SLACK_SECRET),
        ],
        &connect_to,
    );
    Setup {
        dir,
        test_ca,
        upstream,
        gateway,
        config,
    }
}

fn proxy_url(g: &Gateway) -> String {
    format!("http://{}", g.proxy)
}

fn via_proxy(s: &Setup, extra: &[&str]) -> std::process::Output {
    let proxy = proxy_url(&s.gateway);
    let ca = s.gateway.ca.to_str().unwrap().to_string();
    let mut args = vec![
        "--suppress-connect-headers",
        "-x",
        proxy.as_str(),
        "--cacert",
        ca.as_str(),
    ];
    args.extend_from_slice(extra);
    curl(&args)
}

fn run_bin(args: &[&str]) -> std::process::Output {
    Command::new(bin()).args(args).output().unwrap()
}

#[test]
fn proxy_mode_end_to_end() {
    let mut s = setup("");
    let mut outputs = String::new();

    // Allowed: the placeholder is replaced by the real secret on the upstream side only.
    let o = via_proxy(
        &s,
        &[
            "-i",
            "-H",
            "Authorization: Bearer placeholder-token",
            "https://api.test/hello",
        ],
    );
    let out = text(&o);
    outputs += &out;
    assert!(
        out.starts_with("HTTP/1.1 200"),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.ends_with("hello from upstream /hello"), "{out}");
    let seen = s.upstream.last();
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );

    // Denied: the exact 403 of reference §2.11, and the upstream never sees it.
    let before = s.upstream.seen().len();
    let o = via_proxy(
        &s,
        &[
            "-i",
            "-X",
            "DELETE",
            "-H",
            "Authorization: Bearer placeholder-token",
            "https://api.test/repos/x",
        ],
    );
    let out = text(&o);
    outputs += &out;
    assert_eq!(
        out,
        "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 23\r\nConnection: close\r\n\r\ndeletes are not allowed"
    );
    assert_eq!(s.upstream.seen().len(), before);

    // A credential without a secret fails closed with a reason naming it.
    let o = via_proxy(
        &s,
        &[
            "-H",
            "Authorization: Bearer placeholder-unset",
            "https://api.test/x",
        ],
    );
    let out = text(&o);
    outputs += &out;
    assert_eq!(
        out,
        "credential `unset-token` has no secret configured (set CLAWPATROL_SECRET_UNSET_TOKEN)"
    );
    assert_eq!(s.upstream.seen().len(), before);

    // Domain fronting: a Host header naming another site than the TLS server name is
    // refused before any credential is injected.
    let o = via_proxy(
        &s,
        &[
            "-i",
            "-H",
            "Host: evil.test",
            "-H",
            "Authorization: Bearer placeholder-token",
            "https://api.test/x",
        ],
    );
    assert!(text(&o).starts_with("HTTP/1.1 400"), "{}", text(&o));
    assert_eq!(s.upstream.seen().len(), before);

    // Credential-bearing response headers are stripped; others pass.
    let o = via_proxy(
        &s,
        &[
            "-i",
            "-H",
            "Authorization: Bearer placeholder-token",
            "https://api.test/cookie",
        ],
    );
    let out = text(&o).to_ascii_lowercase();
    assert!(out.contains("x-upstream: yes"), "{out}");
    for h in ["set-cookie", "www-authenticate", "alt-svc"] {
        assert!(!out.contains(h), "{h} leaked: {out}");
    }

    // A body rule: small bodies are inspected.
    let o = via_proxy(
        &s,
        &[
            "-H",
            "Authorization: Bearer placeholder-token",
            "--data",
            "has forbidden-word",
            "https://api.test/guarded",
        ],
    );
    assert_eq!(text(&o), "the body carries a forbidden word");
    let o = via_proxy(
        &s,
        &[
            "-H",
            "Authorization: Bearer placeholder-token",
            "--data",
            "harmless",
            "https://api.test/guarded",
        ],
    );
    assert_eq!(text(&o), "hello from upstream /guarded");

    // A 3 MiB body (over the 1 MiB inspection cap), chunked, with Expect: 100-continue,
    // passes byte-exact when no rule needs the body.
    let big: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let big_path = s.dir.path().join("big.bin");
    std::fs::write(&big_path, &big).unwrap();
    let data = format!("@{}", big_path.display());
    let o = via_proxy(
        &s,
        &[
            "-H",
            "Authorization: Bearer placeholder-token",
            "-H",
            "Transfer-Encoding: chunked",
            "-H",
            "Expect: 100-continue",
            "--data-binary",
            &data,
            "https://api.test/sha256",
        ],
    );
    use sha2::Digest;
    assert_eq!(text(&o), hex::encode(sha2::Sha256::digest(&big)));
    // The same body to the guarded path: the rule cannot see the whole body → deny.
    let o = via_proxy(
        &s,
        &[
            "-H",
            "Authorization: Bearer placeholder-token",
            "--data-binary",
            &data,
            "https://api.test/guarded",
        ],
    );
    assert!(text(&o).contains("guarded-upload"), "{}", text(&o));

    // Slack: the bot token from CLAWPATROL_SECRET_SLACK.
    let o = via_proxy(&s, &["https://chat.test/api/conversations.list"]);
    assert_eq!(text(&o), "hello from upstream /api/conversations.list");
    assert_eq!(
        s.upstream.last().header("authorization"),
        Some(format!("Bearer {SLACK_SECRET}").as_str())
    );

    // Unknown host: spliced unchanged — the agent sees the upstream's own certificate.
    let test_ca_path = s.dir.path().join("test-ca.pem");
    std::fs::write(&test_ca_path, &s.test_ca.pem).unwrap();
    let proxy = proxy_url(&s.gateway);
    let o = curl(&[
        "-x",
        &proxy,
        "--cacert",
        test_ca_path.to_str().unwrap(),
        "https://other.test/spliced",
    ]);
    assert_eq!(
        text(&o),
        "hello from upstream /spliced",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // Malformed and oversized requests inside the intercepted connection.
    let ca_pem = std::fs::read_to_string(&s.gateway.ca).unwrap();
    let mut c = Client::connect(s.gateway.proxy, "api.test", &ca_pem);
    c.send_raw(b"GET / HTTP/1.1\r\nHost: api.test\r\nBad Header\r\n\r\n");
    let (status, _, _) = c.read_response();
    assert_eq!(status, 400);
    assert!(c.is_closed());
    let mut c = Client::connect(s.gateway.proxy, "api.test", &ca_pem);
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: api.test\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    c.send_raw(huge.as_bytes());
    let (status, _, _) = c.read_response();
    assert_eq!(status, 431);

    // Shut down (flushes the audit queue), then inspect what was persisted.
    assert!(
        s.gateway.stop(),
        "gateway did not exit cleanly:\n{}",
        s.gateway.log_text()
    );
    let log = s.gateway.log_text();
    for secret in [SECRET, SLACK_SECRET] {
        assert!(!outputs.contains(secret));
        assert!(!log.contains(secret), "secret in the log");
        let hits = files_containing(s.dir.path().join("state").as_path(), secret.as_bytes());
        assert!(hits.is_empty(), "secret persisted in {hits:?}");
    }
    audit_checks(&s);
}

fn audit_checks(s: &Setup) {
    let state = s.gateway.state.to_str().unwrap();
    let o = run_bin(&["audit", "verify", "--state-dir", state]);
    assert!(
        o.status.success(),
        "{}{}",
        text(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    let o = run_bin(&["audit", "tail", "-n", "100", "--json", "--state-dir", state]);
    let rows: Vec<serde_json::Value> = text(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(rows.len() >= 10, "{} rows", rows.len());
    let denied = rows
        .iter()
        .find(|r| r["rule"] == "no-deletes")
        .expect("deny row");
    assert_eq!(denied["action"], "deny");
    assert_eq!(denied["credential"], "api-token");
    let allowed = rows
        .iter()
        .find(|r| r["path"] == "/hello")
        .expect("allow row");
    assert_eq!(allowed["req_headers"]["Authorization"], "***");
    assert!(rows
        .iter()
        .any(|r| r["mode"] == "splice" && r["host"] == "other.test"));

    // Exported fixtures replay green, credential included.
    let fixtures = s.dir.path().join("exported");
    let o = run_bin(&[
        "audit",
        "export",
        "--fixtures",
        fixtures.to_str().unwrap(),
        "--state-dir",
        state,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run_bin(&[
        "test",
        s.config.to_str().unwrap(),
        fixtures.to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "{}{}",
        text(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(files_containing(&fixtures, SECRET.as_bytes()).is_empty());

    // Tampering is detected.
    tamper(&s.gateway.state.join("clawpatrol.db"));
    let o = run_bin(&["audit", "verify", "--state-dir", state]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

fn tamper(db: &Path) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute(
        "UPDATE actions SET reason = 'nothing to see' WHERE id = 2",
        [],
    )
    .unwrap();
}

#[test]
fn transparent_mode() {
    let s = setup("");
    let ca = s.gateway.ca.to_str().unwrap();
    let to = format!("api.test:443:127.0.0.1:{}", s.gateway.transparent.port());
    let o = curl(&[
        "--connect-to",
        &to,
        "--cacert",
        ca,
        "-H",
        "Authorization: Bearer placeholder-token",
        "https://api.test/t",
    ]);
    assert_eq!(
        text(&o),
        "hello from upstream /t",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        s.upstream.last().header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    let o = curl(&[
        "-i",
        "--connect-to",
        &to,
        "--cacert",
        ca,
        "-X",
        "DELETE",
        "https://api.test/t",
    ]);
    assert!(
        text(&o).starts_with("HTTP/1.1 403 Forbidden"),
        "{}",
        text(&o)
    );
    assert!(text(&o).ends_with("deletes are not allowed"));
}

#[test]
fn reload_flips_a_verdict_on_an_open_keepalive_connection() {
    let s = setup("");
    let ca_pem = std::fs::read_to_string(&s.gateway.ca).unwrap();
    let mut c = Client::connect(s.gateway.proxy, "api.test", &ca_pem);
    let auth = "Bearer placeholder-token";
    let (status, _, body) = c.get("api.test", "/flip", auth);
    assert_eq!((status, body.as_str()), (200, "hello from upstream /flip"));
    let connections = *s.upstream.connections.lock().unwrap();

    // A valid edit: the next request on the same connection sees the new rule.
    let deny_flip = r#"
rule "no-flip" {
  endpoint  = https.api
  condition = "http.path == '/flip'"
  verdict   = "deny"
  reason    = "flip is now denied"
}
"#;
    std::fs::write(&s.config, policy(&s.test_ca.pem, deny_flip)).unwrap();
    s.gateway.wait_log("config reloaded", 1);
    let (status, _, body) = c.get("api.test", "/other", auth);
    assert_eq!((status, body.as_str()), (200, "hello from upstream /other"));
    assert_eq!(
        *s.upstream.connections.lock().unwrap(),
        connections,
        "keep-alive was not reused"
    );
    let (status, _, body) = c.get("api.test", "/flip", auth);
    assert_eq!((status, body.as_str()), (403, "flip is now denied"));

    // An invalid edit is refused; the policy in force stays.
    std::fs::write(&s.config, "rule \"broken\" {\n  condition = \n").unwrap();
    s.gateway.wait_log("config reload refused", 1);
    assert!(
        s.gateway.log_text().contains("policy.hcl:"),
        "{}",
        s.gateway.log_text()
    );
    let mut c = Client::connect(s.gateway.proxy, "api.test", &ca_pem);
    let (status, _, body) = c.get("api.test", "/flip", auth);
    assert_eq!((status, body.as_str()), (403, "flip is now denied"));

    // An emptied file (what a truncating write looks like half-way) is a valid config with
    // no endpoints; it is refused, so api.test stays intercepted and decided.
    std::fs::write(&s.config, "\n").unwrap();
    s.gateway.wait_log("the config is empty", 1);
    let mut c = Client::connect(s.gateway.proxy, "api.test", &ca_pem);
    let (status, _, body) = c.get("api.test", "/flip", auth);
    assert_eq!((status, body.as_str()), (403, "flip is now denied"));
    assert_eq!(
        s.gateway.log_text().matches("config reloaded").count(),
        1,
        "{}",
        s.gateway.log_text()
    );

    // Restoring the original config by SIGHUP-free file watch allows it again.
    std::fs::write(&s.config, policy(&s.test_ca.pem, "")).unwrap();
    s.gateway.wait_log("config reloaded", 2);
    let mut c = Client::connect(s.gateway.proxy, "api.test", &ca_pem);
    let (status, _, _) = c.get("api.test", "/flip", auth);
    assert_eq!(status, 200);
}

/// A gateway in front of `api.test` with an audit queue of `queue` records whose audit
/// database's write lock the returned connection holds (the writer stalls); with the temp
/// dir and upstream that must outlive it, and the database path.
fn stalled_audit_gateway(
    queue: usize,
) -> (
    tempfile::TempDir,
    Upstream,
    Gateway,
    std::path::PathBuf,
    rusqlite::Connection,
) {
    let dir = tempfile::tempdir().unwrap();
    let test_ca = TestCa::new();
    let upstream = Upstream::start(test_ca.server_config(&["api.test"]));
    let config = dir.path().join("policy.hcl");
    std::fs::write(&config, policy(&test_ca.pem, "")).unwrap();
    let extra = [
        "--connect-to".to_string(),
        format!("api.test:443:{}", upstream.addr),
        "--audit-queue".to_string(),
        queue.to_string(),
    ];
    let gateway = Gateway::start(
        &config,
        dir.path(),
        &[
            ("CLAWPATROL_SECRET_API_TOKEN", SECRET),
            ("CLAWPATROL_SECRET_SLACK", SLACK_SECRET),
        ],
        &extra,
    );
    let db = gateway.state.join("clawpatrol.db");
    let blocker = rusqlite::Connection::open(&db).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    (dir, upstream, gateway, db, blocker)
}

/// Rows of requests already under way when the audit queue fills (many connections
/// finishing at once behind a stalled writer) wait in their connections instead of being
/// dropped.
#[test]
fn rows_that_find_the_audit_queue_full_wait_and_none_is_dropped() {
    const CLIENTS: usize = 12;
    let (_dir, _upstream, mut gateway, db, blocker) = stalled_audit_gateway(4);

    // Every request is read before any row is queued (the upstream answers after 1 s), so
    // the hold-back before reading cannot stop them: their rows arrive at a queue of 4.
    let ca_pem = std::fs::read_to_string(&gateway.ca).unwrap();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (proxy, ca_pem) = (gateway.proxy, ca_pem.clone());
            std::thread::spawn(move || {
                let mut c = Client::connect(proxy, "api.test", &ca_pem);
                let (status, _, _) = c.get("api.test", "/slow", "Bearer placeholder-token");
                assert_eq!(status, 200);
            })
        })
        .collect();
    gateway.wait_log("audit writer is behind", 1);
    blocker.execute_batch("COMMIT").unwrap();
    drop(blocker);
    for c in clients {
        c.join().expect("a client");
    }
    assert!(gateway.stop());
    let log = gateway.log_text();
    assert!(!log.contains("dropped"), "{log}");
    let rows: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM actions WHERE path = '/slow' AND action = 'allow'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, CLIENTS as i64);
}

/// A stalled audit writer holds requests back instead of losing their rows (as for Postgres
/// statements): with the audit database locked, a keep-alive connection is not read once
/// half of the (small) queue is waiting, and goes on when the lock is released; every
/// request has its row and none was dropped.
#[test]
fn requests_wait_for_a_stalled_audit_writer_and_every_one_is_audited() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    const REQUESTS: usize = 60;
    let (_dir, _upstream, mut gateway, db, blocker) = stalled_audit_gateway(16);

    let done = Arc::new(AtomicUsize::new(0));
    let counter = done.clone();
    let (proxy, ca_pem) = (gateway.proxy, std::fs::read_to_string(&gateway.ca).unwrap());
    let client = std::thread::spawn(move || {
        let mut c = Client::connect(proxy, "api.test", &ca_pem);
        for i in 0..REQUESTS {
            let (status, _, _) = c.get(
                "api.test",
                &format!("/held/{i}"),
                "Bearer placeholder-token",
            );
            assert_eq!(status, 200);
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    gateway.wait_log("audit writer is behind", 1);
    assert_held_back(&done, REQUESTS);

    blocker.execute_batch("COMMIT").unwrap();
    drop(blocker);
    client
        .join()
        .expect("the requests after the writer caught up");
    assert!(gateway.stop());
    let log = gateway.log_text();
    assert!(!log.contains("dropped"), "{log}");
    assert!(
        log.contains("connections waited for the audit writer"),
        "{log}"
    );
    let rows: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM actions WHERE path LIKE '/held/%' AND action = 'allow'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, REQUESTS as i64);
}
