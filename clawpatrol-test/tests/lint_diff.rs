//! `lint` findings (each one) and `diff` of two policies over the same fixtures.

use clawpatrol_core::Policy;
use clawpatrol_test::diff::diff;
use clawpatrol_test::lint::{lint, Finding, Level};

const LINTED: &str = r##"schema_version = 1
endpoint "https" "gh" { hosts = ["api.github.com"] }
endpoint "https" "orphan" { hosts = ["orphan.example.com"] }
endpoint "postgres" "pg" { host = "pg.internal:5432" }

credential "bearer_token" "pat" { endpoint = https.gh }
credential "bearer_token" "spare" { endpoint = https.gh }
credential "postgres_credential" "pg-ro" {
  endpoint = postgres.pg
  user     = "ro"
}

approver "human_approver" "ops" { channel = "#ops" }
approver "human_approver" "idle" { channel = "#idle" }

rule "catch-first" {
  endpoint = https.gh
  priority = 5
  verdict  = "allow"
}
rule "never" {
  endpoint  = https.gh
  condition = "http.path == '/x'"
  verdict   = "deny"
}
rule "same-a" {
  endpoint  = postgres.pg
  priority  = 3
  condition = "sql.verb == 'drop'"
  verdict   = "deny"
}
rule "same-b" {
  endpoint  = postgres.pg
  priority  = 3
  condition = "sql.verb  ==  'drop'"
  approve   = [human_approver.ops]
}
rule "pinned-other" {
  endpoint   = postgres.pg
  priority   = 9
  credential = postgres_credential.pg-ro
  verdict    = "allow"
}
rule "const-false" {
  endpoint  = postgres.pg
  priority  = 1
  condition = "1 > 2"
  verdict   = "deny"
}
rule "const-true" {
  endpoint  = postgres.pg
  priority  = 1
  condition = "'a' in ['a', 'b']"
  verdict   = "deny"
}
rule "upper-regex" {
  endpoint  = postgres.pg
  priority  = 2
  condition = "sql.verb.matches('^DROP')"
  verdict   = "deny"
}
rule "ok-regex" {
  endpoint  = postgres.pg
  priority  = 2
  condition = "sql.verb.matches('(?i)^DROP') || sql.statement.matches('DROP')"
  verdict   = "deny"
}

profile "default" {
  credentials = [bearer_token.pat, postgres_credential.pg-ro]
}
"##;

fn find<'a>(fs: &'a [Finding], code: &str, subject: &str) -> Option<&'a Finding> {
    fs.iter().find(|f| f.code == code && f.subject == subject)
}

#[test]
fn every_lint_finding() {
    let p = Policy::from_source("lint.hcl", LINTED).expect("loads");
    let fs = lint(&p);
    let listing: String = fs.iter().map(|f| format!("{f}\n")).collect();

    let f = find(&fs, "shadowed-rule", "rule \"never\"").unwrap_or_else(|| panic!("{listing}"));
    assert_eq!(f.level, Level::Error);
    assert_eq!(f.location, "lint.hcl:21");
    assert!(
        f.message.contains("`catch-first`") && f.message.contains("no condition"),
        "{f}"
    );
    let f = find(&fs, "shadowed-rule", "rule \"same-b\"").unwrap_or_else(|| panic!("{listing}"));
    assert!(f.message.contains("same condition"), "{f}");
    // A catch-all pinned to a credential shadows nothing unpinned.
    assert!(
        find(&fs, "shadowed-rule", "rule \"same-a\"").is_none(),
        "{listing}"
    );

    let f = find(&fs, "constant-condition", "rule \"const-false\"")
        .unwrap_or_else(|| panic!("{listing}"));
    assert_eq!(f.level, Level::Error);
    let f = find(&fs, "constant-condition", "rule \"const-true\"")
        .unwrap_or_else(|| panic!("{listing}"));
    assert_eq!(f.level, Level::Warning);

    let f = find(&fs, "regex-never-matches", "rule \"upper-regex\"")
        .unwrap_or_else(|| panic!("{listing}"));
    assert_eq!(f.level, Level::Error);
    assert!(f.help.contains("(?i)"), "{f}");
    assert!(
        find(&fs, "regex-never-matches", "rule \"ok-regex\"").is_none(),
        "{listing}"
    );

    assert!(
        find(&fs, "no-catch-all", "endpoint \"postgres.pg\"").is_some(),
        "{listing}"
    );
    assert!(
        find(&fs, "no-catch-all", "endpoint \"https.gh\"").is_none(),
        "{listing}"
    );
    assert!(
        find(&fs, "unbound-credential", "credential \"spare\"").is_some(),
        "{listing}"
    );
    assert!(
        find(&fs, "unbound-credential", "credential \"pat\"").is_none(),
        "{listing}"
    );
    assert!(
        find(&fs, "unreached-endpoint", "endpoint \"https.orphan\"").is_some(),
        "{listing}"
    );
    assert!(
        find(&fs, "unreached-endpoint", "endpoint \"https.gh\"").is_none(),
        "{listing}"
    );
    assert!(
        find(&fs, "unused-approver", "approver \"human_approver.idle\"").is_some(),
        "{listing}"
    );
    assert!(
        find(&fs, "unused-approver", "approver \"human_approver.ops\"").is_none(),
        "{listing}"
    );
    for f in &fs {
        assert!(f.location.starts_with("lint.hcl:"), "{f}");
        assert!(!f.help.is_empty(), "{f}");
    }
}

