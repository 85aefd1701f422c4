//! `clawpatrol audit {tail,show,export,verify}` and `clawpatrol diff` over an audit database,
//! run as a user would against a database written through `AuditStore`.

use clawpatrol_proxy::audit;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use audit::AuditStore;
use clawpatrol_core::audit::{record_extra, redact_headers, AuditRecord};
use clawpatrol_core::Action;
use serde_json::json;

/// The real secret the gateway injected; it must appear in no output, file or database page.
const SECRET: &str = "ghp_REALsecretVALUE0123456789abcdef";
const BODY_CAP: usize = 64;

const POLICY: &str = r##"
schema_version = 1

endpoint "https" "github" { hosts = ["api.github.com"] }

credential "bearer_token" "github-pat" {
  endpoint    = https.github
  placeholder = "ghp_placeholder_agent"
}

credential "bearer_token" "github-readonly" {
  endpoint    = https.github
  placeholder = "ghp_placeholder_readonly"
}

approver "human_approver" "ops" {
  channel = "#ops"
  timeout = 300
}

profile "default" {
  credentials = [bearer_token.github-pat, bearer_token.github-readonly]
}

rule "readonly-token" {
  endpoint   = https.github
  priority   = 900
  credential = bearer_token.github-readonly
  condition  = "!(http.method in ['GET', 'HEAD'])"
  verdict    = "deny"
  reason     = "the read-only token cannot write"
}

rule "no-repo-delete" {
  endpoint  = https.github
  priority  = 800
  condition = "http.method == 'DELETE' && http.path.matches('^/repos/[^/]+/[^/]+/?$')"
  verdict   = "deny"
  reason    = "repositories are never deleted by agents"
}

rule "merge" {
  endpoint  = https.github
  priority  = 500
  condition = "http.method == 'PUT' && http.path.matches('/pulls/[0-9]+/merge$')"
  approve   = [human_approver.ops]
  reason    = "merges need a human"
}

rule "reads" {
  endpoint  = https.github
  condition = "http.method in ['GET', 'HEAD']"
  verdict   = "allow"
}

rule "pull-requests" {
  endpoint  = https.github
  condition = "http.method == 'POST' && http.path.matches('^/repos/[^/]+/[^/]+/pulls$')"
  verdict   = "allow"
}

rule "default-deny" {
  endpoint = https.github
  priority = -100
  verdict  = "deny"
  reason   = "not allowed"
}
"##;

struct Env {
    dir: PathBuf,
}

impl Env {
    fn new(name: &str) -> Env {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "clawpatrol-audit-cli-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("policy.hcl"), POLICY).expect("write policy");
        Env { dir }
    }

    fn db(&self) -> PathBuf {
        self.dir.join("state").join("clawpatrol.db")
    }

    fn path(&self, rel: &str) -> String {
        self.dir
            .join(rel)
            .to_str()
            .expect("utf-8 temp path")
            .to_string()
    }

    /// Writes the standard rows: 6 rows, one of them (row 4) not exportable.
    fn seed(&self) -> Vec<AuditRecord> {
        let mut store = AuditStore::open(&self.db()).expect("open store");
        let mut rows = rows();
        store.append(&mut rows).expect("append");
        rows
    }

