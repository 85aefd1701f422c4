//! One test per error class: exact `file:line:col`, the block, and the wording.

use clawpatrol_core::config::{load_path, load_source, Diagnostic, Severity};

fn errors(src: &str) -> Vec<Diagnostic> {
    match load_source("t.hcl", src) {
        Ok(l) => l
            .diagnostics
            .into_iter()
            .filter(|d| d.severity == Severity::Error)
            .collect(),
        Err(e) => e.errors().cloned().collect(),
    }
}

/// The single error of `src`, asserted to contain `summary` at `pos`.
fn one(src: &str, summary: &str, pos: &str) -> Diagnostic {
    let errs = errors(src);
    assert_eq!(errs.len(), 1, "expected one error, got: {errs:#?}");
    let d = errs.into_iter().next().unwrap();
    assert!(
        d.summary.contains(summary),
        "summary `{}` lacks `{summary}`",
        d.summary
    );
    assert_eq!(d.position().as_deref(), Some(pos), "{d}");
    d
}

const EP: &str = "endpoint \"https\" \"github\" { hosts = [\"api.github.com\"] }\n";

#[test]
fn syntax_error() {
    let d = one(
        "rule \"x\" {\n  verdict = \n}\n",
        "syntax error",
        "t.hcl:2:13",
    );
    assert!(d.detail.is_some());
}

#[test]
fn unknown_block_type() {
    let d = one(
        "\npolicy \"p\" {}\n",
        "unsupported block type `policy`",
        "t.hcl:2:1",
    );
    assert!(d.help.unwrap().contains("`rule`"));
}

#[test]
fn unknown_attribute() {
    let src = format!("{EP}rule \"r\" {{\n  endpoint = https.github\n  verdict = \"allow\"\n  colour = \"red\"\n}}\n");
    let d = one(&src, "unsupported argument `colour`", "t.hcl:5:3");
    assert_eq!(d.block.as_deref(), Some("rule \"r\""));
}

#[test]
fn credential_on_endpoint_is_unsupported() {
    let d = one(
        "endpoint \"https\" \"a\" {\n  hosts = [\"a.test\"]\n  credential = 1\n}\n",
        "unsupported argument `credential`",
        "t.hcl:3:3",
    );
    assert_eq!(d.block.as_deref(), Some("endpoint \"https\" \"a\""));
}

#[test]
fn block_where_attribute_belongs_and_vice_versa() {
    let errs = errors("gateway {\n  limits = {}\n  state_dir { }\n}\n");
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert_eq!(errs[0].summary, "unsupported argument `limits`");
    assert_eq!(errs[0].position().as_deref(), Some("t.hcl:2:3"));
    assert!(errs[0].help.as_ref().unwrap().contains("is a block"));
    assert_eq!(errs[1].summary, "unsupported block type `state_dir`");
    assert_eq!(errs[1].position().as_deref(), Some("t.hcl:3:3"));
}

#[test]
fn wrong_value_type() {
    let d = one(
        "endpoint \"https\" \"a\" {\n  hosts = \"a.test\"\n}\n",
        "expected a list of strings, got a string",
        "t.hcl:2:11",
    );
    assert_eq!(d.block.as_deref(), Some("endpoint \"https\" \"a\""));
    one(
        &format!("{EP}rule \"r\" {{\n  endpoint = https.github\n  priority = \"high\"\n  verdict = \"deny\"\n}}\n"),
        "expected an integer",
        "t.hcl:4:14",
    );
}

#[test]
fn wrong_label_count() {
    let d = one(
        "\n\nendpoint \"github\" {\n}\n",
        "wrong label count for endpoint block",
        "t.hcl:3:1",
    );
    assert!(d.detail.unwrap().contains("got 1"));
}