#[test]
fn the_bundled_examples_have_no_error_findings() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/examples");
    for rel in [
        "platform/policy.hcl",
        "minimal/policy.hcl",
        "rules-doc/k8s.hcl",
        "rules-doc/http.hcl",
    ] {
        let p = Policy::load(format!("{root}/{rel}")).expect("loads");
        let errors: Vec<String> = lint(&p)
            .iter()
            .filter(|f| f.level == Level::Error)
            .map(|f| f.to_string())
            .collect();
        assert!(errors.is_empty(), "{rel}:\n{}", errors.join("\n"));
    }
}

#[test]
fn verbs_the_parser_never_produces() {
    // The rules documentation's own example lists `revoke`, which never occurs (reference §12.19).
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/examples");
    let p = Policy::load(format!("{root}/rules-doc/sql.hcl")).expect("loads");
    let fs = lint(&p);
    let f = find(&fs, "unknown-verb", "rule \"pg-no-ddl\"").unwrap_or_else(|| panic!("{fs:?}"));
    assert_eq!(f.level, Level::Error);
    assert!(
        f.message.contains("`revoke`") && f.message.contains("`grant`"),
        "{f}"
    );
    // …and Postgres has no DESCRIBE or USE statement either.
    let verbs: Vec<&str> = fs
        .iter()
        .filter(|f| f.code == "unknown-verb")
        .map(|f| f.message.as_str())
        .collect();
    assert_eq!(verbs.len(), 3, "{verbs:?}");
    assert!(verbs.iter().any(|m| m.contains("`describe`")), "{verbs:?}");
    assert!(verbs.iter().any(|m| m.contains("`use`")), "{verbs:?}");

    let ch = Policy::from_source(
        "ch.hcl",
        r#"endpoint "clickhouse_native" "ch" { hosts = ["ch.example.com"] }
rule "r" {
  endpoint  = clickhouse_native.ch
  condition = "sql.verb in ['select', 'use', 'vacuum'] || sql.verb == 'kill'"
  verdict   = "deny"
}
"#,
    )
    .expect("loads");
    let fs = lint(&ch);
    let msgs: Vec<&str> = fs
        .iter()
        .filter(|f| f.code == "unknown-verb")
        .map(|f| f.message.as_str())
        .collect();
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(
        msgs[0].contains("`vacuum`") && msgs[0].contains("clickhouse_native"),
        "{msgs:?}"
    );
}

#[test]
fn diff_lists_changed_decisions_by_endpoint() {
    let dir = std::env::temp_dir().join(format!("clawpatrol-diff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let old = Policy::from_source(
        "old.hcl",
        r#"endpoint "https" "gh" { hosts = ["api.github.com"] }
rule "reads" {
  endpoint  = https.gh
  condition = "http.method == 'GET'"
  verdict   = "allow"
}
"#,
    )
    .expect("old");
    let new = Policy::from_source(
        "new.hcl",
        r#"endpoint "https" "gh" { hosts = ["api.github.com"] }
rule "reads" {
  endpoint  = https.gh
  condition = "http.method == 'GET' && !http.path.startsWith('/admin')"
  verdict   = "allow"
}
rule "default" {
  endpoint = https.gh
  priority = -100
  verdict  = "deny"
}
"#,
    )
    .expect("new");
    let write = |name: &str, method: &str, path: &str| {
        let p = dir.join(name);
        std::fs::write(
            &p,
            format!(
                r#"{{"action":{{"host":"api.github.com","http":{{"method":"{method}","path":"{path}"}}}},"match":{{"verdict":"allow"}}}}"#
            ),
        )
        .expect("write");
        p
    };
    let files = vec![
        write("1.json", "GET", "/repos"),
        write("2.json", "GET", "/admin/x"),
        write("3.json", "POST", "/repos"),
    ];
    let r = diff(&old, &new, &files);
    assert_eq!(r.compared, 3);
    assert_eq!(r.changed(), 2);
    let text = r.text();
    let d = dir.display();
    assert_eq!(
        text,
        format!(
            "https.gh\n  {d}/2.json: allow (reads) -> deny (default)\n  {d}/3.json: allow (no rule) -> deny (default)\n3 action(s) compared, 2 changed\n"
        )
    );
    let same = diff(&old, &old, &files);
    assert_eq!(same.changed(), 0);
    std::fs::remove_dir_all(&dir).ok();
}
