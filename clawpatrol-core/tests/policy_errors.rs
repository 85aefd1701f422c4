//! Load errors found while compiling conditions (reference §1.16 step 11), each located at
//! file:line:col, and reported together with the loader's own errors.

use clawpatrol_core::{ConfigError, Policy};

const HEAD: &str = r#"endpoint "https" "gh" { hosts = ["api.github.com"] }
endpoint "postgres" "pg" { host = "pg.internal:5432" }
"#;

fn errors(body: &str) -> ConfigError {
    match Policy::from_source("p.hcl", &format!("{HEAD}{body}")) {
        Ok(_) => panic!("config loaded but should not:\n{body}"),
        Err(e) => e,
    }
}

/// (position, summary, detail) of every error.
fn list(e: &ConfigError) -> Vec<(String, String, String)> {
    e.errors()
        .map(|d| {
            (
                d.position().unwrap_or_default(),
                d.summary.clone(),
                d.detail.clone().unwrap_or_default(),
            )
        })
        .collect()
}

fn one(body: &str) -> (String, String, String) {
    let e = errors(body);
    let l = list(&e);
    assert_eq!(l.len(), 1, "{e}");
    let d = e.first().expect("an error");
    assert_eq!(d.block.as_deref(), Some("rule \"r\""), "{e}");
    assert!(d
        .location
        .as_ref()
        .is_some_and(|l| !l.source_line.is_empty()));
    l.into_iter().next().expect("one")
}

#[test]
fn invalid_cel_syntax() {
    let (pos, summary, _) = one(
        "rule \"r\" {\n  endpoint  = https.gh\n  condition = \"http.method ==\"\n  verdict   = \"allow\"\n}\n",
    );
    assert!(pos.starts_with("p.hcl:5:"), "{pos}");
    assert_eq!(summary, "invalid CEL condition on rule `r`");
}

#[test]
fn field_of_another_family() {
    let (pos, _, detail) = one(
        "rule \"r\" {\n  endpoint  = https.gh\n  condition = \"sql.verb == 'select'\"\n  verdict   = \"allow\"\n}\n",
    );
    assert_eq!(pos, "p.hcl:5:16");
    assert!(detail.contains("sql"), "{detail}");
}

#[test]
fn unknown_field_of_the_family() {
    let (pos, _, detail) = one(
        "rule \"r\" {\n  endpoint  = postgres.pg\n  condition = \"sql.verbs == 'select'\"\n  verdict   = \"allow\"\n}\n",
    );
    assert!(pos.starts_with("p.hcl:5:"), "{pos}");
    assert!(detail.contains("verbs"), "{detail}");
}

#[test]
fn non_boolean_condition() {
    let (pos, _, detail) = one(
        "rule \"r\" {\n  endpoint  = https.gh\n  condition = \"http.path\"\n  verdict   = \"allow\"\n}\n",
    );
    assert!(pos.starts_with("p.hcl:5:"), "{pos}");
    assert!(detail.contains("must yield bool"), "{detail}");
}

#[test]
fn invalid_regex_literal() {
    let (pos, _, detail) = one(
        "rule \"r\" {\n  endpoint  = https.gh\n  condition = \"http.path.matches('(unclosed')\"\n  verdict   = \"allow\"\n}\n",
    );
    assert!(pos.starts_with("p.hcl:5:"), "{pos}");
    assert!(
        detail.to_lowercase().contains("regex") || detail.contains("unclosed"),
        "{detail}"
    );
}

#[test]
fn heredoc_condition_errors_point_at_the_attribute() {
    let (pos, _, _) = one(
        "rule \"r\" {\n  endpoint  = https.gh\n  condition = <<-CEL\n    http.nope == 'x'\n  CEL\n  verdict   = \"allow\"\n}\n",
    );
    assert!(pos.starts_with("p.hcl:5:"), "{pos}");
}

#[test]
fn cel_errors_and_loader_errors_are_reported_together() {
    let e = errors(
        "rule \"r\" {\n  endpoint  = https.gh\n  condition = \"http.nope\"\n  verdict   = \"allow\"\n}\n\
         rule \"s\" {\n  endpoint = https.nope\n  verdict  = \"deny\"\n}\n\
         rule \"t\" {\n  endpoint  = postgres.pg\n  condition = \"sql.verb in ['select'] && http.method == 'get'\"\n  verdict   = \"deny\"\n}\n\
         rule \"u\" {\n  endpoint = postgres.pg\n  approve  = []\n}\n",
    );
    let l = list(&e);
    let positions: Vec<&str> = l.iter().map(|(p, _, _)| p.as_str()).collect();
    assert!(l.len() >= 4, "{e}");
    assert!(
        positions.iter().any(|p| p.starts_with("p.hcl:5:")),
        "{positions:?}"
    );
    assert!(
        positions.iter().any(|p| p.starts_with("p.hcl:9:")),
        "{positions:?}"
    );
    assert!(
        positions.iter().any(|p| p.starts_with("p.hcl:14:")),
        "{positions:?}"
    );
    assert!(
        positions.iter().any(|p| p.starts_with("p.hcl:17:")),
        "{positions:?}"
    );
    let mut sorted = positions.clone();
    sorted.sort_by_key(|p| {
        p.split(':')
            .skip(1)
            .map(|n| n.parse::<usize>().unwrap_or(0))
            .collect::<Vec<_>>()
    });
    assert_eq!(positions, sorted, "errors come in source order");
    assert!(e
        .to_string()
        .ends_with(&format!("{} errors in config", l.len())));
}

#[test]
fn no_schema_version_warning_only_on_clean_loads() {
    let p = Policy::from_source("p.hcl", HEAD).expect("loads");
    assert_eq!(p.warnings().len(), 1);
    assert_eq!(p.warnings()[0].summary, "no schema_version declared");
    let p = Policy::from_source("p.hcl", &format!("schema_version = 1\n{HEAD}")).expect("loads");
    assert!(p.warnings().is_empty());
}