#[test]
fn unknown_type_label() {
    let d = one(
        "endpoint \"foo\" \"x\" { hosts = [\"x.test\"] }\n",
        "unknown endpoint type `foo`",
        "t.hcl:1:10",
    );
    let help = d.help.unwrap();
    assert!(
        help.starts_with("known endpoint types: `clickhouse_https`, `clickhouse_native`, `https`"),
        "{help}"
    );
}

#[test]
fn unknown_type_still_registers_the_name() {
    // The rule's reference to the unknown-typed endpoint does not cascade into "unknown".
    let errs = errors(
        "endpoint \"foo\" \"x\" {}\nrule \"r\" {\n  endpoint = foo.x\n  verdict = \"allow\"\n}\n",
    );
    assert_eq!(errs[0].summary, "unknown endpoint type `foo`");
}

#[test]
fn undeclared_reference_with_did_you_mean() {
    let src = format!("{EP}rule \"r\" {{\n  endpoint = https.githbu\n  verdict  = \"allow\"\n}}\n");
    let d = one(&src, "unknown endpoint `https.githbu`", "t.hcl:3:14");
    assert_eq!(d.block.as_deref(), Some("rule \"r\""));
    assert_eq!(d.help.as_deref(), Some("did you mean `https.github`?"));
}

#[test]
fn wrong_kind_reference() {
    let src = format!("{EP}credential \"bearer_token\" \"github\" {{ endpoint = https.github }}\nrule \"r\" {{\n  endpoint = bearer_token.github\n  verdict  = \"allow\"\n}}\n");
    let d = one(
        &src,
        "expected an endpoint reference, got a credential reference",
        "t.hcl:4:14",
    );
    assert_eq!(d.help.as_deref(), Some("did you mean `https.github`?"));
}

#[test]
fn bare_name_reference_suggests_typed_form() {
    let src = format!("{EP}rule \"r\" {{\n  endpoint = github\n  verdict  = \"allow\"\n}}\n");
    let d = one(&src, "bare name `github`", "t.hcl:3:14");
    assert_eq!(d.help.as_deref(), Some("write `https.github`"));
}

#[test]
fn quoted_reference_is_rejected() {
    let src = format!("{EP}credential \"bearer_token\" \"p\" {{\n  endpoint = \"github\"\n}}\n");
    let d = one(
        &src,
        "quoted string where an endpoint reference is expected",
        "t.hcl:3:14",
    );
    assert_eq!(
        d.help.as_deref(),
        Some("drop the quotes: write `https.github`")
    );
}

#[test]
fn duplicate_names_within_a_kind() {
    let src = format!("{EP}\nendpoint \"postgres\" \"github\" {{ host = \"pg:5432\" }}\n");
    let d = one(&src, "duplicate endpoint name `github`", "t.hcl:3:21");
    assert_eq!(
        d.detail.as_deref(),
        Some("endpoint `github` is already declared at t.hcl:1:18")
    );
}

