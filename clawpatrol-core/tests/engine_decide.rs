//! The rule walk of reference §2.5–§2.9, end to end from HCL text to `Decision`.

use std::collections::BTreeMap;

use clawpatrol_core::dispatch::DispatchRequest;
use clawpatrol_core::facts::{Action, Facts, HttpFacts, K8sFacts, SqlFacts, SshFacts};
use clawpatrol_core::{Policy, StepResult, Verdict};

fn policy(body: &str) -> Policy {
    let text = format!(
        r##"schema_version = 1
endpoint "https" "api" {{ hosts = ["api.example.com"] }}
endpoint "https" "wild" {{ hosts = ["*.example.com"] }}
endpoint "https" "deep" {{ hosts = ["*.deep.example.com"] }}
endpoint "kubernetes" "k8s" {{ server = "k8s.example.com:6443" }}
endpoint "postgres" "pg" {{ host = "pg.internal:5432" }}
endpoint "postgres" "pg-empty" {{ host = "pg2.internal:5432" }}
endpoint "ssh" "box" {{ hosts = ["box.example.com"] }}
credential "bearer_token" "pat" {{ endpoint = https.api }}
credential "bearer_token" "pat-ro" {{
  endpoint    = https.api
  placeholder = "ph-ro"
}}
approver "human_approver" "ops" {{ channel = "#ops" }}
approver "llm_approver" "judge" {{
  model      = "claude-haiku-4-5"
  credential = bearer_token.pat
}}
profile "default" {{ credentials = [bearer_token.pat, bearer_token.pat-ro] }}
{body}
"##
    );
    match Policy::from_source("test.hcl", &text) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

fn http(method: &str, path: &str, body: &str) -> Action {
    Action::new(Facts::Http(HttpFacts::new(
        method,
        path,
        BTreeMap::new(),
        BTreeMap::new(),
        body.as_bytes().to_vec(),
    )))
    .with_host("api.example.com")
}

fn sql(verb: &str, tables: &[&str], database: &str) -> Action {
    Action::new(Facts::Sql(SqlFacts {
        statement: format!("{verb} ..."),
        verb: verb.to_string(),
        tables: tables.iter().map(|s| s.to_string()).collect(),
        functions: vec![],
        database: database.to_string(),
    }))
    .with_endpoint("postgres.pg")
}

fn k8s(verb: &str, resource: &str, params: &[(&str, &str)]) -> Action {
    Action::new(Facts::K8s {
        http: HttpFacts::default(),
        k8s: Some(K8sFacts {
            verb: verb.into(),
            resource: resource.into(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }),
    })
    .with_endpoint("kubernetes.k8s")
}

fn rule_of(p: &Policy, a: &Action) -> (String, String) {
    let d = p.decide(a);
    (
        d.verdict.as_str().to_string(),
        d.rule.unwrap_or_default().to_string(),
    )
}

#[test]
fn higher_priority_first_then_declaration_order() {
    let p = policy(
        r#"
rule "low"    {
  endpoint = https.api
                priority = 1
                verdict  = "deny"
}
rule "tie-a"  {
  endpoint = https.api
                priority = 5
                condition = "http.method == 'GET'"
                verdict  = "allow"
}
rule "tie-b"  {
  endpoint = https.api
                priority = 5
                verdict  = "deny"
}
rule "high"   {
  endpoint = https.api
                priority = 10
                condition = "http.path == '/admin'"
                verdict  = "deny"
}
"#,
    );
    assert_eq!(
        p.rules_for("https.api").unwrap(),
        vec!["high", "tie-a", "tie-b", "low"]
    );
    assert_eq!(
        rule_of(&p, &http("GET", "/admin", "")),
        ("deny".into(), "high".into())
    );
    assert_eq!(
        rule_of(&p, &http("GET", "/x", "")),
        ("allow".into(), "tie-a".into())
    );
    assert_eq!(
        rule_of(&p, &http("POST", "/x", "")),
        ("deny".into(), "tie-b".into())
    );
}

#[test]
fn disabled_rules_are_skipped_and_no_match_allows() {
    let p = policy(
        r#"
rule "off" {
  endpoint = https.api
             disabled = true
             verdict  = "deny"
}
"#,
    );
    let d = p.decide_traced(&http("GET", "/", ""));
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(d.rule, None);
    assert_eq!(d.endpoint.as_deref(), Some("https.api"));
    assert_eq!(d.trace.unwrap().steps[0].result, StepResult::Disabled);
}

#[test]
fn credential_pin_is_checked_before_the_condition() {
    let p = policy(
        r#"
rule "ro-reads-only" {
  endpoint   = https.api
                       credential = bearer_token.pat-ro
                       condition  = "http.method != 'GET'"
                       verdict    = "deny"
}
"#,
    );
    let a = http("POST", "/", "");
    assert_eq!(p.decide(&a).verdict, Verdict::Allow);
    let a = a.with_credential("pat-ro");
    assert_eq!(rule_of(&p, &a), ("deny".into(), "ro-reads-only".into()));
    let t = p
        .decide_traced(&http("POST", "/", "").with_credential("pat"))
        .trace
        .unwrap();
    assert!(
        matches!(&t.steps[0].result, StepResult::CredentialMismatch { want, got } if want == "pat-ro" && got == "pat")
    );
}

#[test]
fn approve_chain_is_returned_as_data() {
    let p = policy(
        r#"
rule "review" {
  endpoint = https.api
                approve  = [llm_approver.judge, human_approver.ops, builtin.dashboard]
}
"#,
    );
    let d = p.decide(&http("GET", "/", ""));
    assert_eq!(
        d.verdict,
        Verdict::Approve(vec![
            "llm_approver.judge".into(),
            "human_approver.ops".into(),
            "builtin.dashboard".into()
        ])
    );
}

#[test]
fn deny_reason_and_agent_text() {
    let p = policy(
        r#"
rule "r1" {
  endpoint = https.api
            condition = "http.path == '/a'"
            verdict = "deny"
            reason = "no a"
}
rule "r2" {
  endpoint = https.api
            verdict = "deny"
}
"#,
    );
    let d = p.decide(&http("GET", "/a", ""));
    assert_eq!(d.agent_reason(), "no a");
    let d = p.decide(&http("GET", "/b", ""));
    assert_eq!(d.reason, "");
    assert_eq!(d.agent_reason(), "denied by policy");
}

#[test]
fn catch_all_still_applies_to_truncated_input() {
    let p = policy(
        r#"
rule "body" {
  endpoint = https.api
              priority = 10
              condition = "http.method == 'GET' && http.body.contains('x')"
              verdict = "deny"
}
rule "all" {
  endpoint = https.api
             verdict = "allow"
}
"#,
    );
    let mut a = http("POST", "/", "xxxx");
    a.truncated = true;
    // `false && unknown` absorbs: the walk continues honestly to the catch-all.
    assert_eq!(rule_of(&p, &a), ("allow".into(), "all".into()));
}

#[test]
fn unknown_outcome_synthesizes_a_deny_with_the_exact_reason() {
    let p = policy(
        r#"
rule "body" {
  endpoint = https.api
              priority = 10
              condition = "http.body.contains('secret')"
              verdict = "allow"
}
"#,
    );
    let mut a = http("POST", "/", "no");
    a.truncated = true;
    let d = p.decide(&a);
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(d.rule.as_deref(), Some("body"));
    assert!(d.synthesized);
    assert_eq!(
        d.reason,
        "rule \"body\" could not be evaluated against this request (truncated at the inspection buffer); failing closed"
    );
}

#[test]
fn absorption_in_the_walk() {
    let p = policy(
        r#"
rule "or" {
  endpoint = postgres.pg
            priority = 20
            condition = "sql.verb == 'select' || sql.database == 'prod'"
            verdict = "allow"
}
rule "and" {
  endpoint = postgres.pg
             priority = 10
             condition = "sql.verb == 'select' && sql.database == 'prod'"
             verdict = "deny"
}
rule "rev" {
  endpoint = postgres.pg
             priority = 5
             condition = "sql.verb == 'delete' && sql.database == 'dev'"
             verdict = "deny"
}
"#,
    );
    // true || unknown = true
    let mut a = sql("select", &[], "prod");
    a.unparseable = true;
    assert_eq!(rule_of(&p, &a), ("allow".into(), "or".into()));
    // unknown || false = unknown → unevaluable
    let mut a = sql("select", &[], "dev");
    a.unparseable = true;
    let d = p.decide(&a);
    assert_eq!(d.rule.as_deref(), Some("or"));
    assert_eq!(
        d.reason,
        "rule \"or\" could not be evaluated against this request (unparseable); failing closed"
    );
    // false && unknown = false, and `unknown && true` = unknown
    let p2 = policy(
        r#"
rule "and" {
  endpoint = postgres.pg
             priority = 10
             condition = "sql.database == 'prod' && sql.verb == 'select'"
             verdict = "deny"
}
"#,
    );
    let mut a = sql("select", &[], "dev");
    a.unparseable = true;
    assert_eq!(p2.decide(&a).verdict, Verdict::Allow);
    let mut a = sql("select", &[], "prod");
    a.unparseable = true;
    a.truncated = true;
    let d = p2.decide(&a);
    assert_eq!(
        d.reason,
        "rule \"and\" could not be evaluated against this request (truncated at the inspection buffer and unparseable); failing closed"
    );
}

#[test]
fn has_on_unknown_is_unknown() {
    let p = policy(
        r#"
rule "guarded" {
  endpoint = https.api
                 condition = "has(http.body_json.archived) && http.body_json.archived == true"
                 verdict = "deny"
}
"#,
    );
    assert_eq!(
        p.decide(&http("POST", "/", r#"{"title":"x"}"#)).verdict,
        Verdict::Allow
    );
    assert_eq!(
        p.decide(&http("POST", "/", r#"{"archived":true}"#)).verdict,
        Verdict::Deny
    );
    let mut a = http("POST", "/", r#"{"title":"x"}"#);
    a.truncated = true;
    let d = p.decide(&a);
    assert!(d.synthesized, "has() must not rescue truncation: {d:?}");
}

#[test]
fn evaluation_errors_fail_closed_and_hide_detail_from_the_agent() {
    let p = policy(
        r#"
rule "json" {
  endpoint = https.api
              priority = 2
              condition = "http.body_json.archived == true"
              verdict = "deny"
}
rule "hdr" {
  endpoint = https.wild
             condition = "http.headers['x-missing'][0] == 'a'"
             verdict = "allow"
}
"#,
    );
    let d = p.decide(&http("POST", "/", r#"{"title":"x"}"#));
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(
        d.reason,
        "rule \"json\" could not be evaluated against this request (evaluation error); failing closed"
    );
    assert!(d.log_detail.as_deref().is_some_and(|s| !s.is_empty()));
    assert!(!d.reason.contains("archived"));
    let d = p.decide(&http("GET", "/", "").with_host("x.example.com"));
    assert_eq!(d.rule.as_deref(), Some("hdr"));
    assert!(d.synthesized);
}

#[test]
fn k8s_params_missing_key_and_guarded_key() {
    let p = policy(
        r#"
rule "unguarded" {
  endpoint = kubernetes.k8s
                   priority = 2
                   condition = "k8s.resource == 'pods/exec' && k8s.params.stdin == 'true'"
                   verdict = "deny"
}
rule "guarded" {
  endpoint = kubernetes.k8s
                 priority = 1
                 condition = "'tty' in k8s.params && k8s.params.tty == 'true'"
                 verdict = "deny"
}
"#,
    );
    assert!(p.decide(&k8s("create", "pods/exec", &[])).synthesized);
    assert_eq!(p.decide(&k8s("get", "pods", &[])).verdict, Verdict::Allow);
    assert_eq!(
        rule_of(&p, &k8s("get", "pods", &[("tty", "true")])),
        ("deny".into(), "guarded".into())
    );
    // Lower-cased literal: 'CREATE' matches the lower-cased verb.
    let p2 = policy(
        r#"
rule "up" {
  endpoint = kubernetes.k8s
            condition = "k8s.verb in ['CREATE']"
            verdict = "deny"
}
"#,
    );
    assert_eq!(
        p2.decide(&k8s("create", "pods", &[])).verdict,
        Verdict::Deny
    );
}

#[test]
fn non_k8s_shaped_requests_deny_on_conditional_rules_only() {
    let p = policy(
        r#"
rule "http-only" {
  endpoint = kubernetes.k8s
                   priority = 5
                   condition = "http.method == 'get'"
                   verdict = "allow"
}
rule "catch" {
  endpoint = kubernetes.k8s
               verdict = "deny"
               reason = "default"
}
"#,
    );
    let unshaped = Action::new(Facts::K8s {
        http: HttpFacts::new("GET", "/foo", BTreeMap::new(), BTreeMap::new(), vec![]),
        k8s: None,
    })
    .with_endpoint("kubernetes.k8s");
    let d = p.decide(&unshaped);
    assert_eq!(d.rule.as_deref(), Some("http-only"));
    assert_eq!(
        d.reason,
        "rule \"http-only\" could not be evaluated against this request (evaluation error); failing closed"
    );
    let p2 = policy(
        r#"
rule "catch" {
  endpoint = kubernetes.k8s
               verdict = "allow"
}
"#,
    );
    assert_eq!(rule_of(&p2, &unshaped), ("allow".into(), "catch".into()));
}

#[test]
fn sql_backstop_only_on_the_fail_closed_entry_point() {
    let p = policy(
        r#"
rule "prod" {
  endpoint = postgres.pg
              condition = "sql.database == 'prod'"
              verdict = "deny"
}
rule "never" {
  endpoint = postgres.pg-empty
               disabled = true
               verdict = "deny"
}
"#,
    );
    let mut a = sql("select", &[], "dev");
    a.unparseable = true;
    assert_eq!(p.decide(&a).verdict, Verdict::Allow);
    let d = p.decide_fail_closed(&a);
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(d.rule, None);
    assert_eq!(
        d.reason,
        "request bytes were unparseable and no rule explicitly allowed the request; failing closed"
    );
    a.truncated = true;
    assert_eq!(
        p.decide_fail_closed(&a).reason,
        "request bytes were truncated at the inspection buffer and unparseable and no rule explicitly allowed the request; failing closed"
    );
    // Fully inspected input never hits the backstop.
    assert_eq!(
        p.decide_fail_closed(&sql("select", &[], "dev")).verdict,
        Verdict::Allow
    );
    // Endpoints with no active rule keep pass-through.
    let mut b = sql("select", &[], "dev").with_endpoint("postgres.pg-empty");
    b.truncated = true;
    assert_eq!(p.decide_fail_closed(&b).verdict, Verdict::Allow);
}

#[test]
fn ssh_rules() {
    let p = policy(
        r#"
rule "no-pty" {
  endpoint = ssh.box
                condition = "ssh.verb == 'PTY' || (ssh.verb == 'forward' && ssh.forward_port == 5432)"
                verdict = "deny"
}
rule "stdin" {
  endpoint = ssh.box
               condition = "ssh.stdin.contains('rm -rf')"
               verdict = "deny"
}
"#,
    );
    let a = |verb: &str, port: i64, stdin: &str| {
        let mut a = Action::new(Facts::Ssh(SshFacts {
            verb: verb.into(),
            forward_port: port,
            stdin: stdin.into(),
            ..Default::default()
        }));
        a.host = "box.example.com:22".into();
        a
    };
    assert_eq!(rule_of(&p, &a("pty", 0, "")).1, "no-pty");
    assert_eq!(rule_of(&p, &a("forward", 5432, "")).1, "no-pty");
    assert_eq!(p.decide(&a("exec", 0, "ls")).verdict, Verdict::Allow);
    let mut t = a("exec", 0, "ls");
    t.truncated = true;
    assert!(p.decide(&t).synthesized);
}

#[test]
fn endpoint_resolution_and_family_checks() {
    let p = policy("");
    assert_eq!(
        p.endpoint_for_host("api.example.com").unwrap(),
        Some("https.api")
    );
    assert_eq!(
        p.endpoint_for_host("API.example.com:443").unwrap(),
        Some("https.api")
    );
    assert_eq!(
        p.endpoint_for_host("x.example.com").unwrap(),
        Some("https.wild")
    );
    assert_eq!(
        p.endpoint_for_host("a.deep.example.com").unwrap(),
        Some("https.deep")
    );
    assert_eq!(
        p.endpoint_for_host("pg.internal").unwrap(),
        Some("postgres.pg")
    );
    assert_eq!(p.endpoint_for_host("pg.internal:5433").unwrap(), None);
    assert_eq!(p.endpoint_for_host("example.com").unwrap(), None);
    assert_eq!(p.endpoint_by_typed_name("https.api").unwrap(), "https.api");
    assert!(p.endpoint_by_typed_name("api").is_err());
    let e = p
        .endpoint_by_typed_name("postgres.api")
        .unwrap_err()
        .to_string();
    assert!(e.contains("is type `https`, not `postgres`"), "{e}");
    // Unknown host: passthrough, no rules.
    let d = p.decide(&http("GET", "/", "").with_host("elsewhere.org"));
    assert_eq!(d.verdict, Verdict::Passthrough);
    // Unknown explicit endpoint and family mismatch fail closed.
    assert_eq!(
        p.decide(&http("GET", "/", "").with_endpoint("https.nope"))
            .verdict,
        Verdict::Deny
    );
    let d = p.decide(&sql("select", &[], "x").with_endpoint("https.api"));
    assert_eq!(d.verdict, Verdict::Deny);
    assert!(d.reason.contains("family http"), "{}", d.reason);
}

#[test]
fn ambiguous_hosts_are_refused() {
    let p = Policy::from_source(
        "amb.hcl",
        r#"
endpoint "https" "a" { hosts = ["same.example.com"] }
endpoint "https" "b" { hosts = ["same.example.com"] }
"#,
    )
    .unwrap();
    let e = p
        .endpoint_for_host("same.example.com")
        .unwrap_err()
        .to_string();
    assert!(e.contains("[https.a https.b]"), "{e}");
    let mut a = http("GET", "/", "");
    a.host = "same.example.com".into();
    assert_eq!(p.decide(&a).verdict, Verdict::Deny);
}

#[test]
fn credential_dispatch_through_the_policy() {
    let p = policy("");
    let hay = ["Bearer ph-ro"];
    let req = DispatchRequest {
        haystack: &hay,
        ..Default::default()
    };
    assert_eq!(
        p.resolve_credential(Some("default"), "https.api", &req),
        Some("pat-ro")
    );
    let none = DispatchRequest::default();
    assert_eq!(
        p.resolve_credential(Some("default"), "https.api", &none),
        Some("pat")
    );
    // Unknown profile: only a sole globally bound credential is used.
    assert_eq!(p.resolve_credential(None, "https.api", &none), None);
    assert_eq!(p.default_profile(), Some("default"));
    assert_eq!(
        p.endpoint_for_host_in_profile("api.example.com", None)
            .unwrap(),
        Some("https.api")
    );
    // The profile binds no credential of https.wild, so it does not see it.
    assert_eq!(
        p.endpoint_for_host_in_profile("x.example.com", None)
            .unwrap(),
        None
    );
}

#[test]
fn decision_json_form() {
    let p = policy(
        r#"
rule "review" {
  endpoint = https.api
                approve = [human_approver.ops]
}
"#,
    );
    let j = p.decide_traced(&http("GET", "/", "")).to_json();
    assert_eq!(j["verdict"], "approve");
    assert_eq!(j["rule"], "review");
    assert_eq!(j["endpoint"], "https.api");
    assert_eq!(j["approvers"][0], "human_approver.ops");
    assert_eq!(j["trace"][0]["result"], "matched (no condition)");
}