    fn sql(&self, sql: &str) {
        let c = rusqlite::Connection::open(self.db()).expect("open db");
        c.execute_batch(sql).expect("sql");
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

fn record(
    n: i64,
    action: serde_json::Value,
    outcome: &str,
    rule: Option<&str>,
    credential: &str,
) -> AuditRecord {
    let secrets = [SECRET.to_string()];
    let a = Action::from_json(&action).expect("action");
    let (method, path) = match &a.facts {
        clawpatrol_core::Facts::Http(h) => (h.method().to_ascii_uppercase(), h.path().to_string()),
        _ => unreachable!("http rows only"),
    };
    let headers = vec![
        (
            "authorization".to_string(),
            format!("Bearer {SECRET}").into_bytes(),
        ),
        ("x-echo".to_string(), format!("v={SECRET}").into_bytes()),
        ("accept".to_string(), b"application/json".to_vec()),
    ];
    AuditRecord {
        action_id: format!("0190f3c2-7a5e-7c31-9b1e-{n:012}"),
        ts_ns: 1_735_689_600_000_000_000 + n * 3_600_000_000_000,
        mode: "mitm".into(),
        family: "http".into(),
        agent_ip: "127.0.0.1:51234".into(),
        profile: Some("default".into()),
        host: "api.github.com".into(),
        method,
        path,
        status: "200".into(),
        action: outcome.into(),
        reason: String::new(),
        req_headers: redact_headers(&headers, &secrets),
        req_body: clawpatrol_core::audit::body_sample(
            SECRET.as_bytes(),
            SECRET.len() as u64,
            BODY_CAP,
            &secrets,
        ),
        extra: record_extra(&a, &secrets, BODY_CAP),
        endpoint: Some("https.github".into()),
        rule: rule.map(str::to_string),
        credential: Some(credential.into()),
        ..Default::default()
    }
}

fn http(method: &str, path: &str, body: Option<&str>) -> serde_json::Value {
    let mut h = json!({"method": method, "path": path,
                       "headers": {"Authorization": [format!("Bearer {SECRET}")]}});
    if let Some(b) = body {
        h["body"] = json!(b);
    }
    json!({"host": "api.github.com", "http": h})
}

fn rows() -> Vec<AuditRecord> {
    let long_body = format!("{{\"title\":\"{}\"}}", "x".repeat(200));
    let mut rows = vec![
        record(
            1,
            http("GET", "/user", None),
            "allow",
            Some("reads"),
            "github-pat",
        ),
        // Denied only because of the credential pin: replays green only if the credential
        // name is exported.
        record(
            2,
            http(
                "POST",
                "/repos/acme/app/pulls",
                Some(&format!("{{\"t\":\"{SECRET}\"}}")),
            ),
            "deny",
            Some("readonly-token"),
            "github-readonly",
        ),
        record(
            3,
            http("DELETE", "/repos/acme/app", None),
            "deny",
            Some("no-repo-delete"),
            "github-pat",
        ),
        record(4, http("GET", "/zen", None), "error", None, "github-pat"),
        record(
            5,
            http("PUT", "/repos/acme/app/pulls/7/merge", None),
            "approved",
            Some("merge"),
            "github-pat",
        ),
        record(
            6,
            http("POST", "/repos/acme/app/pulls", Some(&long_body)),
            "allow",
            Some("pull-requests"),
            "github-pat",
        ),
    ];
    rows[1].reason = "the read-only token cannot write".into();
    rows[2].reason = "repositories are never deleted by agents".into();
    rows[3].endpoint = None;
    rows[3].reason = "upstream connect failed".into();
    rows[4].approver = Some("ops".into());
    rows[4].approver_type = Some("human_approver".into());
    rows[4].approver_by = Some("alice".into());
    rows
}

fn clawpatrol(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clawpatrol"))
        .args(args)
        .env(
            "HOME",
            std::env::temp_dir().join("clawpatrol-audit-cli-no-home"),
        )
        .output()
        .expect("run clawpatrol")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn assert_no_secret(what: &str, s: &str) {
    assert!(!s.contains(SECRET), "the secret leaked into {what}:\n{s}");
}

fn run_ok(args: &[&str]) -> String {
    let out = clawpatrol(args);
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}\nstdout:\n{so}\nstderr:\n{se}"
    );
    assert_no_secret("stdout", &so);
    assert_no_secret("stderr", &se);
    so
}

#[test]
fn tail_prints_one_line_per_row() {
    let env = Env::new("tail");
    env.seed();
    let db = env.db();
    let db = db.to_str().expect("utf-8");
    let out = run_ok(&["audit", "tail", "--db", db]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert!(
        lines[0].starts_with("2025-01-01T01:00:00.000Z  allow"),
        "{out}"
    );
    assert!(lines[2].contains("deny"), "{out}");
    assert!(lines[2].contains("https.github"), "{out}");
    assert!(lines[2].contains("DELETE"), "{out}");
    assert!(lines[2].contains("api.github.com/repos/acme/app"), "{out}");
    assert!(lines[2].contains("no-repo-delete"), "{out}");
    assert!(
        lines[2].contains("repositories are never deleted by agents"),
        "{out}"
    );

    let out = run_ok(&["audit", "--db", db, "tail", "-n", "2"]);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(
        out.lines().last().unwrap_or("").contains("pull-requests"),
        "{out}"
    );

    let out = run_ok(&["audit", "tail", "-n", "3", "--json", "--db", db]);
    let ids: Vec<i64> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("json line")["id"]
                .as_i64()
                .expect("id")
        })
        .collect();
    assert_eq!(ids, vec![4, 5, 6]);

    // --state-dir finds <dir>/clawpatrol.db.
    let out = run_ok(&[
        "audit",
        "tail",
        "--state-dir",
        &env.path("state"),
        "-n",
        "1",
    ]);
    assert_eq!(out.lines().count(), 1);
}