#[test]
fn duplicate_across_files_names_both_positions() {
    let dir = std::env::temp_dir().join(format!("cp-dup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("a.hcl"),
        "rule \"r\" {\n  endpoint = https.e\n  verdict = \"allow\"\n}\n",
    )
    .unwrap();
    std::fs::write(dir.join("b.hcl"), "endpoint \"https\" \"e\" { hosts = [\"e.test\"] }\n\nrule \"r\" {\n  endpoint = https.e\n  verdict = \"deny\"\n}\n").unwrap();
    let l = load_path(&dir).unwrap();
    let errs: Vec<_> = l
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let b = dir.join("b.hcl").display().to_string();
    let a = dir.join("a.hcl").display().to_string();
    assert_eq!(errs[0].summary, "duplicate rule name `r`");
    assert_eq!(errs[0].position(), Some(format!("{b}:3:6")));
    assert_eq!(
        errs[0].detail,
        Some(format!("rule `r` is already declared at {a}:1:6"))
    );
    assert_eq!(l.config.rules.len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn same_name_in_two_kinds_is_ok() {
    let src = format!("{EP}credential \"bearer_token\" \"github\" {{ endpoint = https.github }}\nrule \"github\" {{\n  endpoint = https.github\n  verdict = \"allow\"\n}}\nprofile \"github\" {{ credentials = [bearer_token.github] }}\n");
    assert!(errors(&src).is_empty(), "{:#?}", errors(&src));
}

#[test]
fn mixed_families() {
    let src = format!("{EP}endpoint \"postgres\" \"pg\" {{ host = \"pg:5432\" }}\nrule \"x\" {{\n  endpoints = [https.github, postgres.pg]\n  verdict   = \"allow\"\n}}\n");
    let d = one(
        &src,
        "rule `x` targets endpoints from mixed families",
        "t.hcl:4:15",
    );
    assert!(d.detail.unwrap().contains("[http sql]"));
    assert_eq!(d.block.as_deref(), Some("rule \"x\""));
}

#[test]
fn both_verdict_and_approve() {
    let src = format!("{EP}approver \"human_approver\" \"ops\" {{ channel = \"#ops\" }}\nrule \"x\" {{\n  endpoint = https.github\n  verdict  = \"allow\"\n  approve  = [human_approver.ops]\n}}\n");
    one(
        &src,
        "both verdict and approve set on rule `x`",
        "t.hcl:6:14",
    );
}

#[test]
fn neither_verdict_nor_approve() {
    let src = format!("{EP}rule \"x\" {{\n  endpoint = https.github\n  approve  = []\n}}\n");
    let d = one(&src, "rule `x` has no outcome", "t.hcl:2:1");
    assert_eq!(d.block.as_deref(), Some("rule \"x\""));
}

#[test]
fn invalid_verdict() {
    let src = format!("{EP}rule \"x\" {{\n  endpoint = https.github\n  verdict  = \"maybe\"\n}}\n");
    one(&src, "invalid verdict `maybe` on rule `x`", "t.hcl:4:14");
}

#[test]
fn malformed_hosts() {
    for (host, col) in [
        ("a.test:", 12),
        ("a.test:99999", 12),
        ("https://a.test", 12),
        ("*.com", 12),
        ("foo.*.com", 12),
        ("[zz]:443", 12),
        ("", 12),
    ] {
        let src =
            format!("endpoint \"https\" \"e\" {{\n  hosts = [\"ok.test\",\n    \"{host}\"]\n}}\n");
        let errs = errors(&src);
        assert_eq!(errs.len(), 1, "{host}: {errs:#?}");
        assert_eq!(errs[0].summary, "malformed host on endpoint `e`", "{host}");
        assert_eq!(
            errs[0].position(),
            Some(format!("t.hcl:3:{}", col - 7)),
            "{host}"
        );
    }
}

#[test]
fn kubernetes_server_url_is_malformed() {
    one(
        "endpoint \"kubernetes\" \"k\" {\n  server = \"https://k.test\"\n}\n",
        "malformed host on endpoint `k`",
        "t.hcl:2:12",
    );
}

#[test]
fn duplicate_host_case_insensitive() {
    let d = one(
        "endpoint \"https\" \"e\" {\n  hosts = [\"A.test\", \"a.TEST\"]\n}\n",
        "duplicate host on endpoint `e`",
        "t.hcl:2:22",
    );
    assert_eq!(
        d.detail.as_deref(),
        Some("`a.TEST` is already listed at t.hcl:2:12")
    );
}

#[test]
fn bad_duration() {
    let d = one(
        "gateway {\n  dashboard_session_ttl = \"5 minutes\"\n}\n",
        "invalid duration for `dashboard_session_ttl`",
        "t.hcl:2:27",
    );
    assert_eq!(d.block.as_deref(), Some("gateway"));
    one(
        "tunnel \"local_command\" \"t\" {\n  command = [\"x\"]\n  listen = \"127.0.0.1:1\"\n  keepalive = \"-5m\"\n}\n",
        "invalid keepalive on tunnel `t`",
        "t.hcl:4:15",
    );
}

#[test]
fn bad_size() {
    let d = one(
        "gateway {\n  limits {\n    body_buffer = \"1TB\"\n  }\n}\n",
        "invalid limits.body_buffer",
        "t.hcl:3:19",
    );
    assert!(d.detail.unwrap().contains("unknown unit `TB`"));
    one(
        "gateway {\n  limits {\n    body_storage = \"0\"\n  }\n}\n",
        "invalid limits.body_storage",
        "t.hcl:3:20",
    );
}

#[test]
fn schema_version_too_new_is_fatal() {
    let err = load_source("t.hcl", "rule \"x\" {}\nschema_version = 999\n").unwrap_err();
    assert_eq!(err.diagnostics.len(), 1);
    let d = &err.diagnostics[0];
    assert_eq!(d.summary, "config schema_version too new");
    assert_eq!(d.position().as_deref(), Some("t.hcl:2:18"));
    assert!(d.detail.as_ref().unwrap().contains("schema_version = 999"));
    let err = load_source("t.hcl", "schema_version = \"1\"\n").unwrap_err();
    assert_eq!(err.diagnostics[0].summary, "invalid schema_version");
    let err = load_source("t.hcl", "schema_version = -1\n").unwrap_err();
    assert_eq!(err.diagnostics[0].summary, "config schema_version too old");
}

#[test]
fn disambiguator_not_allowed() {
    let src = format!("{EP}credential \"aws_credential\" \"aws\" {{\n  endpoint    = https.github\n  placeholder = \"x\"\n}}\n");
    let d = one(
        &src,
        "credential `aws`: `placeholder` is not a disambiguator for type `aws_credential`",
        "t.hcl:4:17",
    );
    assert!(d.detail.unwrap().starts_with("(none"));
    let src = format!("{EP}credential \"bearer_token\" \"a\" {{ endpoint = https.github }}\ncredential \"bearer_token\" \"b\" {{ endpoint = https.github }}\nprofile \"p\" {{\n  credentials = [bearer_token.a, {{ credential = bearer_token.b, user = \"u\" }}]\n}}\n");
    let d = one(
        &src,
        "profile `p`: `user` is not a disambiguator for credential `b` (type `bearer_token`)",
        "t.hcl:5:65",
    );
    assert_eq!(d.block.as_deref(), Some("profile \"p\""));
}

#[test]
fn profile_dispatch_conflicts() {
    let base = format!("{EP}credential \"bearer_token\" \"a\" {{ endpoint = https.github }}\ncredential \"bearer_token\" \"b\" {{ endpoint = https.github }}\ncredential \"bearer_token\" \"c\" {{\n  endpoint = https.github\n  placeholder = \"ph\"\n}}\n");
    // Two catch-alls on one endpoint.
    let src = format!(
        "{base}profile \"p\" {{\n  credentials = [bearer_token.a,\n    bearer_token.b]\n}}\n"
    );
    let d = one(
        &src,
        "profile `p`: multiple no-constraint credentials bind endpoint `github`",
        "t.hcl:10:5",
    );
    assert!(d.detail.unwrap().contains("at most one fallback"));
    // Identical merged constraints.
    let src = format!("{base}profile \"p\" {{\n  credentials = [bearer_token.c,\n    {{ credential = bearer_token.a, placeholder = \"ph\" }}]\n}}\n");
    one(
        &src,
        "profile `p`: duplicate dispatch constraint <placeholder=\"ph\"> on endpoint `github`",
        "t.hcl:10:5",
    );
    // Inline disambiguator on the only credential binding its endpoint.
    let src = format!("{base}profile \"p\" {{\n  credentials = [{{ credential = bearer_token.a, placeholder = \"x\" }}]\n}}\n");
    one(&src, "profile `p`: profile-side disambiguator set on credential `a` with unique endpoint binding", "t.hcl:9:18");
}

#[test]
fn tunnel_via_cycle() {
    let src = "credential \"ssh_key\" \"k\" {}\n\
tunnel \"ssh_port_forward\" \"a\" {\n  via = ssh_port_forward.b\n  user = \"u\"\n  credential = ssh_key.k\n}\n\
tunnel \"ssh_port_forward\" \"b\" {\n  via = ssh_port_forward.a\n  user = \"u\"\n  credential = ssh_key.k\n}\n";
    let d = one(
        src,
        "tunnel `a`: via chain forms a cycle (visits `a` twice)",
        "t.hcl:3:9",
    );
    assert_eq!(
        d.block.as_deref(),
        Some("tunnel \"ssh_port_forward\" \"a\"")
    );
}

#[test]
fn unreadable_file_include() {
    let d = one(
        "endpoint \"https\" \"e\" {\n  hosts   = [\"e.test\"]\n  ca_cert = \"<<file:/nonexistent/ca.pem>>\"\n}\n",
        "cannot inline file `/nonexistent/ca.pem`",
        "t.hcl:3:13",
    );
    assert_eq!(d.block.as_deref(), Some("endpoint \"https\" \"e\""));
    one(
        "endpoint \"https\" \"e\" {\n  hosts   = [\"e.test\"]\n  ca_cert = \"<<file:ca.pem\"\n}\n",
        "unterminated `<<file:...>>` marker",
        "t.hcl:3:13",
    );
}

#[test]
fn string_templates_are_rejected() {
    let d = one(
        "endpoint \"https\" \"e\" {\n  hosts = [\"e.test\"]\n  description = \"${1}\"\n}\n",
        "string templates are not supported",
        "t.hcl:3:17",
    );
    assert!(d.help.unwrap().contains("$${"));
}

#[test]
fn duplicate_gateway_across_files() {
    let dir = std::env::temp_dir().join(format!("cp-gw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.hcl"), "gateway {}\n").unwrap();
    std::fs::write(dir.join("b.hcl"), "\ngateway {}\n").unwrap();
    let l = load_path(&dir).unwrap();
    let b = dir.join("b.hcl").display().to_string();
    assert_eq!(l.diagnostics.len(), 1);
    assert_eq!(l.diagnostics[0].summary, "duplicate gateway block");
    assert_eq!(l.diagnostics[0].position(), Some(format!("{b}:2:1")));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn syntax_errors_of_every_file_are_reported() {
    let dir = std::env::temp_dir().join(format!("cp-syn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.hcl"), "rule {\n").unwrap();
    std::fs::write(dir.join("b.hcl"), "x = = 1\n").unwrap();
    let err = load_path(&dir).unwrap_err();
    assert_eq!(err.diagnostics.len(), 2);
    assert!(err.diagnostics.iter().all(|d| d.summary == "syntax error"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn independent_errors_are_all_reported_in_source_order() {
    let src = "\
endpoint \"https\" \"a\" { hosts = [\"a.test:\"] }\n\
endpoint \"bogus\" \"b\" {}\n\
rule \"r1\" {\n  endpoint = https.nope\n  verdict = \"allow\"\n}\n\
rule \"r2\" {\n  endpoint = https.a\n  verdict = \"perhaps\"\n}\n\
gateway {\n  session_keep = \"-1h\"\n}\n";
    let errs = errors(src);
    let got: Vec<_> = errs
        .iter()
        .map(|d| (d.position().unwrap(), d.summary.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("t.hcl:1:33".to_string(), "malformed host on endpoint `a`"),
            ("t.hcl:2:10".to_string(), "unknown endpoint type `bogus`"),
            ("t.hcl:4:14".to_string(), "unknown endpoint `https.nope`"),
            (
                "t.hcl:9:13".to_string(),
                "invalid verdict `perhaps` on rule `r2`"
            ),
            ("t.hcl:12:18".to_string(), "invalid session_keep"),
        ]
    );
}
