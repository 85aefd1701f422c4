//! The bundled example configs (the reference's minimal config, the rules documentation's
//! examples with the endpoint grammar corrected, the benchmark policy) all load.

use std::path::PathBuf;

use clawpatrol_core::{Policy, Verdict};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/examples")
}

fn load(rel: &str) -> Policy {
    let path = examples().join(rel);
    Policy::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn minimal_reference_config_loads() {
    let p = load("minimal/policy.hcl");
    assert_eq!(
        p.endpoint_names().collect::<Vec<_>>(),
        ["https.github", "postgres.pg"]
    );
    assert!(p.warnings().is_empty(), "{:?}", p.warnings());
}

#[test]
fn rules_documentation_examples_load() {
    for f in [
        "http.hcl",
        "k8s.hcl",
        "sql.hcl",
        "clickhouse.hcl",
        "ssh.hcl",
    ] {
        load(&format!("rules-doc/{f}"));
    }
    let k = load("rules-doc/k8s.hcl");
    assert_eq!(
        k.rules_for("kubernetes.k8s-dev").unwrap(),
        [
            "k8s-no-secrets",
            "k8s-no-interactive",
            "k8s-no-mutations",
            "k8s-reads",
            "k8s-debug-pods",
            "k8s-dev-default"
        ]
    );
}

#[test]
fn benchmark_policy_is_large_enough() {
    let p = load("platform/policy.hcl");
    let c = p.config();
    assert!(c.rules.len() >= 50, "{} rules", c.rules.len());
    let families: std::collections::BTreeSet<_> = c.endpoints.iter().map(|e| e.family).collect();
    assert_eq!(families.len(), 4);
    let a = clawpatrol_core::Action::from_json(&serde_json::json!({
        "host": "api.github.com",
        "http": {"method": "DELETE", "path": "/repos/acme/app"}
    }))
    .unwrap();
    let d = p.decide(&a);
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(d.rule.as_deref(), Some("gh-no-repo-delete"));
}