#[test]
fn tail_follow_prints_new_rows() {
    let env = Env::new("follow");
    env.seed();
    let mut child = Command::new(env!("CARGO_BIN_EXE_clawpatrol"))
        .args(["audit", "tail", "-n", "1", "--follow", "--db"])
        .arg(env.db())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("first line");
    assert!(first.contains("pull-requests"), "{first}");
    let mut store = AuditStore::open(&env.db()).expect("open");
    let mut new = vec![record(
        7,
        http("GET", "/followed", None),
        "allow",
        Some("reads"),
        "github-pat",
    )];
    store.append(&mut new).expect("append");
    let next = rx.recv_timeout(Duration::from_secs(30));
    child.kill().ok();
    child.wait().ok();
    let next = next.expect("the followed row");
    assert!(next.contains("api.github.com/followed"), "{next}");
}

#[test]
fn show_prints_a_row_by_id_or_action_id() {
    let env = Env::new("show");
    let rows = env.seed();
    let db = env.db();
    let db = db.to_str().expect("utf-8");
    let out = run_ok(&["audit", "show", "3", "--db", db]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("pretty json");
    assert_eq!(v["action_id"], rows[2].action_id);
    assert_eq!(v["rule"], "no-repo-delete");
    assert_eq!(v["req_headers"]["Authorization"], "***");
    assert_eq!(v["req_headers"]["X-Echo"], "v=[REDACTED credential]");
    assert!(
        out.contains("\n  \"action\": \"deny\""),
        "2-space pretty JSON: {out}"
    );

    let out = run_ok(&["audit", "show", &rows[4].action_id, "--db", db]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("pretty json");
    assert_eq!(v["id"], 5);
    assert_eq!(v["approver_by"], "alice");

    let out = clawpatrol(&["audit", "show", "no-such-row", "--db", db]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no audit row with id or action id `no-such-row`"));
}

#[test]
fn export_writes_fixtures_that_replay_green() {
    let env = Env::new("export");
    let rows = env.seed();
    let db = env.db();
    let db = db.to_str().expect("utf-8");
    let fixtures = env.path("fixtures");
    let out = clawpatrol(&["audit", "export", "--fixtures", &fixtures, "--db", db]);
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{so}{se}");
    assert!(so.contains("exported 5 fixture(s)"), "{so}");
    assert!(so.contains("skipped 1 row(s):"), "{so}");
    assert!(
        so.contains("1  outcome `error` is not a policy decision"),
        "{so}"
    );
    assert!(
        se.contains(&format!(
            "{}.json: body sample was cut at {BODY_CAP} bytes; the replayed verdict may differ",
            rows[5].action_id
        )),
        "{se}"
    );
    assert_no_secret("export output", &format!("{so}{se}"));

    let mut names: Vec<String> = std::fs::read_dir(&fixtures)
        .expect("fixtures dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let want: Vec<String> = [0, 1, 2, 4, 5]
        .iter()
        .map(|&i| format!("{}.json", rows[i].action_id))
        .collect();
    assert_eq!(names, want);
    for name in &names {
        let t = std::fs::read_to_string(Path::new(&fixtures).join(name)).expect("read");
        assert_no_secret(name, &t);
    }
    let t = std::fs::read_to_string(Path::new(&fixtures).join(&want[1])).expect("read");
    let v: serde_json::Value = serde_json::from_str(&t).expect("fixture json");
    assert_eq!(v["action"]["credential"], "github-readonly");
    assert_eq!(v["action"]["peer_ip"], "127.0.0.1");
    assert_eq!(v["match"]["verdict"], "deny");
    assert_eq!(v["match"]["endpoint"], "https.github");
    assert!(t.starts_with("{\n  \""), "2-space indent: {t}");
    let t = std::fs::read_to_string(Path::new(&fixtures).join(&want[3])).expect("read");
    assert!(t.contains("\"verdict\": \"approve\""), "{t}");

    // Every fixture replays to the recorded verdict, credential pin included.
    let out = run_ok(&["test", &env.path("policy.hcl"), &fixtures]);
    assert!(out.contains("5 action(s) checked, 0 mismatch(es)"), "{out}");

    // Without the exported credential, the pinned deny would not replay.
    let path = Path::new(&fixtures).join(&want[1]);
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    v["action"]
        .as_object_mut()
        .expect("object")
        .remove("credential");
    std::fs::write(&path, v.to_string()).expect("write");
    let out = clawpatrol(&["test", &env.path("policy.hcl"), &fixtures]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
}

#[test]
fn export_since_limits_the_rows() {
    let env = Env::new("since");
    let rows = env.seed();
    let db = env.db();
    let db = db.to_str().expect("utf-8");
    let fixtures = env.path("recent");
    // Rows are an hour apart from 01:00; since 04:30 leaves rows 5 and 6.
    let out = run_ok(&[
        "audit",
        "export",
        "--fixtures",
        &fixtures,
        "--since",
        "2025-01-01T04:30:00Z",
        "--db",
        db,
    ]);
    assert!(out.contains("exported 2 fixture(s)"), "{out}");
    assert!(Path::new(&fixtures)
        .join(format!("{}.json", rows[4].action_id))
        .is_file());
    // A duration counts back from now: every row is older than an hour.
    let out = run_ok(&[
        "audit",
        "export",
        "--fixtures",
        &fixtures,
        "--since",
        "1h",
        "--db",
        db,
    ]);
    assert!(out.contains("exported 0 fixture(s)"), "{out}");
    let out = clawpatrol(&[
        "audit",
        "export",
        "--fixtures",
        &fixtures,
        "--since",
        "yesterday",
        "--db",
        db,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("`yesterday` is neither"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn verify_accepts_an_intact_chain() {
    let env = Env::new("verify-ok");
    env.seed();
    let out = run_ok(&["audit", "verify", "--db", env.db().to_str().expect("utf-8")]);
    assert_eq!(out.trim(), "ok: 6 rows, chain intact");
}

fn verify_fails(env: &Env) -> String {
    let out = clawpatrol(&["audit", "verify", "--db", env.db().to_str().expect("utf-8")]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{all}");
    all
}

#[test]
fn verify_detects_an_edited_row() {
    let env = Env::new("verify-edit");
    env.seed();
    env.sql("UPDATE actions SET reason = 'nothing happened' WHERE id = 3");
    let out = verify_fails(&env);
    assert!(out.contains("row 3 was modified"), "{out}");
}

#[test]
fn verify_detects_a_deleted_middle_row() {
    let env = Env::new("verify-middle");
    env.seed();
    env.sql("DELETE FROM actions WHERE id = 3");
    let out = verify_fails(&env);
    assert!(out.contains("row 4 does not link to row 2"), "{out}");
}

#[test]
fn verify_detects_a_deleted_last_row() {
    let env = Env::new("verify-last");
    env.seed();
    env.sql("DELETE FROM actions WHERE id = 6");
    let out = verify_fails(&env);
    assert!(out.contains("ends at row 5 after 5 rows"), "{out}");
    assert!(out.contains("records 6 rows"), "{out}");
}

#[test]
fn a_missing_database_is_a_load_error_and_is_not_created() {
    let env = Env::new("missing");
    let db = env.db();
    for sub in [
        &["tail"][..],
        &["show", "1"],
        &["verify"],
        &["export", "--fixtures", "/tmp/x"],
    ] {
        let mut args = vec!["audit"];
        args.extend_from_slice(sub);
        args.extend_from_slice(&["--db", db.to_str().expect("utf-8")]);
        let out = clawpatrol(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains("does not exist"),
            "{}",
            text(&out.stderr)
        );
    }
    assert!(!db.exists());
    assert!(!db.parent().expect("parent").exists());
    // Without --db or --state-dir, $HOME/.clawpatrol is used (and not created either).
    let out = clawpatrol(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("clawpatrol-audit-cli-no-home/.clawpatrol/clawpatrol.db"));
}

#[test]
fn diff_replays_the_audit_database() {
    let env = Env::new("diff");
    env.seed();
    let db = env.db();
    let db = db.to_str().expect("utf-8");
    let policy = env.path("policy.hcl");
    let out = clawpatrol(&["diff", &policy, &policy, db]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("5 action(s) compared, 0 changed"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("1 audit row(s) are not replayable"),
        "{}",
        text(&out.stderr)
    );

    // Dropping the credential pin changes exactly the read-only row.
    let relaxed = POLICY.replace("credential = bearer_token.github-readonly", "");
    let relaxed = relaxed.replace(
        "condition  = \"!(http.method in ['GET', 'HEAD'])\"",
        "condition  = \"http.method == 'PATCH'\"",
    );
    std::fs::write(env.dir.join("new.hcl"), relaxed).expect("write");
    let out = clawpatrol(&["diff", &policy, &env.path("new.hcl"), db]);
    let so = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{so}{}", text(&out.stderr));
    assert!(so.contains("audit row 2 (0190f3c2-7a5e-7c31-9b1e-000000000002): deny (readonly-token) -> allow (pull-requests)"), "{so}");
    assert!(so.contains("5 action(s) compared, 1 changed"), "{so}");
}

#[test]
fn the_database_holds_no_secret() {
    let env = Env::new("nosecret");
    env.seed();
    let mut all = Vec::new();
    for suffix in ["", "-wal"] {
        let p = PathBuf::from(format!("{}{suffix}", env.db().display()));
        if let Ok(bytes) = std::fs::read(&p) {
            all.extend(bytes);
        }
    }
    assert!(!all.is_empty());
    assert!(
        !all.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
        "the secret is stored in the database"
    );
    // Sanity: the redaction marker is there, so the rows did carry the secret before.
    let marker = b"[REDACTED credential]";
    assert!(all.windows(marker.len()).any(|w| w == marker));
}
