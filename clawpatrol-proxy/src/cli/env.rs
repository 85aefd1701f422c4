//! `clawpatrol env <config>`: the `export` lines an agent needs to run through the local
//! gateway (DESIGN §3 "Local mode", reference §4.2 env pushdown).

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clawpatrol_core::config::model::Config;
use clawpatrol_core::quote::go_quote;
use clawpatrol_core::Policy;

use crate::defaults::{DEFAULT_PROXY_LISTEN, DEFAULT_TRANSPARENT_LISTEN};
use crate::state::{self, StateDir};
use crate::tls::{CertAuthority, UpstreamTls};

/// Arguments of `env`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Prints `export NAME=\"value\"` lines: the forward proxy with the profile's token, \
the CA bundle variables and the profile's placeholders. Creates the CA, the CA bundle and the \
profile token in the state directory when missing.\n\n\
Examples:\n  eval \"$(clawpatrol env policy.hcl)\"\n  \
clawpatrol env --profile ci --proxy 127.0.0.1:3128 policy.hcl > agent.env"
)]
pub struct Args {
    /// A config file, or a directory whose `*.hcl` files are merged in name order.
    config: PathBuf,
    /// The state directory [default: `gateway.state_dir`, else ~/.clawpatrol].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// The agent's profile [default: `defaults.profile`, else the only declared profile].
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// The forward proxy address [default: `gateway.proxy_listen`, else 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    proxy: Option<String>,
}

/// Prints the environment; exit 2 on load or state errors.
pub fn run(args: Args) -> ExitCode {
    super::init_logging();
    let policy = match Policy::load(&args.config) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    for w in policy.warnings() {
        eprint!("{w}");
    }
    match prepare(&args, policy.config()) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Selects the profile, prepares the state directory and renders the output.
fn prepare(args: &Args, config: &Config) -> Result<String, String> {
    let profile = select_profile(config, args.profile.as_deref())?;
    let gateway = config.gateway.as_ref();
    let (state, ca) = super::ca::open_ca(
        args.state_dir.as_deref(),
        gateway.and_then(|g| g.state_dir.as_deref()),
    )?;
    ensure_bundle(&state, &ca)?;
    let token = persisted_token(&state, profile)?;
    let listen = args
        .proxy
        .as_deref()
        .or(gateway.and_then(|g| g.proxy_listen.as_deref()))
        .unwrap_or(DEFAULT_PROXY_LISTEN);
    Ok(render(&Env {
        config,
        profile,
        token: &token,
        proxy: &connect_addr(listen),
        transparent: &connect_addr(
            gateway
                .and_then(|g| g.transparent_listen.as_deref())
                .unwrap_or(DEFAULT_TRANSPARENT_LISTEN),
        ),
        bundle: &state.ca_bundle_path(),
        ca: &state.ca_cert_path(),
    }))
}

/// The profile's token, confirmed through the gateway's own check, so that a concurrent writer
/// of `tokens.json` cannot leave us printing a token the gateway would refuse.
fn persisted_token(state: &StateDir, profile: &str) -> Result<String, String> {
    for _ in 0..5 {
        let token = state.profile_token(profile).map_err(|e| e.to_string())?;
        if state.check_profile_token(profile, &token) {
            return Ok(token);
        }
    }
    Err(format!(
        "`{}` keeps changing while the token of profile `{profile}` is written; run again",
        state.tokens_path().display()
    ))
}

/// Writes `ca-bundle.pem` when it is missing (the gateway rewrites it at every start).
fn ensure_bundle(state: &StateDir, ca: &CertAuthority) -> Result<(), String> {
    let path = state.ca_bundle_path();
    if path.exists() {
        return Ok(());
    }
    let upstream = UpstreamTls::new().map_err(|e| e.to_string())?;
    state::write_atomic(&path, upstream.combined_bundle_pem(ca).as_bytes(), false)
        .map_err(|e| format!("cannot write `{}`: {e}", path.display()))
}

/// The profile: `--profile`, else `defaults.profile`, else the only declared profile.
fn select_profile<'a>(config: &'a Config, flag: Option<&'a str>) -> Result<&'a str, String> {
    let names: Vec<&str> = config.profiles.iter().map(|p| p.name.as_str()).collect();
    let listed = || {
        let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        quoted.join(", ")
    };
    if names.is_empty() {
        return Err("the config declares no profile; add a `profile` block".to_string());
    }
    if let Some(p) = flag.or(config.defaults.profile.as_deref()) {
        return if names.contains(&p) {
            Ok(p)
        } else {
            Err(format!("unknown profile `{p}` (profiles: {})", listed()))
        };
    }
    match names.as_slice() {
        [only] => Ok(only),
        _ => Err(format!(
            "several profiles and no `defaults.profile`: pass `--profile NAME` (profiles: {})",
            listed()
        )),
    }
}

/// The address agents dial: a wildcard listener host becomes the matching loopback address.
fn connect_addr(listen: &str) -> String {
    match listen.rsplit_once(':') {
        Some(("" | "0.0.0.0", port)) => format!("127.0.0.1:{port}"),
        Some(("[::]", port)) => format!("[::1]:{port}"),
        _ => listen.to_string(),
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters (for URL userinfo).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Go `%q` quoting, with `$` and `` ` `` also escaped so a shell's double quotes keep them.
fn shell_quote(s: &str) -> String {
    let q = go_quote(s);
    if q.contains(['$', '`']) {
        q.replace('$', "\\$").replace('`', "\\`")
    } else {
        q
    }
}

/// Env pushdown of provider credential types (reference §4.2): type, description, variables
/// and the placeholder used when the credential declares none.
const PUSHDOWN: &[(&str, &str, &[&str], &str)] = &[
    (
        "github_oauth",
        "GitHub token placeholder",
        &["GH_TOKEN", "GITHUB_TOKEN"],
        "ghp_clawpatrol_placeholder_do_not_use",
    ),
    (
        "gemini_api_key",
        "Gemini API key placeholder",
        &["GOOGLE_API_KEY", "GEMINI_API_KEY"],
        "AIzaClawpatrolPlaceholderDoNotUse00000000",
    ),
];

/// The CA bundle variables (system roots + gateway CA).
const BUNDLE_VARS: &[&str] = &[
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "DENO_CERT",
    "PIP_CERT",
    "AWS_CA_BUNDLE",
];

/// What `render` prints.
struct Env<'a> {
    /// The loaded config.
    config: &'a Config,
    /// The selected profile.
    profile: &'a str,
    /// The profile's proxy token.
    token: &'a str,
    /// The proxy address agents dial.
    proxy: &'a str,
    /// The transparent TLS listener's address (informational).
    transparent: &'a str,
    /// `ca-bundle.pem`.
    bundle: &'a Path,
    /// `ca.pem`.
    ca: &'a Path,
}

