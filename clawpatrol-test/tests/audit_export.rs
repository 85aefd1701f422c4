//! Audit rows exported by `clawpatrol_core::audit::to_fixture` parse as fixtures and replay to
//! the verdict the gateway recorded, credential pins included.

use clawpatrol_core::audit::{record_extra, to_fixture, AuditRecord};
use clawpatrol_core::{Action, Policy};
use clawpatrol_test::replay::replay_text;
use clawpatrol_test::{Fixture, Outcome};
use serde_json::json;

const POLICY: &str = r#"
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
"#;

const SECRET: &str = "ghp_REALsecretVALUE0123456789";

fn row(credential: &str, outcome: &str, rule: &str) -> AuditRecord {
    let action = Action::from_json(&json!({
        "host": "api.github.com",
        "credential": credential,
        "http": {"method": "POST", "path": "/repos/acme/app/pulls",
                 "headers": {"Authorization": [format!("Bearer {SECRET}")]},
                 "body": format!("{{\"title\":\"x\",\"leak\":\"{SECRET}\"}}")}
    }))
    .expect("action");
    AuditRecord {
        action_id: "0190f3c2-0000-7000-8000-000000000001".into(),
        agent_ip: "127.0.0.1:50000".into(),
        action: outcome.into(),
        endpoint: Some("https.github".into()),
        rule: Some(rule.into()),
        credential: Some(credential.into()),
        extra: record_extra(&action, &[SECRET.to_string()], 4096),
        ..Default::default()
    }
}

fn replay(rec: &AuditRecord) -> Outcome {
    let policy = Policy::from_source("policy.hcl", POLICY).expect("policy");
    let exported = to_fixture(rec).expect("exportable");
    let text = serde_json::to_string_pretty(&exported.fixture).expect("json");
    assert!(!text.contains(SECRET), "{text}");
    Fixture::parse(&text).expect("the fixture parser accepts the export");
    replay_text(&policy, &text).1
}

#[test]
fn an_exported_row_replays_to_the_recorded_verdict() {
    let outcome = replay(&row("github-pat", "allow", "pull-requests"));
    assert!(
        matches!(outcome, Outcome::Pass(ref p) if p.verdict == "allow"),
        "{outcome:?}"
    );
}

#[test]
fn the_credential_is_exported_so_pinned_rules_replay() {
    let outcome = replay(&row("github-readonly", "deny", "readonly-token"));
    assert!(
        matches!(outcome, Outcome::Pass(ref p) if p.rule == "readonly-token"),
        "{outcome:?}"
    );
    // Without the credential the pinned rule cannot fire: the replay would disagree.
    let mut rec = row("github-readonly", "deny", "readonly-token");
    rec.credential = None;
    let outcome = replay(&rec);
    assert!(
        matches!(outcome, Outcome::Mismatch(ref p) if p.rule == "pull-requests"),
        "{outcome:?}"
    );
}

#[test]
fn a_recorded_verdict_the_policy_no_longer_gives_is_a_mismatch() {
    let outcome = replay(&row("github-pat", "deny", "default-deny"));
    assert!(matches!(outcome, Outcome::Mismatch(_)), "{outcome:?}");
}
