//! The `clawpatrol` binary: `validate` and `eval`, run as a user would.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn clawpatrol(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clawpatrol"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn clawpatrol");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("wait")
}

fn example(rel: &str) -> String {
    format!("{}/../fixtures/examples/{rel}", env!("CARGO_MANIFEST_DIR"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn validate_accepts_the_examples() {
    let out = clawpatrol(&["validate", &example("platform/policy.hcl")], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("57 rule(s)"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn validate_reports_every_error_with_position_and_exit_2() {
    let dir = std::env::temp_dir().join(format!("clawpatrol-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let file = dir.join("bad.hcl");
    std::fs::write(
        &file,
        "endpoint \"https\" \"gh\" { hosts = [\"api.github.com\"] }\n\
         rule \"a\" {\n  endpoint  = https.gh\n  condition = \"http.nope == 1\"\n  verdict   = \"allow\"\n}\n\
         rule \"b\" {\n  endpoint = gh\n  verdict  = \"deny\"\n}\n",
    )
    .expect("write");
    let out = clawpatrol(&["validate", file.to_str().expect("utf8 path")], None);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("bad.hcl:4:"), "{err}");
    assert!(err.contains("bad.hcl:8:"), "{err}");
    assert!(
        err.contains("https.gh"),
        "the bare name gets a typed suggestion: {err}"
    );
    assert!(err.contains("2 errors"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn validate_warns_without_schema_version() {
    let dir = std::env::temp_dir().join(format!("clawpatrol-cli-w-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let file = dir.join("p.hcl");
    std::fs::write(
        &file,
        "endpoint \"https\" \"gh\" { hosts = [\"api.github.com\"] }\n",
    )
    .expect("write");
    let out = clawpatrol(&["validate", file.to_str().expect("utf8 path")], None);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("warning: no schema_version declared"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn eval_prints_the_decision_with_its_trace() {
    let action = r#"{"host":"api.github.com","http":{"method":"DELETE","path":"/repos/acme/app"}}"#;
    let out = clawpatrol(&["eval", &example("platform/policy.hcl")], Some(action));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["verdict"], "deny");
    assert_eq!(v["rule"], "gh-no-repo-delete");
    assert_eq!(v["endpoint"], "https.github");
    let trace = v["trace"].as_array().expect("trace");
    assert_eq!(trace.last().expect("step")["result"], "matched");
}

#[test]
fn eval_rejects_a_bad_action_with_exit_2() {
    let out = clawpatrol(
        &["eval", &example("platform/policy.hcl"), "--action", "-"],
        Some(r#"{"host":"x","sql":{"verb":"select"}}"#),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("sql: statement is required"));
}

#[test]
fn lint_exits_1_on_error_findings_and_0_otherwise() {
    let out = clawpatrol(&["lint", &example("rules-doc/sql.hcl")], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let o = text(&out.stdout);
    assert!(o.contains("error[unknown-verb]: rule \"pg-no-ddl\""), "{o}");
    assert!(o.contains("  --> "), "{o}");
    assert!(o.contains("  = help: "), "{o}");
    let out = clawpatrol(&["lint", &example("platform/policy.hcl")], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn diff_exits_1_when_decisions_change() {
    let quick = format!("{}/../fixtures/quickstart", env!("CARGO_MANIFEST_DIR"));
    let policy = format!("{quick}/policy.hcl");
    let fixtures = format!("{quick}/fixtures");
    let out = clawpatrol(&["diff", &policy, &policy, &fixtures], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).ends_with("0 changed\n"));
    let dir = std::env::temp_dir().join(format!("clawpatrol-cli-d-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let changed = dir.join("new.hcl");
    let original = std::fs::read_to_string(&policy).expect("read");
    std::fs::write(&changed, format!("{original}\nrule \"freeze\" {{\n  endpoint = https.github\n  priority = 10000\n  verdict  = \"deny\"\n}}\n"))
        .expect("write");
    let out = clawpatrol(
        &["diff", &policy, changed.to_str().expect("utf8"), &fixtures],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let o = text(&out.stdout);
    assert!(o.starts_with("https.github\n"), "{o}");
    assert!(o.contains("-> deny (freeze)"), "{o}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn gateway_refuses_a_busy_poll_window_over_ten_milliseconds() {
    let out = clawpatrol(
        &["gateway", "policy.hcl", "--postgres-busy-poll", "10001"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("--postgres-busy-poll"), "{err}");
    assert!(err.contains("0..=10000"), "{err}");
}

#[test]
fn gateway_refuses_zero_postgres_threads() {
    let out = clawpatrol(&["gateway", "policy.hcl", "--postgres-threads", "0"], None);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("--postgres-threads"), "{err}");
    assert!(err.contains("1..=1024"), "{err}");
}
