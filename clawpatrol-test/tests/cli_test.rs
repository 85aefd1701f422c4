//! `clawpatrol-test` (the same code as `clawpatrol test`) run as a CI job would: exact output
//! lines, output streams, exit codes and every error text of reference §7.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let p = std::env::temp_dir().join(format!(
            "clawpatrol-test-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("mkdir");
        Dir(p)
    }
    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.0.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write");
        p
    }
    fn path(&self, rel: &str) -> String {
        self.0.join(rel).display().to_string()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const POLICY: &str = r#"schema_version = 1
endpoint "https" "github" { hosts = ["api.github.com"] }
endpoint "https" "mirror" { hosts = ["mirror.example.com"] }
endpoint "https" "mirror2" { hosts = ["mirror.example.com"] }
endpoint "https" "wild" { hosts = ["*.corp.example.com"] }
endpoint "kubernetes" "k8s" { server = "k8s.example.com:6443" }
endpoint "ssh" "box" { hosts = ["box.example.com"] }
endpoint "postgres" "pg" { host = "pg.internal:5432" }

rule "github-reads" {
  endpoint  = https.github
  condition = "http.method in ['GET', 'HEAD']"
  verdict   = "allow"
}
rule "github-writes" {
  endpoint  = https.github
  condition = "http.method in ['POST', 'DELETE']"
  verdict   = "deny"
  reason    = "writes go through PR review"
}
rule "github-body" {
  endpoint  = https.github
  priority  = 10
  condition = "http.body.contains('ghp_')"
  verdict   = "deny"
  reason    = "no tokens in bodies"
}
rule "wild-all" {
  endpoint = https.wild
  approve  = [builtin.dashboard]
}
rule "k8s-secrets" {
  endpoint  = kubernetes.k8s
  condition = "k8s.resource == 'secrets'"
  verdict   = "deny"
}
rule "no-pty" {
  endpoint  = ssh.box
  condition = "ssh.verb == 'pty'"
  verdict   = "deny"
}
"#;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clawpatrol-test"))
        .args(args)
        .output()
        .expect("run clawpatrol-test")
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn setup(tag: &str) -> (Dir, String) {
    let d = Dir::new(tag);
    let cfg = d.write("policy.hcl", POLICY).display().to_string();
    (d, cfg)
}

