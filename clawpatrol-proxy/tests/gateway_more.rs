//! More of the gateway end to end with real components: WebSocket upgrades, upstream
//! failures, SIGHUP and config-directory reloads, graceful shutdown, profiles in local mode,
//! mTLS upstreams, JSON logs and `defaults.unknown_host = "deny"`.

mod support;

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use support::*;

const SECRET: &str = "s3cr3t-more-token-91b2";

// ---- config building ----

/// An `https` endpoint claiming `host`, trusting `ca` (PEM) for its upstream when given.
fn endpoint(name: &str, host: &str, ca: Option<&str>) -> String {
    let ca = ca.map_or(String::new(), |pem| {
        format!("  ca_cert = <<EOT\n{pem}EOT\n")
    });
    format!("endpoint \"https\" \"{name}\" {{\n  hosts = [\"{host}\"]\n{ca}}}\n\n")
}

/// A `bearer_token` credential bound to `https.<endpoint>`.
fn bearer(name: &str, endpoint: &str, placeholder: &str) -> String {
    format!(
        "credential \"bearer_token\" \"{name}\" {{\n  endpoint    = https.{endpoint}\n  \
         placeholder = \"{placeholder}\"\n}}\n\n"
    )
}

/// A credential of `kind` without attributes bound to `https.<endpoint>`.
fn bare_credential(kind: &str, name: &str, endpoint: &str) -> String {
    format!("credential \"{kind}\" \"{name}\" {{\n  endpoint = https.{endpoint}\n}}\n\n")
}

/// A profile listing `credentials` (typed references).
fn profile(name: &str, credentials: &[&str]) -> String {
    format!(
        "profile \"{name}\" {{\n  credentials = [{}]\n}}\n\n",
        credentials.join(", ")
    )
}

/// A deny rule on `https.<endpoint>`.
fn deny_rule(name: &str, endpoint: &str, condition: &str, reason: &str) -> String {
    format!(
        "rule \"{name}\" {{\n  endpoint  = https.{endpoint}\n  condition = \"{condition}\"\n  \
         verdict   = \"deny\"\n  reason    = \"{reason}\"\n}}\n\n"
    )
}

/// The exact deny response of reference §2.11.
fn deny_bytes(reason: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{reason}",
        reason.len()
    )
    .into_bytes()
}

/// `--connect-to` arguments sending every `host:443` to `to`.
fn connect_to(hosts: &[&str], to: SocketAddr) -> Vec<String> {
    hosts
        .iter()
        .flat_map(|h| ["--connect-to".to_string(), format!("{h}:443:{to}")])
        .collect()
}

/// Writes `text` to `path` atomically (a watcher never sees half a file).
fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

// ---- running things ----

/// curl through the gateway's forward proxy, trusting the gateway CA.
fn via_proxy(g: &Gateway, extra: &[&str]) -> Output {
    let proxy = format!("http://{}", g.proxy);
    via(&proxy, g.ca.to_str().unwrap(), extra)
}

/// curl through `proxy` (a URL, possibly with credentials), trusting `ca_file`.
fn via(proxy: &str, ca_file: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "--suppress-connect-headers",
        "-x",
        proxy,
        "--cacert",
        ca_file,
    ];
    args.extend_from_slice(extra);
    curl(&args)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Writes `pem` to `<dir>/<name>` and returns the path as text.
fn pem_file(dir: &Path, name: &str, pem: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, pem).unwrap();
    p.to_str().unwrap().to_string()
}

