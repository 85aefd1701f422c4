//! Loading valid configs: the reference's minimal config, directories, `<<file:>>`, every type.

use std::path::{Path, PathBuf};

use clawpatrol_core::config::model::{AttrValue, Outcome, UnknownHost};
use clawpatrol_core::config::{load_path, load_source, Loaded, Severity};
use clawpatrol_core::Family;

fn data(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(p)
}

fn clean(l: &Loaded) {
    let errs: Vec<String> = l
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.to_string())
        .collect();
    assert!(errs.is_empty(), "unexpected errors:\n{}", errs.join("\n"));
}

#[test]
fn minimal_config_decodes_to_the_model() {
    // The bundled copy of the reference's minimal config, with a `public_url` that needs
    // trimming (surrounding whitespace and a trailing `/` are dropped at load).
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/examples/minimal/policy.hcl"),
    )
    .unwrap()
    .replace(
        "\"https://gw.example.test\"",
        "\"https://gw.example.test/ \"",
    );
    assert!(text.contains("gw.example.test/ "));
    let l = load_source("minimal.hcl", &text).unwrap();
    clean(&l);
    assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
    let c = &l.config;
    assert_eq!(c.schema_version, Some(1));
    let g = c.gateway.as_ref().unwrap();
    assert_eq!(g.public_url.as_deref(), Some("https://gw.example.test"));
    assert_eq!(g.state_dir.as_deref(), Some("/opt/clawpatrol"));
    assert_eq!(g.wireguard.as_ref().unwrap().subnet_cidr, "10.55.0.0/24");
    assert_eq!(g.wireguard.as_ref().unwrap().listen_port, 51820);
    assert_eq!(g.body_buffer, 1 << 20);
    assert_eq!(g.dashboard_session_ttl_secs, 86400);

    let names: Vec<_> = c.endpoints.iter().map(|e| e.typed_name()).collect();
    assert_eq!(names, ["https.github", "postgres.pg"]);
    assert_eq!(c.endpoints[0].family, Family::Http);
    assert_eq!(c.endpoints[0].hosts[0].host, "api.github.com");
    assert_eq!(c.endpoints[1].family, Family::Sql);
    assert_eq!(c.endpoints[1].hosts[0].port, Some(5432));

    assert_eq!(c.credentials.len(), 2);
    assert_eq!(c.credentials[0].endpoints, ["github"]);
    assert_eq!(c.credentials[1].kind, "postgres_credential");
    assert_eq!(c.credentials[1].disambiguators["user"], "agent_ro");

    assert_eq!(
        c.approvers[0].attrs["channel"],
        AttrValue::Str("#ops".into())
    );

    let rules: Vec<_> = c.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(rules, ["github-reads", "github-writes", "pg-default"]);
    let r0 = &c.rules[0];
    assert_eq!(r0.endpoints, [0]);
    assert_eq!(r0.family, Family::Http);
    assert_eq!(r0.outcome, Outcome::Allow);
    let cond = r0.condition.as_ref().unwrap();
    assert_eq!(cond.text, "http.method in ['GET', 'HEAD']");
    let start = cond.content_start.unwrap();
    assert_eq!(
        &c.sources[0].text()[start..start + cond.text.len()],
        cond.text
    );
    assert_eq!(
        c.rules[1].outcome,
        Outcome::Approve(vec!["human_approver.ops".into()])
    );
    assert_eq!(c.rules[2].priority, -100);
    assert_eq!(c.rules[2].outcome, Outcome::Deny);
    assert_eq!(
        c.rules[2].reason.as_deref(),
        Some("explicit allow required")
    );
    assert_eq!(c.rules[2].family, Family::Sql);

    assert_eq!(c.profiles[0].name, "default");
    let creds: Vec<_> = c.profiles[0]
        .credentials
        .iter()
        .map(|e| e.credential.as_str())
        .collect();
    assert_eq!(creds, ["github_pat", "pg-ro"]);
}

#[test]
fn no_gateway_is_fine_and_escaped_condition_has_no_content_start() {
    let l = load_source(
        "t.hcl",
        r#"endpoint "https" "a" { hosts = ["a.test"] }
rule "r" {
  endpoint  = https.a
  condition = "http.path == \"/x\""
  verdict   = "allow"
}"#,
    )
    .unwrap();
    clean(&l);
    assert!(l.config.gateway.is_none());
    let c = l.config.rules[0].condition.as_ref().unwrap();
    assert_eq!(c.text, "http.path == \"/x\"");
    assert_eq!(c.content_start, None);
}

#[test]
fn directory_loads_in_name_order() {
    let l = load_path(&data("multi")).unwrap();
    clean(&l);
    let c = &l.config;
    assert_eq!(c.sources.len(), 2);
    assert!(c.sources[0].name().ends_with("10-endpoints.hcl"));
    let rules: Vec<_> = c.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(rules, ["z-zero", "b-first", "a-second"]);
}