/// Renders the `export` lines.
fn render(env: &Env<'_>) -> String {
    let mut out = String::new();
    let export = |out: &mut String, name: &str, value: &str| {
        let _ = writeln!(out, "export {name}={}", shell_quote(value));
    };
    let _ = writeln!(out, "# clawpatrol profile {}", go_quote(env.profile));
    let url = format!(
        "http://{}:{}@{}",
        percent_encode(env.profile),
        env.token,
        env.proxy
    );
    for name in ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"] {
        export(&mut out, name, &url);
    }
    for name in ["NO_PROXY", "no_proxy"] {
        export(&mut out, name, "localhost,127.0.0.1,::1");
    }
    let _ = writeln!(
        out,
        "# transparent TLS listener (traffic redirected without proxy variables): {}",
        env.transparent
    );
    out.push_str("# CA bundle: system roots + clawpatrol gateway CA\n");
    let bundle = env.bundle.to_string_lossy();
    for name in BUNDLE_VARS {
        export(&mut out, name, &bundle);
    }
    out.push_str("# clawpatrol gateway CA only\n");
    export(&mut out, "NODE_EXTRA_CA_CERTS", &env.ca.to_string_lossy());

    let Some(profile) = env.config.profiles.iter().find(|p| p.name == env.profile) else {
        return out;
    };
    let mut pushed: HashSet<&str> = HashSet::new();
    for entry in &profile.credentials {
        let Some(cred) = env
            .config
            .credentials
            .iter()
            .find(|c| c.name == entry.credential)
        else {
            continue;
        };
        let mut merged: BTreeMap<&str, &str> = cred
            .disambiguators
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        for (k, v) in &entry.disambiguators {
            merged.insert(k, v);
        }
        let placeholder = merged.get("placeholder").copied();
        if let Some(ph) = placeholder {
            let shown = if ph.chars().any(char::is_control) {
                go_quote(ph)
            } else {
                ph.to_string()
            };
            let _ = writeln!(out, "# {}.{} placeholder: {shown}", cred.kind, cred.name);
        }
        for (kind, description, vars, default) in PUSHDOWN {
            if cred.kind != *kind || vars.iter().all(|v| pushed.contains(v)) {
                continue;
            }
            let _ = writeln!(out, "# {description} \u{2014} {kind}");
            for var in vars.iter() {
                if pushed.insert(var) {
                    export(&mut out, var, placeholder.unwrap_or(default));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Policy {
        Policy::from_source("t.hcl", text).unwrap()
    }

    const TWO: &str = r#"
schema_version = 1
endpoint "https" "gh" { hosts = ["api.github.com"] }
endpoint "https" "gem" { hosts = ["generativelanguage.googleapis.com"] }
credential "github_oauth" "gh-a" {
  endpoint    = https.gh
  placeholder = "ghp_agent_a"
}
credential "github_oauth" "gh-b" {
  endpoint    = https.gh
  placeholder = "ghp_agent_b"
}
credential "gemini_api_key" "gem" { endpoint = https.gem }
credential "bearer_token" "plain" { endpoint = https.gem }
profile "dev" { credentials = [github_oauth.gh-a, github_oauth.gh-b, gemini_api_key.gem] }
profile "ops" { credentials = [bearer_token.plain] }
"#;

    #[test]
    fn selects_flag_then_default_then_only() {
        let p = config(TWO);
        assert_eq!(select_profile(p.config(), Some("ops")).unwrap(), "ops");
        let e = select_profile(p.config(), None).unwrap_err();
        assert!(
            e.contains("--profile NAME") && e.contains("`dev`, `ops`"),
            "{e}"
        );
        let e = select_profile(p.config(), Some("nope")).unwrap_err();
        assert!(e.contains("unknown profile `nope`"), "{e}");
        let one = config(
            "endpoint \"https\" \"gh\" { hosts = [\"api.github.com\"] }\n\
             credential \"bearer_token\" \"t\" { endpoint = https.gh }\n\
             profile \"solo\" { credentials = [bearer_token.t] }\n",
        );
        assert_eq!(select_profile(one.config(), None).unwrap(), "solo");
        let with_default = config(&format!("{TWO}\ndefaults {{ profile = profile.ops }}\n"));
        assert_eq!(select_profile(with_default.config(), None).unwrap(), "ops");
        let none = config("endpoint \"https\" \"gh\" { hosts = [\"api.github.com\"] }\n");
        assert!(select_profile(none.config(), None)
            .unwrap_err()
            .contains("no profile"));
    }

    #[test]
    fn renders_proxy_ca_and_placeholders() {
        let p = config(TWO);
        let out = render(&Env {
            config: p.config(),
            profile: "dev",
            token: "abc123",
            proxy: "127.0.0.1:8080",
            transparent: "127.0.0.1:8443",
            bundle: Path::new("/s/ca-bundle.pem"),
            ca: Path::new("/s/ca.pem"),
        });
        for line in [
            "export HTTPS_PROXY=\"http://dev:abc123@127.0.0.1:8080\"",
            "export http_proxy=\"http://dev:abc123@127.0.0.1:8080\"",
            "export NO_PROXY=\"localhost,127.0.0.1,::1\"",
            "export SSL_CERT_FILE=\"/s/ca-bundle.pem\"",
            "export AWS_CA_BUNDLE=\"/s/ca-bundle.pem\"",
            "export NODE_EXTRA_CA_CERTS=\"/s/ca.pem\"",
            "# github_oauth.gh-a placeholder: ghp_agent_a",
            "# github_oauth.gh-b placeholder: ghp_agent_b",
            "export GH_TOKEN=\"ghp_agent_a\"",
            "export GITHUB_TOKEN=\"ghp_agent_a\"",
            "export GOOGLE_API_KEY=\"AIzaClawpatrolPlaceholderDoNotUse00000000\"",
            "export GEMINI_API_KEY=\"AIzaClawpatrolPlaceholderDoNotUse00000000\"",
        ] {
            assert!(
                out.lines().any(|l| l == line),
                "missing {line:?} in:\n{out}"
            );
        }
        // First occurrence wins: each variable once.
        assert_eq!(out.matches("export GH_TOKEN=").count(), 1, "{out}");
        assert!(!out.contains("bearer_token"), "{out}");
    }

    #[test]
    fn quoting_and_addresses() {
        assert_eq!(percent_encode("a b@c:d"), "a%20b%40c%3Ad");
        assert_eq!(
            shell_quote("/x/$HOME/`id`\"q\""),
            "\"/x/\\$HOME/\\`id\\`\\\"q\\\"\""
        );
        assert_eq!(connect_addr("0.0.0.0:8080"), "127.0.0.1:8080");
        assert_eq!(connect_addr("[::]:8080"), "[::1]:8080");
        assert_eq!(connect_addr("127.0.0.1:9"), "127.0.0.1:9");
        assert_eq!(connect_addr("localhost:9"), "localhost:9");
    }
}