/// `clawpatrol audit tail --json` rows of a stopped gateway.
fn audit_rows(state: &Path) -> Vec<serde_json::Value> {
    let o = Command::new(bin())
        .args(["audit", "tail", "-n", "100", "--json", "--state-dir"])
        .arg(state)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    text(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Waits until `cond` holds (20 s at most).
fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A simple setup: one test CA, one upstream serving `hosts`, a config, a gateway.
struct Rig {
    dir: tempfile::TempDir,
    ca: TestCa,
    upstream: Upstream,
    gateway: Gateway,
    config: PathBuf,
}

impl Rig {
    /// `config` gets the test CA's PEM; every host in `hosts` is routed to the upstream.
    fn start(
        hosts: &[&str],
        config: impl Fn(&str) -> String,
        env: &[(&str, &str)],
        extra: &[&str],
    ) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new();
        let upstream = Upstream::start(ca.server_config(hosts));
        let path = dir.path().join("policy.hcl");
        std::fs::write(&path, config(&ca.pem)).unwrap();
        let mut args = connect_to(hosts, upstream.addr);
        args.extend(extra.iter().map(|s| s.to_string()));
        let gateway = Gateway::start(&path, dir.path(), env, &args);
        Rig {
            dir,
            ca,
            upstream,
            gateway,
            config: path,
        }
    }
}

/// One endpoint `api` (api.test) with a bearer credential, a profile, and `rules`.
fn api_policy(ca: &str, rules: &str) -> String {
    format!(
        "schema_version = 1\n\n{}{}{}{rules}",
        endpoint("api", "api.test", Some(ca)),
        bearer("api-token", "api", "placeholder-token"),
        profile("dev", &["bearer_token.api-token"]),
    )
}

const AUTH: &str = "Authorization: Bearer placeholder-token";

// ---- 1. WebSocket ----

fn upgrade_request(host: &str) -> Vec<u8> {
    format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Authorization: Bearer placeholder-token\r\n\r\n"
    )
    .into_bytes()
}

#[test]
fn websocket_upgrade_is_bridged_and_can_be_denied() {
    let reason = "no websockets to chat";
    let rig = Rig::start(
        &["api.test", "chat.test"],
        |ca| {
            format!(
                "schema_version = 1\n\n{}{}{}{}{}{}",
                endpoint("api", "api.test", Some(ca)),
                endpoint("chat", "chat.test", Some(ca)),
                bearer("api-token", "api", "placeholder-token"),
                bearer("chat-token", "chat", "placeholder-token"),
                profile(
                    "dev",
                    &["bearer_token.api-token", "bearer_token.chat-token"]
                ),
                deny_rule("no-chat-ws", "chat", "http.path == '/ws'", reason),
            )
        },
        &[
            ("CLAWPATROL_SECRET_API_TOKEN", SECRET),
            ("CLAWPATROL_SECRET_CHAT_TOKEN", SECRET),
        ],
        &[],
    );
    let g = &rig.gateway;
    let gw_ca = std::fs::read_to_string(&g.ca).unwrap();

    // Allowed: 101, the upgrade headers and the injected credential reach the upstream, and
    // bytes then flow both ways through the bridge.
    let mut c = Client::connect(g.proxy, "api.test", &gw_ca);
    c.send_raw(&upgrade_request("api.test"));
    let (status, head, _) = c.read_response();
    assert_eq!(status, 101, "{head}");
    assert!(
        head.to_ascii_lowercase().contains("upgrade: websocket"),
        "{head}"
    );
    let seen = rig.upstream.last();
    assert_eq!(seen.target, "/ws");
    assert_eq!(seen.header("upgrade"), Some("websocket"));
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    let frames: [Vec<u8>; 3] = [
        b"\x81\x05hello".to_vec(),
        vec![0x82, 0x03, 0, 1, 255],
        (0..20_000u32).map(|i| (i % 253) as u8).collect(),
    ];
    for frame in &frames {
        c.send_raw(frame);
        assert_eq!(&c.read_n(frame.len()), frame);
    }

    // Denied by a rule on the path: the exact 403, then close; the upstream never sees it.
    let before = rig.upstream.seen().len();
    let mut c = Client::connect(g.proxy, "chat.test", &gw_ca);
    c.send_raw(&upgrade_request("chat.test"));
    let raw = c.read_to_end();
    assert_eq!(
        String::from_utf8_lossy(&raw),
        String::from_utf8_lossy(&deny_bytes(reason))
    );
    assert_eq!(rig.upstream.seen().len(), before);
}

// ---- 2. upstream failures ----

