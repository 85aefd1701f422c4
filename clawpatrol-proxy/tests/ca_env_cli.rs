//! `clawpatrol ca` and `clawpatrol env`, run as a user would, in a temporary state directory.

use std::path::Path;
use std::process::{Command, Output};

fn clawpatrol(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clawpatrol"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run clawpatrol")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write_config(dir: &Path, body: &str) -> String {
    let file = dir.join("policy.hcl");
    std::fs::write(&file, body).expect("write config");
    file.to_str().expect("utf8 path").to_string()
}

const POLICY: &str = r#"
schema_version = 1
endpoint "https" "gh" { hosts = ["api.github.com"] }
credential "github_oauth" "gh" {
  endpoint    = https.gh
  placeholder = "ghp_agent_placeholder"
}
profile "dev" { credentials = [github_oauth.gh] }
"#;

#[test]
fn ca_creates_prints_and_keeps_the_ca() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = tmp.path().join("state");
    let state_s = state.to_str().expect("utf8");
    let out = clawpatrol(&["ca", "--state-dir", state_s]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let o = text(&out.stdout);
    let ca_pem = state.join("ca.pem");
    assert!(
        o.contains(&format!("certificate: {}", ca_pem.display())),
        "{o}"
    );
    let fp_line = o
        .lines()
        .find(|l| l.starts_with("sha256 fingerprint: "))
        .expect("fingerprint line");
    let fp = &fp_line["sha256 fingerprint: ".len()..];
    assert_eq!(fp.len(), 95, "{fp}");
    assert!(o.contains("-----BEGIN CERTIFICATE-----"), "{o}");
    assert!(state.join("ca-key.pem").is_file());

    // openssl reads the certificate and agrees on subject and fingerprint.
    let subject = Command::new("openssl")
        .args([
            "x509",
            "-in",
            ca_pem.to_str().expect("utf8"),
            "-noout",
            "-subject",
        ])
        .output()
        .expect("run openssl");
    assert!(subject.status.success(), "{}", text(&subject.stderr));
    assert!(
        text(&subject.stdout).contains("clawpatrol gateway CA"),
        "{}",
        text(&subject.stdout)
    );
    let openssl_fp = Command::new("openssl")
        .args([
            "x509",
            "-in",
            ca_pem.to_str().expect("utf8"),
            "-noout",
            "-fingerprint",
            "-sha256",
        ])
        .output()
        .expect("run openssl");
    assert!(
        text(&openssl_fp.stdout).contains(fp),
        "{}",
        text(&openssl_fp.stdout)
    );

    // A second run loads the same CA.
    let again = clawpatrol(&["ca", "--state-dir", state_s]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert!(text(&again.stdout).contains(fp_line));
}

#[test]
fn ca_reports_a_corrupt_ca_with_exit_2() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = tmp.path().join("state");
    let state_s = state.to_str().expect("utf8");
    assert_eq!(
        clawpatrol(&["ca", "--state-dir", state_s]).status.code(),
        Some(0)
    );
    std::fs::write(state.join("ca.pem"), "broken").expect("write");
    let out = clawpatrol(&["ca", "--state-dir", state_s]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("ca.pem"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(state.join("ca.pem")).expect("read"),
        "broken"
    );
}

#[test]
fn ca_uses_the_config_state_dir() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = tmp.path().join("from-config");
    let config = write_config(
        tmp.path(),
        &format!(
            "schema_version = 1\ngateway {{\n  state_dir = \"{}\"\n}}\n",
            state.display()
        ),
    );
    let out = clawpatrol(&["ca", "--config", &config]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(state.join("ca.pem").is_file());
}

#[test]
fn env_prints_proxy_ca_and_placeholders() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = tmp.path().join("state");
    let state_s = state.to_str().expect("utf8");
    let config = write_config(tmp.path(), POLICY);
    let out = clawpatrol(&["env", "--state-dir", state_s, &config]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let o = text(&out.stdout);

    let tokens: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(state.join("tokens.json")).expect("tokens.json"),
    )
    .expect("json");
    let token = tokens["dev"].as_str().expect("dev token");
    assert_eq!(token.len(), 64);
    let proxy = format!("\"http://dev:{token}@127.0.0.1:8080\"");
    for name in ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"] {
        assert!(
            o.contains(&format!("export {name}={proxy}\n")),
            "{name}: {o}"
        );
    }
    assert!(
        o.contains("export NO_PROXY=\"localhost,127.0.0.1,::1\"\n"),
        "{o}"
    );
    let bundle = state.join("ca-bundle.pem");
    for name in [
        "SSL_CERT_FILE",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "GIT_SSL_CAINFO",
        "DENO_CERT",
        "PIP_CERT",
        "AWS_CA_BUNDLE",
    ] {
        assert!(
            o.contains(&format!("export {name}=\"{}\"\n", bundle.display())),
            "{name}: {o}"
        );
    }
    let ca = state.join("ca.pem");
    assert!(
        o.contains(&format!(
            "export NODE_EXTRA_CA_CERTS=\"{}\"\n",
            ca.display()
        )),
        "{o}"
    );
    assert!(
        o.contains("# github_oauth.gh placeholder: ghp_agent_placeholder\n"),
        "{o}"
    );
    assert!(
        o.contains("export GH_TOKEN=\"ghp_agent_placeholder\"\n"),
        "{o}"
    );
    assert!(
        o.contains("export GITHUB_TOKEN=\"ghp_agent_placeholder\"\n"),
        "{o}"
    );

    // The bundle ends with the gateway CA.
    let bundle_text = std::fs::read_to_string(&bundle).expect("bundle");
    let ca_text = std::fs::read_to_string(&ca).expect("ca");
    assert!(bundle_text.ends_with(&ca_text));

    // Same token next time; `--proxy` overrides the address.
    let out = clawpatrol(&[
        "env",
        "--state-dir",
        state_s,
        "--proxy",
        "0.0.0.0:3128",
        &config,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!(
            "export HTTPS_PROXY=\"http://dev:{token}@127.0.0.1:3128\"\n"
        )),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn env_errors_exit_2() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = tmp.path().join("state");
    let state_s = state.to_str().expect("utf8");
    let config = write_config(tmp.path(), POLICY);
    let out = clawpatrol(&["env", "--state-dir", state_s, "--profile", "nope", &config]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unknown profile `nope`"),
        "{}",
        text(&out.stderr)
    );

    let bad = tmp.path().join("bad.hcl");
    std::fs::write(&bad, "endpoint \"https\" \"gh\" { nope = 1 }\n").expect("write");
    let out = clawpatrol(&["env", "--state-dir", state_s, bad.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("bad.hcl:1:"),
        "{}",
        text(&out.stderr)
    );

    let out = clawpatrol(&["env", "--state-dir", state_s]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "missing config is a usage error"
    );
}