#[test]
fn empty_directory_is_an_error_naming_it() {
    let dir = std::env::temp_dir().join(format!("cp-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let err = load_path(&dir).unwrap_err();
    let d = err.first().unwrap();
    assert_eq!(d.summary, "no HCL config files found");
    assert!(d
        .detail
        .as_ref()
        .unwrap()
        .contains(&dir.display().to_string()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn file_markers_are_inlined() {
    let l = load_path(&data("full")).unwrap();
    clean(&l);
    let pem = std::fs::read_to_string(data("ca.pem")).unwrap();
    let internal = l
        .config
        .endpoints
        .iter()
        .find(|e| e.name == "internal")
        .unwrap();
    assert_eq!(internal.attrs["ca_cert"], AttrValue::Str(pem.clone()));
    let eks = l.config.endpoints.iter().find(|e| e.name == "eks").unwrap();
    assert_eq!(eks.attrs["ca_cert"], AttrValue::Str(pem.clone()));
    let kpf = l.config.tunnels.iter().find(|t| t.name == "kpf").unwrap();
    assert_eq!(kpf.attrs["ca_cert"], AttrValue::Str(pem));
}

#[test]
fn every_type_loads_with_its_attributes() {
    let l = load_path(&data("full")).unwrap();
    clean(&l);
    assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
    let c = &l.config;
    let g = c.gateway.as_ref().unwrap();
    assert_eq!(g.body_buffer, 2 << 20);
    assert_eq!(g.body_storage, 8192);
    assert_eq!(g.session_keep_secs, Some(5400));
    assert_eq!(g.actions_keep_secs, None);
    assert_eq!(g.dashboard_session_ttl_secs, 12 * 3600);
    assert_eq!(g.genai_telemetry, Some(true));
    assert_eq!(g.proxy_listen.as_deref(), Some("127.0.0.1:3128"));
    assert_eq!(g.tailscale.as_ref().unwrap().operators.len(), 2);
    assert_eq!(g.wireguard.as_ref().unwrap().listen_port, 51821);
    assert_eq!(c.defaults.unknown_host, UnknownHost::Deny);
    assert_eq!(c.defaults.profile.as_deref(), Some("dev"));
    assert_eq!(c.defaults.human_timeout_secs, 120);
    assert_eq!(c.plugins[0].provenance, "require");

    let kinds: Vec<_> = c.endpoints.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "https",
            "https",
            "openai_codex_https",
            "kubernetes",
            "postgres",
            "clickhouse_native",
            "clickhouse_https",
            "ssh"
        ]
    );
    let gh = &c.endpoints[0];
    assert_eq!(gh.hosts.len(), 3);
    assert!(gh.hosts[1].wildcard);
    assert_eq!(gh.retention_secs, Some(Some(168 * 3600)));
    assert_eq!(gh.description.as_deref(), Some("GitHub API"));
    let eks = &c.endpoints[3];
    assert_eq!(eks.family, Family::K8s);
    assert_eq!(eks.hosts[0].host, "abc.gr7.us-east-1.eks.amazonaws.com");
    assert_eq!(eks.tunnel.as_deref(), Some("kpf"));
    let pg = &c.endpoints[4];
    assert_eq!(pg.retention_secs, Some(None));
    assert_eq!(pg.attrs["sslmode"], AttrValue::Str("verify-full".into()));
    assert_eq!(pg.attrs["agent_tls"], AttrValue::Bool(true));
    assert_eq!(pg.attrs["listen"], AttrValue::Str("127.0.0.1:5433".into()));
    let ch = &c.endpoints[5];
    let raw: Vec<_> = ch.hosts.iter().map(|h| h.raw.as_str()).collect();
    assert_eq!(raw, ["ch1.internal:9440", "ch2.internal:9441"]);
    assert_eq!(c.endpoints[7].family, Family::Ssh);

    assert_eq!(c.credentials.len(), 23);
    let anth = &c.credentials[0];
    assert_eq!(anth.disambiguators["placeholder"], "sk-ant-placeholder");
    let pat = c.credentials.iter().find(|x| x.name == "pat").unwrap();
    assert_eq!(pat.endpoints, ["github", "internal"]);
    assert_eq!(pat.attrs["idempotency_key"], AttrValue::Bool(true));
    let chc = c.credentials.iter().find(|x| x.name == "chc").unwrap();
    assert_eq!(chc.disambiguators.len(), 2);
    let hdr = c.credentials.iter().find(|x| x.name == "hdr").unwrap();
    assert_eq!(hdr.attrs["header"], AttrValue::Str("X-Api-Key".into()));

    let judge = &c.approvers[0];
    assert_eq!(
        judge.attrs["policy"],
        AttrValue::Str("Allow read-only requests.\nDeny anything else.\n".into())
    );
    assert_eq!(judge.attrs["credential"], AttrValue::Str("anth".into()));
    let ops = &c.approvers[1];
    assert!(
        matches!(&ops.attrs["async_grant"], AttrValue::Block(b) if b["max_body_bytes"] == AttrValue::Int(65536))
    );

    let t: Vec<_> = c
        .tunnels
        .iter()
        .map(|t| (t.kind.as_str(), t.share.as_str(), t.keepalive_secs))
        .collect();
    assert_eq!(
        t,
        [
            ("local_command", "singleton", None),
            ("ssh_port_forward", "per_conn", Some(600)),
            ("ssh_port_forward", "singleton", Some(300)),
            ("kubernetes_port_forward", "per_endpoint", Some(300)),
            ("tailscale", "singleton", Some(0)),
        ]
    );
    assert_eq!(c.tunnels[2].via.as_deref(), Some("bastion"));
    assert!(matches!(&c.tunnels[0].attrs["env"], AttrValue::Map(m) if m.len() == 1));

    let r = &c.rules[0];
    assert_eq!(r.endpoints, [0, 1]);
    assert_eq!(r.credential.as_deref(), Some("pat"));
    let w = &c.rules[1];
    assert!(w.disabled);
    assert_eq!(w.priority, 10);
    assert_eq!(
        w.condition.as_ref().unwrap().text,
        "http.method == \"POST\"\n"
    );
    assert_eq!(w.condition.as_ref().unwrap().content_start, None);
    assert_eq!(
        w.outcome,
        Outcome::Approve(vec![
            "llm_approver.judge".into(),
            "human_approver.ops".into(),
            "builtin.dashboard".into()
        ])
    );
    let p = &c.profiles[0];
    assert!(p.hitl_async_grants);
    assert_eq!(p.credentials[4].credential, "pg-rw");
    assert_eq!(p.credentials[4].disambiguators["database"], "app2");
}