#[test]
fn upstream_failures_are_502_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let rogue_ca = TestCa::new();
    // A port nothing listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    // An upstream whose certificate no endpoint trusts.
    let rogue = Upstream::start(rogue_ca.server_config(&["rogue.test", "noca.test"]));
    let config = dir.path().join("policy.hcl");
    std::fs::write(
        &config,
        format!(
            "schema_version = 1\n\n{}{}{}{}{}",
            endpoint("dead", "dead.test", Some(&ca.pem)),
            endpoint("rogue", "rogue.test", Some(&ca.pem)),
            endpoint("noca", "noca.test", None),
            "credential \"passthrough\" \"open\" {\n  endpoints = [https.dead, https.rogue, https.noca]\n}\n\n",
            profile("dev", &["passthrough.open"]),
        ),
    )
    .unwrap();
    let mut args = connect_to(&["dead.test"], closed);
    args.extend(connect_to(&["rogue.test", "noca.test"], rogue.addr));
    let g = Gateway::start(&config, dir.path(), &[], &args);

    let o = via_proxy(&g, &["-i", "https://dead.test/x"]);
    let out = text(&o);
    assert!(
        out.starts_with("HTTP/1.1 502 Bad Gateway\r\n"),
        "{out}{}",
        stderr(&o)
    );
    assert!(
        out.contains("cannot connect to `dead.test:443`"),
        "no reason in {out}"
    );

    for host in ["rogue.test", "noca.test"] {
        let o = via_proxy(&g, &["-i", &format!("https://{host}/x")]);
        let out = text(&o);
        assert!(
            out.starts_with("HTTP/1.1 502 Bad Gateway\r\n"),
            "{out}{}",
            stderr(&o)
        );
        assert!(
            out.contains(&format!("tls handshake with `{host}` failed")),
            "no tls reason in {out}"
        );
        assert!(out.to_ascii_lowercase().contains("certificate"), "{out}");
    }
    assert!(
        rogue.seen().is_empty(),
        "a request reached an unverified upstream: {:?}",
        rogue.seen()
    );
}

// ---- 3. SIGHUP ----

#[test]
fn sighup_forces_a_reload() {
    let reason = "hup is now denied";
    // File polling once an hour: only the signal can bring the edit in.
    let rig = Rig::start(
        &["api.test"],
        |ca| api_policy(ca, ""),
        &[("CLAWPATROL_SECRET_API_TOKEN", SECRET)],
        &["--reload-poll-ms", "3600000"],
    );
    let g = &rig.gateway;
    // A SIGHUP right after the gateway announced its ports is handled, not fatal.
    g.signal(Signal::SIGHUP);
    g.wait_log("config reloaded", 1);
    let o = via_proxy(g, &["-H", AUTH, "https://api.test/hup"]);
    assert_eq!(text(&o), "hello from upstream /hup", "{}", stderr(&o));

    let rule = deny_rule("no-hup", "api", "http.path == '/hup'", reason);
    write_atomic(&rig.config, &api_policy(&rig.ca.pem, &rule));
    // The edit alone changes nothing.
    let o = via_proxy(g, &["-H", AUTH, "https://api.test/hup"]);
    assert_eq!(text(&o), "hello from upstream /hup");
    assert_eq!(g.log_text().matches("config reloaded").count(), 1);

    g.signal(Signal::SIGHUP);
    g.wait_log("config reloaded", 2);
    assert!(g.log_text().contains("SIGHUP: reloading the config"));
    let o = via_proxy(g, &["-H", AUTH, "https://api.test/hup"]);
    assert_eq!(text(&o), reason);
}

// ---- 4. directory config ----

#[test]
fn config_directory_reloads_on_added_and_removed_files() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let upstream = Upstream::start(ca.server_config(&["api.test"]));
    let conf = dir.path().join("policy.d");
    std::fs::create_dir(&conf).unwrap();
    std::fs::write(
        conf.join("00-endpoints.hcl"),
        format!(
            "schema_version = 1\n\n{}{}{}",
            endpoint("api", "api.test", Some(&ca.pem)),
            bearer("api-token", "api", "placeholder-token"),
            profile("dev", &["bearer_token.api-token"]),
        ),
    )
    .unwrap();
    std::fs::write(
        conf.join("10-rules.hcl"),
        deny_rule("no-deletes", "api", "http.method == 'DELETE'", "no deletes"),
    )
    .unwrap();
    let g = Gateway::start(
        &conf,
        dir.path(),
        &[("CLAWPATROL_SECRET_API_TOKEN", SECRET)],
        &connect_to(&["api.test"], upstream.addr),
    );
    let get = || text(&via_proxy(&g, &["-H", AUTH, "https://api.test/dir"]));
    assert_eq!(get(), "hello from upstream /dir");
    // Both files are in force.
    let o = via_proxy(&g, &["-X", "DELETE", "-H", AUTH, "https://api.test/dir"]);
    assert_eq!(text(&o), "no deletes");

    let extra = conf.join("20-extra.hcl");
    write_atomic(
        &extra,
        &deny_rule("no-dir", "api", "http.path == '/dir'", "dir is denied"),
    );
    g.wait_log("config reloaded", 1);
    assert_eq!(get(), "dir is denied");

    std::fs::remove_file(&extra).unwrap();
    g.wait_log("config reloaded", 2);
    assert_eq!(get(), "hello from upstream /dir");
}