fn fixture(action: &str, matcher: &str) -> String {
    format!(r#"{{"action": {action}, "match": {matcher}}}"#)
}

#[test]
fn all_pass_goes_to_stdout_with_exit_0() {
    let (d, cfg) = setup("pass");
    d.write(
        "fx/a-read.json",
        &fixture(
            r#"{"host":"api.github.com","http":{"method":"GET","path":"/repos/x"}}"#,
            r#"{"verdict":"allow","rule":"github-reads","endpoint":"https.github"}"#,
        ),
    );
    d.write(
        "fx/b-k8s.json",
        &fixture(
            r#"{"host":"k8s.example.com","k8s":{"verb":"get","resource":"secrets"}}"#,
            r#"{"verdict":"deny","rule":"k8s-secrets"}"#,
        ),
    );
    d.write(
        "fx/c-wild.json",
        &fixture(
            r#"{"host":"a.b.corp.example.com","http":{"method":"GET","path":"/"}}"#,
            r#"{"verdict":"approve","rule":"wild-all"}"#,
        ),
    );
    d.write("fx/notes.txt", "not a fixture");
    let out = run(&[&cfg, &d.path("fx")]);
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    assert_eq!(s(&out.stderr), "");
    let fx = d.path("fx");
    assert_eq!(
        s(&out.stdout),
        format!(
            "ok   {fx}/a-read.json\nok   {fx}/b-k8s.json\nok   {fx}/c-wild.json\n3 action(s) checked, 0 mismatch(es)\n"
        )
    );
}

#[test]
fn a_mismatch_sends_the_whole_report_to_stderr_with_exit_1() {
    let (d, cfg) = setup("mismatch");
    d.write(
        "fx/1.json",
        &fixture(
            r#"{"host":"api.github.com","http":{"method":"GET","path":"/"}}"#,
            r#"{"verdict":"allow","rule":"github-reads"}"#,
        ),
    );
    d.write(
        "fx/2.json",
        &fixture(
            r#"{"host":"api.github.com","http":{"method":"DELETE","path":"/repos/x"}}"#,
            r#"{"verdict":"allow","rule":"github-reads","endpoint":"https.github"}"#,
        ),
    );
    d.write(
        "fx/3.json",
        &fixture(
            r#"{"host":"api.github.com","http":{"method":"POST","path":"/"}}"#,
            r#"{"verdict":"allow","rule":"github-writes","reason":"writes go through PR review"}"#,
        ),
    );
    let out = run(&[&cfg, &d.path("fx")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(s(&out.stdout), "");
    let fx = d.path("fx");
    assert_eq!(
        s(&out.stderr),
        format!(
            "ok   {fx}/1.json\n\
             FAIL {fx}/2.json\n\
             \x20 want verdict=\"allow\"      rule=\"github-reads\"                 endpoint=\"https.github\"\n\
             \x20 got  verdict=\"deny\"       rule=\"github-writes\"                endpoint=\"https.github\"\n\
             \x20 reason: writes go through PR review\n\
             FAIL {fx}/3.json\n\
             \x20 want verdict=\"allow\"      rule=\"github-writes\"                endpoint=\"\"\n\
             \x20 got  verdict=\"deny\"       rule=\"github-writes\"                endpoint=\"https.github\"\n\
             3 action(s) checked, 2 mismatch(es)\n"
        )
    );
}

/// Each fixture error of §7.2/§7.3 appears as `FAIL <path>: <text>` and counts as a mismatch.
#[test]
fn every_fixture_error_text() {
    let (d, cfg) = setup("errors");
    let http = r#"{"host":"api.github.com","http":{"method":"GET","path":"/"}}"#;
    let cases: Vec<(&str, String, &str)> = vec![
        ("no-match", format!(r#"{{"action": {http}}}"#), "fixture: match is required"),
        ("no-action", r#"{"match":{"verdict":"allow"}}"#.into(), "fixture: action is required"),
        ("top-unknown", format!(r#"{{"action": {http}, "match": {{"verdict":"allow"}}, "x": 1}}"#), "fixture: json: unknown field \"x\""),
        ("match-unknown", fixture(http, r#"{"verdict":"allow","x":1}"#), "match: json: unknown field \"x\""),
        ("action-unknown", fixture(r#"{"host":"h","x":1,"http":{}}"#, r#"{"verdict":"allow"}"#), "action: json: unknown field \"x\""),
        ("http-unknown", fixture(r#"{"http":{"x":1}}"#, r#"{"verdict":"allow"}"#), "http: json: unknown field \"x\""),
        ("k8s-unknown", fixture(r#"{"k8s":{"x":1}}"#, r#"{"verdict":"allow"}"#), "k8s: json: unknown field \"x\""),
        ("sql-unknown", fixture(r#"{"sql":{"statement":"select 1","x":1}}"#, r#"{"verdict":"allow"}"#), "sql: json: unknown field \"x\""),
        ("ssh-unknown", fixture(r#"{"ssh":{"verb":"exec","x":1}}"#, r#"{"verdict":"allow"}"#), "ssh: json: unknown field \"x\""),
        ("bad-verdict", fixture(http, r#"{"verdict":"nope"}"#), "fixture: match.verdict \"nope\" must be one of allow|deny|approve|passthrough"),
        ("two-blocks", fixture(r#"{"sql":{"statement":"x"},"ssh":{"verb":"exec"}}"#, r#"{"verdict":"allow"}"#), "action: exactly one of http/k8s/sql/ssh is required, found 2"),
        ("no-block", fixture(r#"{"host":"api.github.com"}"#, r#"{"verdict":"allow"}"#), "action: exactly one of http/k8s/sql/ssh is required, found 0"),
        ("body-both", fixture(r#"{"http":{"body":"a","body_b64":"YQ=="}}"#, r#"{"verdict":"allow"}"#), "http: body and body_b64 are mutually exclusive"),
        ("sql-no-statement", fixture(r#"{"sql":{"verb":"select"}}"#, r#"{"verdict":"allow"}"#), "sql: statement is required"),
        ("ssh-no-verb", fixture(r#"{"ssh":{"command":"ls"}}"#, r#"{"verdict":"allow"}"#), "ssh: verb is required"),
        ("untyped-endpoint", fixture(http, r#"{"verdict":"allow","endpoint":"github"}"#), "match.endpoint \"github\" must use typed form `endpoint-type.endpoint-name` (e.g. `https.github`)"),
        ("unknown-endpoint", fixture(http, r#"{"verdict":"allow","endpoint":"https.nope"}"#), "endpoint \"https.nope\" not in compiled policy"),
        ("wrong-type", fixture(http, r#"{"verdict":"allow","endpoint":"postgres.github"}"#), "match.endpoint \"postgres.github\": endpoint \"github\" is type \"https\", not \"postgres\""),
        ("unclaimed", fixture(r#"{"host":"nowhere.org","http":{}}"#, r#"{"verdict":"allow"}"#), "no endpoint claims host \"nowhere.org\""),
        ("ambiguous", fixture(r#"{"host":"mirror.example.com","http":{}}"#, r#"{"verdict":"allow"}"#), "host \"mirror.example.com\" is claimed by multiple endpoints [https.mirror https.mirror2]; set `match.endpoint` to disambiguate"),
        ("no-host", fixture(r#"{"http":{}}"#, r#"{"verdict":"allow"}"#), "cannot resolve endpoint: no `action.host` and no `match.endpoint`"),
        ("passthrough", fixture(http, r#"{"verdict":"passthrough"}"#), "passthrough fixtures aren't yet replayable — pin to a named endpoint or remove"),
        ("family", fixture(r#"{"host":"box.example.com","http":{}}"#, r#"{"verdict":"allow"}"#), "endpoint \"box\" is family \"ssh\" but fixture has http block"),
    ];
    for (name, text, _) in &cases {
        d.write(&format!("fx/{name}.json"), text);
    }
    let out = run(&[&cfg, &d.path("fx")]);
    assert_eq!(out.status.code(), Some(1));
    let err = s(&out.stderr);
    for (name, _, want) in &cases {
        let line = format!("FAIL {}: {want}\n", d.path(&format!("fx/{name}.json")));
        assert!(err.contains(&line), "missing `{line}` in:\n{err}");
    }
    assert!(err.ends_with(&format!(
        "{n} action(s) checked, {n} mismatch(es)\n",
        n = cases.len()
    )));
    let bad_b64 = d.write(
        "b64.json",
        &fixture(
            r#"{"host":"api.github.com","http":{"body_b64":"!!"}}"#,
            r#"{"verdict":"allow"}"#,
        ),
    );
    let out = run(&[&cfg, bad_b64.to_str().expect("utf8")]);
    assert!(
        s(&out.stderr).contains(": http.body_b64: "),
        "{}",
        s(&out.stderr)
    );
}

#[test]
fn path_and_config_errors_exit_2() {
    let (d, cfg) = setup("paths");
    let out = run(&[&cfg, &d.path("missing")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        s(&out.stderr).starts_with("resolve fixtures: "),
        "{}",
        s(&out.stderr)
    );
    std::fs::create_dir_all(d.path("empty")).expect("mkdir");
    let out = run(&[&cfg, &d.path("empty")]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        s(&out.stderr),
        format!("no .json fixtures under {}\n", d.path("empty"))
    );
    let bad = d.write(
        "bad.hcl",
        "rule \"x\" {\n  endpoint = https.none\n  verdict = \"deny\"\n}\n",
    );
    let out = run(&[bad.to_str().expect("utf8"), &d.path("empty")]);
    assert_eq!(out.status.code(), Some(2));
    let e = s(&out.stderr);
    assert!(e.starts_with("load config: "), "{e}");
    assert!(e.contains("bad.hcl:2:14"), "{e}");
    let out = run(&[&cfg]);
    assert_eq!(out.status.code(), Some(2), "usage error");
    assert!(s(&out.stderr).contains("Usage"), "{}", s(&out.stderr));
    let out = run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(s(&out.stdout).contains("--coverage"));
}

#[test]
fn recursion_json_coverage_and_explain() {
    let (d, cfg) = setup("extras");
    d.write(
        "fx/top.json",
        &fixture(
            r#"{"host":"api.github.com","http":{"method":"GET","path":"/"}}"#,
            r#"{"verdict":"allow","rule":"github-reads"}"#,
        ),
    );
    d.write(
        "fx/sub/deep.json",
        &fixture(
            r#"{"host":"api.github.com","http":{"method":"POST","path":"/","body":"ghp_x"}}"#,
            r#"{"verdict":"allow","rule":"github-reads"}"#,
        ),
    );
    let out = run(&[&cfg, &d.path("fx")]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "without -r only the top level: {}",
        s(&out.stderr)
    );
    let out = run(&["-r", "--explain", &cfg, &d.path("fx")]);
    assert_eq!(out.status.code(), Some(1));
    let err = s(&out.stderr);
    assert!(
        err.contains("    rule \"github-body\" (priority 10): matched\n"),
        "{err}"
    );
    assert!(err.contains("2 action(s) checked, 1 mismatch(es)"), "{err}");

    let out = run(&["-r", "--format", "json", "--coverage", &cfg, &d.path("fx")]);
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<serde_json::Value> = s(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["status"], "fail");
    assert_eq!(lines[0]["got"]["rule"], "github-body");
    assert_eq!(lines[1]["status"], "ok");
    assert_eq!(lines[2]["summary"]["checked"], 2);
    assert_eq!(lines[2]["summary"]["mismatches"], 1);
    let cov = &lines[3]["coverage"];
    assert_eq!(cov["https.github"]["fixtures"], 2);
    assert_eq!(
        cov["https.github"]["unexercised_rules"],
        serde_json::json!(["github-writes"])
    );
    assert_eq!(cov["ssh.box"]["fixtures"], 0);

    let out = run(&["--coverage", &cfg, &d.path("fx/top.json")]);
    assert_eq!(out.status.code(), Some(0));
    let o = s(&out.stdout);
    assert!(o.contains("coverage:\n"), "{o}");
    assert!(o.contains("  https.github: 1 fixture(s), rules no fixture exercised: github-body, github-writes\n"), "{o}");
    assert!(o.contains("  kubernetes.k8s: no fixture\n"), "{o}");
}

#[test]
fn many_fixtures_keep_their_order() {
    let (d, cfg) = setup("order");
    for i in 0..200 {
        let method = if i % 3 == 0 { "DELETE" } else { "GET" };
        let rule = if i % 3 == 0 {
            "github-writes"
        } else {
            "github-reads"
        };
        let verdict = if i % 3 == 0 { "deny" } else { "allow" };
        d.write(
            &format!("fx/{i:03}.json"),
            &fixture(
                &format!(
                    r#"{{"host":"api.github.com","http":{{"method":"{method}","path":"/{i}"}}}}"#
                ),
                &format!(r#"{{"verdict":"{verdict}","rule":"{rule}"}}"#),
            ),
        );
    }
    let out = run(&[&cfg, &d.path("fx")]);
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    let lines: Vec<String> = s(&out.stdout).lines().map(str::to_string).collect();
    for (i, l) in lines.iter().take(200).enumerate() {
        assert_eq!(
            l,
            &format!(
                "ok   {}",
                Path::new(&d.path("fx"))
                    .join(format!("{i:03}.json"))
                    .display()
            )
        );
    }
}