// ---- 5. graceful shutdown ----

#[test]
fn sigterm_lets_an_in_flight_request_finish() {
    let mut rig = Rig::start(
        &["api.test"],
        |ca| api_policy(ca, ""),
        &[("CLAWPATROL_SECRET_API_TOKEN", SECRET)],
        &[],
    );
    let proxy = format!("http://{}", rig.gateway.proxy);
    let ca = rig.gateway.ca.to_str().unwrap().to_string();
    let slow =
        std::thread::spawn(move || via(&proxy, &ca, &["-i", "-H", AUTH, "https://api.test/slow"]));
    // The upstream holds the answer for a second once it has the request.
    wait_until("the upstream to receive /slow", || {
        rig.upstream.seen().iter().any(|s| s.target == "/slow")
    });
    rig.gateway.signal(Signal::SIGTERM);
    let o = slow.join().unwrap();
    let out = text(&o);
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}{}", stderr(&o));
    assert!(out.ends_with("hello from upstream /slow"), "{out}");
    let status = rig.gateway.wait_exit().expect("the gateway did not exit");
    assert!(status.success(), "{status:?}\n{}", rig.gateway.log_text());

    // The request was still in flight when shutdown began, and its row was flushed.
    let log = rig.gateway.log_text();
    let shutdown_at = log.find("shutting down").expect("no shutdown line");
    let request_at = log.find("path=/slow").expect("no request line");
    assert!(shutdown_at < request_at, "{log}");
    let rows = audit_rows(&rig.gateway.state);
    let row = rows
        .iter()
        .find(|r| r["path"] == "/slow")
        .expect("no audit row for /slow");
    assert_eq!(row["action"], "allow");
    assert_eq!(row["status"], "200");
}

// ---- 6. profiles in local mode ----

/// The `HTTPS_PROXY` URL `clawpatrol env` prints for `profile`.
fn env_proxy_url(g: &Gateway, config: &Path, profile: &str) -> String {
    let o = Command::new(bin())
        .arg("env")
        .arg("--state-dir")
        .arg(&g.state)
        .args(["--profile", profile, "--proxy", &g.proxy.to_string()])
        .arg(config)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = text(&o);
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("export HTTPS_PROXY="))
        .unwrap_or_else(|| panic!("no HTTPS_PROXY in {out}"));
    line.trim_matches('"').to_string()
}

/// Reads a proxy error response after its head: the body up to close.
fn rest_of(mut tcp: std::net::TcpStream) -> String {
    let mut body = String::new();
    let _ = tcp.read_to_string(&mut body);
    body
}

#[test]
fn profiles_authenticate_and_decide_what_is_intercepted() {
    let beta_secret = "beta-real-secret-3c1d";
    let rig = Rig::start(
        &["api.test", "chat.test"],
        |ca| {
            format!(
                "schema_version = 1\n\n{}{}{}{}{}{}",
                endpoint("api", "api.test", Some(ca)),
                endpoint("chat", "chat.test", Some(ca)),
                bearer("alpha-token", "api", "placeholder-alpha"),
                bearer("beta-token", "chat", "placeholder-beta"),
                profile("alpha", &["bearer_token.alpha-token"]),
                profile("beta", &["bearer_token.beta-token"]),
            )
        },
        &[
            ("CLAWPATROL_SECRET_ALPHA_TOKEN", SECRET),
            ("CLAWPATROL_SECRET_BETA_TOKEN", beta_secret),
        ],
        &[],
    );
    let g = &rig.gateway;
    let gw_ca = g.ca.to_str().unwrap().to_string();
    let test_ca = pem_file(rig.dir.path(), "test-ca.pem", &rig.ca.pem);

    // Two profiles, no default, no credentials: 407 with the reason.
    let (tcp, head) = connect_raw(g.proxy, "api.test", "");
    assert!(head.starts_with("HTTP/1.1 407 "), "{head}");
    assert!(head.contains("Proxy-Authenticate: Basic"), "{head}");
    let body = rest_of(tcp);
    assert!(
        body.contains("2 profiles are declared and none is the default"),
        "{body}"
    );

    let alpha = env_proxy_url(g, &rig.config, "alpha");
    let beta = env_proxy_url(g, &rig.config, "beta");
    assert!(alpha.starts_with("http://alpha:"), "{alpha}");

    // alpha reaches api.test: intercepted, its credential injected.
    let o = via(
        &alpha,
        &gw_ca,
        &[
            "-H",
            "Authorization: Bearer placeholder-alpha",
            "https://api.test/a",
        ],
    );
    assert_eq!(text(&o), "hello from upstream /a", "{}", stderr(&o));
    assert_eq!(
        rig.upstream.last().header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    // alpha does not reach chat.test: spliced, so the gateway CA does not verify it and the
    // upstream's own certificate does; nothing is injected.
    let o = via(&alpha, &gw_ca, &["https://chat.test/b"]);
    assert_eq!(o.status.code(), Some(60), "{}{}", text(&o), stderr(&o));
    let o = via(
        &alpha,
        &test_ca,
        &[
            "-H",
            "Authorization: Bearer placeholder-beta",
            "https://chat.test/b",
        ],
    );
    assert_eq!(text(&o), "hello from upstream /b", "{}", stderr(&o));
    assert_eq!(
        rig.upstream.last().header("authorization"),
        Some("Bearer placeholder-beta")
    );

    // beta is the other way round.
    let o = via(
        &beta,
        &gw_ca,
        &[
            "-H",
            "Authorization: Bearer placeholder-beta",
            "https://chat.test/c",
        ],
    );
    assert_eq!(text(&o), "hello from upstream /c", "{}", stderr(&o));
    assert_eq!(
        rig.upstream.last().header("authorization"),
        Some(format!("Bearer {beta_secret}").as_str())
    );
    let o = via(&beta, &gw_ca, &["https://api.test/d"]);
    assert_eq!(o.status.code(), Some(60), "{}{}", text(&o), stderr(&o));

    // A wrong token (or an unknown profile) is refused.
    for (user, token) in [("alpha", "not-the-token"), ("gamma", "x")] {
        let (tcp, head) = connect_raw(g.proxy, "api.test", &proxy_auth_line(user, token));
        assert!(head.starts_with("HTTP/1.1 407 "), "{head}");
        let body = rest_of(tcp);
        assert!(
            body.contains(&format!("proxy credentials for `{user}` are not valid")),
            "{body}"
        );
    }
    let token = alpha.trim_start_matches("http://alpha:");
    let token = token.split('@').next().unwrap();
    assert!(!g.log_text().contains(token), "a proxy token was logged");
}

// ---- 7. mTLS upstream ----

#[test]
fn mtls_upstream_gets_the_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let upstream = Upstream::start(ca.mtls_server_config(&["mtls.test", "nokey.test"]));
    let (cert_pem, key_pem) = ca.client_cert("clawpatrol test client");
    let cert = pem_file(dir.path(), "client.pem", &cert_pem);
    let key = pem_file(dir.path(), "client-key.pem", &key_pem);
    let config = dir.path().join("policy.hcl");
    std::fs::write(
        &config,
        format!(
            "schema_version = 1\n\n{}{}{}{}{}",
            endpoint("secure", "mtls.test", Some(&ca.pem)),
            endpoint("nokey", "nokey.test", Some(&ca.pem)),
            bare_credential("mtls_credential", "svc-mtls", "secure"),
            bare_credential("mtls_credential", "other-mtls", "nokey"),
            profile(
                "dev",
                &["mtls_credential.svc-mtls", "mtls_credential.other-mtls"]
            ),
        ),
    )
    .unwrap();

    // The upstream really insists on a client certificate.
    let test_ca = pem_file(dir.path(), "test-ca.pem", &ca.pem);
    let resolve = format!("mtls.test:{}:127.0.0.1", upstream.addr.port());
    let url = format!("https://mtls.test:{}/direct", upstream.addr.port());
    let o = curl(&["--resolve", &resolve, "--cacert", &test_ca, &url]);
    assert!(
        !o.status.success(),
        "the upstream took a request without a client cert"
    );
    assert!(upstream.seen().is_empty());

    let g = Gateway::start(
        &config,
        dir.path(),
        &[
            ("CLAWPATROL_SECRET_SVC_MTLS_CERT", &format!("@{cert}")),
            ("CLAWPATROL_SECRET_SVC_MTLS_KEY", &format!("@{key}")),
        ],
        &connect_to(&["mtls.test", "nokey.test"], upstream.addr),
    );
    let o = via_proxy(&g, &["https://mtls.test/m"]);
    assert_eq!(text(&o), "hello from upstream /m", "{}", stderr(&o));
    assert_eq!(upstream.seen().len(), 1);

    // No secret for the credential: denied with a reason naming it, never forwarded.
    let o = via_proxy(&g, &["-i", "https://nokey.test/m"]);
    let reason = "credential `other-mtls` has no secret configured \
                  (set CLAWPATROL_SECRET_OTHER_MTLS_CERT and CLAWPATROL_SECRET_OTHER_MTLS_KEY)";
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&deny_bytes(reason))
    );
    assert_eq!(upstream.seen().len(), 1);

    let key_body = key_pem.lines().nth(1).unwrap();
    assert!(
        !g.log_text().contains(key_body),
        "the client key was logged"
    );
}

// ---- 8. JSON logs ----

#[test]
fn json_logs_are_one_object_per_line() {
    let mut rig = Rig::start(
        &["api.test"],
        |ca| api_policy(ca, ""),
        &[("CLAWPATROL_SECRET_API_TOKEN", SECRET)],
        &["--log-format", "json"],
    );
    let o = via_proxy(&rig.gateway, &["-H", AUTH, "https://api.test/json?q=1"]);
    assert_eq!(text(&o), "hello from upstream /json", "{}", stderr(&o));
    assert!(rig.gateway.stop(), "{}", rig.gateway.log_text());

    let log = rig.gateway.log_text();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not json ({e}): {l:?}")))
        .collect();
    assert!(lines.len() >= 3, "{log}");
    let field = |v: &serde_json::Value, k: &str| {
        v.get("fields")
            .and_then(|f| f.get(k))
            .or_else(|| v.get(k))
            .cloned()
            .unwrap_or(serde_json::Value::Null)
    };
    let request = lines
        .iter()
        .find(|v| field(v, "message") == "request")
        .unwrap_or_else(|| panic!("no request line in {log}"));
    assert_eq!(field(request, "action"), "allow");
    assert_eq!(field(request, "host"), "api.test");
    assert_eq!(field(request, "path"), "/json");
    assert!(!log.contains(SECRET));
}

// ---- 9. unknown_host = deny ----

#[test]
fn unknown_host_deny_closes_without_dialling() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let api = Upstream::start(ca.server_config(&["api.test"]));
    // A separate upstream for the unclaimed host, so that any dial to it is counted.
    let other = Upstream::start(ca.server_config(&["other.test"]));
    let config = dir.path().join("policy.hcl");
    std::fs::write(
        &config,
        format!(
            "{}defaults {{\n  unknown_host = \"deny\"\n}}\n",
            api_policy(&ca.pem, "")
        ),
    )
    .unwrap();
    let mut args = connect_to(&["api.test"], api.addr);
    args.extend(connect_to(&["other.test"], other.addr));
    let g = Gateway::start(
        &config,
        dir.path(),
        &[("CLAWPATROL_SECRET_API_TOKEN", SECRET)],
        &args,
    );
    let test_ca = pem_file(dir.path(), "test-ca.pem", &ca.pem);

    let o = via(
        &format!("http://{}", g.proxy),
        &test_ca,
        &["https://other.test/x"],
    );
    assert!(!o.status.success(), "{}", text(&o));
    g.wait_log("unknown host denied", 1);
    assert_eq!(
        *other.connections.lock().unwrap(),
        0,
        "the gateway dialled other.test"
    );

    // Claimed hosts still work.
    let o = via_proxy(&g, &["-H", AUTH, "https://api.test/ok"]);
    assert_eq!(text(&o), "hello from upstream /ok", "{}", stderr(&o));
}
