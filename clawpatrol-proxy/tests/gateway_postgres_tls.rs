//! The Postgres gateway's upstream TLS end to end: a real PostgreSQL 15 that accepts only TLS
//! logins (`hostssl` lines only), a server certificate signed by a test CA, real psql and
//! tokio-postgres on the agent side (plaintext), and each `sslmode` of a `postgres` endpoint.

mod support;
mod support_pg;

use support::{files_containing, TestCa};
use support_pg::*;

const PLACEHOLDER_USER: &str = "ph_agent_user";
/// What psql prints for a login the gateway refused because the upstream TLS failed.
const TLS_FATAL: &str = "FATAL:  clawpatrol: tls handshake failed";

/// One `postgres` endpoint of a test policy.
struct Ep {
    name: &'static str,
    host: String,
    sslmode: &'static str,
    /// A file next to the policy, included as the endpoint's `ca_cert`.
    ca_file: Option<&'static str>,
}

fn ep(name: &'static str, host: String, sslmode: &'static str, ca: Option<&'static str>) -> Ep {
    Ep {
        name,
        host,
        sslmode,
        ca_file: ca,
    }
}

/// A policy with `endpoints`, each on its own loopback listener, all served by the SCRAM
/// role `app`, with one deny rule to show statements are still gated over TLS.
fn policy(endpoints: &[Ep]) -> String {
    let mut out = String::from("schema_version = 1\n");
    for e in endpoints {
        let ca = e
            .ca_file
            .map(|f| format!("  ca_cert = \"<<file:{f}>>\"\n"))
            .unwrap_or_default();
        out.push_str(&format!(
            "\nendpoint \"postgres\" \"{}\" {{\n  host    = \"{}\"\n  sslmode = \"{}\"\n  \
             listen  = \"127.0.0.1:{}\"\n{ca}}}\n",
            e.name,
            e.host,
            e.sslmode,
            free_port()
        ));
    }
    let refs = endpoints
        .iter()
        .map(|e| format!("postgres.{}", e.name))
        .collect::<Vec<_>>()
        .join(", ");
    out.push_str(&format!(
        r#"
credential "postgres_credential" "app" {{
  endpoints = [{refs}]
  user      = "app"
}}

profile "dev" {{
  credentials = [postgres_credential.app]
}}

rule "no-ddl" {{
  endpoints = [{refs}]
  condition = "sql.verb in ['drop', 'create', 'alter', 'truncate']"
  verdict   = "deny"
  reason    = "schema changes land via migrations"
}}
"#
    ));
    out
}

/// Writes `files` and the policy into a temp dir and starts the gateway on it.
fn gateway(endpoints: &[Ep], files: &[(&str, &str)]) -> (PgGateway, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let config = dir.path().join("policy.hcl");
    let gw = PgGateway::start_retrying(
        &config,
        dir.path(),
        &[("CLAWPATROL_SECRET_APP", SCRAM_PASSWORD)],
        &[],
        || std::fs::write(&config, policy(endpoints)).unwrap(),
    );
    (gw, dir)
}

/// A TLS-only server whose certificate (for `localhost` and 127.0.0.1 only) `ca` signed.
fn tls_server(ca: &TestCa) -> PgServer {
    let (cert, key) = ca.server_cert_pem(&["localhost", TLS_LISTEN[0]]);
    PgServer::start_tls(&cert, &key)
}

/// How many logins of the role `app` the server completed (`log_connections` logs one line
/// per login; the harness's own `postgres` logins are not counted).
fn logins(pg: &PgServer) -> usize {
    pg.log_text()
        .matches("connection authorized: user=app database=")
        .count()
}

/// Waits until the server has logged `n` completed logins.
fn wait_logins(pg: &PgServer, n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while logins(pg) < n {
        assert!(
            std::time::Instant::now() < deadline,
            "the server logged {} logins, expected {n}:\n{}",
            logins(pg),
            pg.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The psql script of a working session: the agent's leg, rows of an allowed SELECT, the
/// upstream leg's TLS state as the server sees it, a denied statement, and a last marker.
const SESSION: &str = "\\conninfo
SELECT name FROM t ORDER BY id;
SELECT 'upstream-ssl=' || ssl || ' ' || version FROM pg_stat_ssl WHERE pid = pg_backend_pid();
DROP TABLE t;
SELECT current_user || '-after-deny';
";

/// Runs [`SESSION`] through the listener of `endpoint` and checks it end to end.
fn assert_tls_session(gw: &PgGateway, pg: &PgServer, endpoint: &str) {
    let (out, err) = psql(gw.port(endpoint), PLACEHOLDER_USER, "appdb", SESSION);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{endpoint}\nstdout:\n{out}\nstderr:\n{err}");
    // The agent's leg is plaintext (the endpoint has no agent_tls) ...
    assert!(
        lines[0].starts_with("You are connected") && !lines[0].contains("SSL"),
        "{endpoint}: {}",
        lines[0]
    );
    assert_eq!(&lines[1..4], ["alpha", "beta", "gamma"], "{endpoint}");
    // ... while the server saw this backend's connection arrive over TLS 1.3.
    assert_eq!(lines[4], "upstream-ssl=true TLSv1.3", "{endpoint}");
    assert_eq!(lines[5], "app-after-deny", "{endpoint}");
    assert!(
        err.contains("ERROR:  schema changes land via migrations")
            && err.lines().filter(|l| l.contains("ERROR")).count() == 1,
        "{endpoint}: {err}"
    );
    assert_eq!(pg.admin("appdb", "SELECT count(*) FROM t").trim(), "3");
}

#[test]
fn sslmode_require_and_prefer_reach_a_tls_only_server() {
    let ca = TestCa::new();
    let pg = tls_server(&ca);
    let (gw, _dir) = gateway(
        &[
            ep("req", format!("127.0.0.1:{}", pg.port), "require", None),
            // `require` does not verify the certificate (libpq semantics): a name the
            // certificate does not cover is accepted.
            ep("reqalt", format!("127.0.0.2:{}", pg.port), "require", None),
            // `prefer` takes the TLS the server offers.
            ep("pref", format!("127.0.0.1:{}", pg.port), "prefer", None),
        ],
        &[],
    );
    for endpoint in ["postgres.req", "postgres.reqalt", "postgres.pref"] {
        assert_tls_session(&gw, &pg, endpoint);
    }

    let log = pg.log_text();
    assert_eq!(
        log.matches("connection authorized: user=app database=appdb")
            .count(),
        3,
        "{log}"
    );
    assert!(log.contains("SSL enabled (protocol=TLSv1.3"), "{log}");
    assert!(!log.contains(PLACEHOLDER_USER), "{log}");
    let rows = wait_audit_of(&gw.state, Some("postgres.req"), 4);
    assert!(
        rows.iter()
            .any(|r| r.0 == "connect" && r.1 == "appdb" && r.2 == "allow"),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r.0 == "select" && r.1.starts_with("SELECT name FROM t") && r.2 == "allow"),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r.0 == "drop" && r.2 == "deny" && r.3.contains("migrations")),
        "{rows:?}"
    );
    let hits = files_containing(&gw.state, SCRAM_PASSWORD.as_bytes());
    assert!(hits.is_empty(), "secret found in {hits:?}");
    assert!(!gw.log_text().contains(SCRAM_PASSWORD));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_verify_full_trusts_the_endpoint_ca_cert() {
    let ca = TestCa::new();
    let pg = tls_server(&ca);
    let (gw, _dir) = gateway(
        &[
            // Verified against the certificate's IP address entry ...
            ep(
                "full",
                format!("127.0.0.1:{}", pg.port),
                "verify-full",
                Some("pg-ca.pem"),
            ),
            // ... and against its DNS name entry.
            ep(
                "fullname",
                format!("localhost:{}", pg.port),
                "verify-full",
                Some("pg-ca.pem"),
            ),
        ],
        &[("pg-ca.pem", &ca.pem)],
    );
    for endpoint in ["postgres.full", "postgres.fullname"] {
        assert_tls_session(&gw, &pg, endpoint);
    }
    let rows = wait_audit_of(&gw.state, Some("postgres.fullname"), 4);
    assert!(
        rows.iter()
            .any(|r| r.0 == "select" && r.1.starts_with("SELECT name FROM t") && r.2 == "allow"),
        "{rows:?}"
    );

    // The extended protocol over the verified leg, and a CancelRequest relayed to the server
    // over a fresh verified TLS connection.
    let port = gw.port("postgres.full");
    let conn_str =
        format!("host=127.0.0.1 port={port} user={PLACEHOLDER_USER} dbname=appdb sslmode=disable");
    let (client, conn) = tokio_postgres::connect(&conn_str, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let row = client
        .query_one("SELECT name FROM t WHERE id = $1", &[&2i32])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "beta");
    let ssl: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(ssl);
    let token = client.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        token.cancel_query(tokio_postgres::NoTls).await
    });
    let started = std::time::Instant::now();
    let err = client
        .simple_query("SELECT pg_sleep(20)")
        .await
        .unwrap_err();
    assert_eq!(err.as_db_error().unwrap().code().code(), "57014", "{err:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    canceller.await.unwrap().unwrap();
}

#[test]
fn sslmode_verify_full_refuses_an_untrusted_or_misnamed_certificate() {
    let ca = TestCa::new();
    let other = TestCa::new();
    let pg = tls_server(&ca);
    let (gw, _dir) = gateway(
        &[
            // A CA that did not sign the server's certificate.
            ep(
                "wrongca",
                format!("127.0.0.1:{}", pg.port),
                "verify-full",
                Some("other-ca.pem"),
            ),
            // No ca_cert: the system roots, which do not know the test CA.
            ep(
                "sysroots",
                format!("127.0.0.1:{}", pg.port),
                "verify-full",
                None,
            ),
            // The right CA, but an address the certificate does not name.
            ep(
                "wrongname",
                format!("127.0.0.2:{}", pg.port),
                "verify-full",
                Some("pg-ca.pem"),
            ),
            ep(
                "good",
                format!("127.0.0.1:{}", pg.port),
                "verify-full",
                Some("pg-ca.pem"),
            ),
        ],
        &[("pg-ca.pem", &ca.pem), ("other-ca.pem", &other.pem)],
    );

    // A working session first: the gateway's TLS config cache then holds a config trusting the
    // right CA, which the other endpoints must not pick up.
    assert_tls_session(&gw, &pg, "postgres.good");
    wait_logins(&pg, 1);

    for (endpoint, why) in [
        // (BadSignature here: both test CAs have the same subject, so the chain builds.)
        ("postgres.wrongca", "invalid peer certificate"),
        (
            "postgres.sysroots",
            "invalid peer certificate: UnknownIssuer",
        ),
        ("postgres.wrongname", "invalid peer certificate"),
    ] {
        let (out, err) = psql(
            gw.port(endpoint),
            PLACEHOLDER_USER,
            "appdb",
            "SELECT 'must-not-run';\n",
        );
        assert!(out.is_empty(), "{endpoint}: {out}");
        assert!(err.contains(TLS_FATAL), "{endpoint}: {err}");
        assert!(err.contains(why), "{endpoint}: {err}");
        assert!(!err.contains(SCRAM_PASSWORD));
        let rows = wait_audit_of(&gw.state, Some(endpoint), 1);
        assert_eq!(rows.len(), 1, "{endpoint}: {rows:?}");
        let (method, path, action, reason) = &rows[0];
        assert_eq!(
            (method.as_str(), path.as_str(), action.as_str()),
            ("connect", "appdb", "error"),
            "{endpoint}"
        );
        assert!(
            reason.contains("tls handshake failed"),
            "{endpoint}: {reason}"
        );
    }
    // The misnamed endpoint's refusal names the address the certificate lacks.
    let (_, err) = psql(
        gw.port("postgres.wrongname"),
        PLACEHOLDER_USER,
        "appdb",
        "SELECT 1;\n",
    );
    assert!(err.contains("127.0.0.2"), "{err}");

    // The agent sees FATAL 28000 with the reason; nothing of the secret.
    let port = gw.port("postgres.wrongca");
    let db = refused_login(port);
    assert!(db.message().contains("tls handshake failed"), "{db:?}");
    assert!(!db.message().contains(SCRAM_PASSWORD));

    // The gateway survived: the verified endpoint still works. No refused attempt completed a
    // login on the server in between: the only new login is this session's.
    assert_tls_session(&gw, &pg, "postgres.good");
    wait_logins(&pg, 2);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(logins(&pg), 2, "{}", pg.log_text());
    assert!(!pg.log_text().contains(PLACEHOLDER_USER));
    assert!(!gw.log_text().contains(SCRAM_PASSWORD));
}

#[test]
fn plaintext_is_refused_in_both_directions() {
    let ca = TestCa::new();
    let tls_pg = tls_server(&ca);
    let plain_pg = PgServer::start();
    let (gw, _dir) = gateway(
        &[
            // The TLS-only server refuses a plaintext login (its pg_hba has hostssl lines only).
            ep(
                "plain",
                format!("127.0.0.1:{}", tls_pg.port),
                "disable",
                None,
            ),
            // A server without TLS: `require` does not fall back to plaintext.
            ep(
                "req",
                format!("127.0.0.1:{}", plain_pg.port),
                "require",
                None,
            ),
            ep(
                "full",
                format!("127.0.0.1:{}", plain_pg.port),
                "verify-full",
                Some("pg-ca.pem"),
            ),
        ],
        &[("pg-ca.pem", &ca.pem)],
    );

    let (out, err) = psql(
        gw.port("postgres.plain"),
        PLACEHOLDER_USER,
        "appdb",
        "SELECT 'must-not-run';\n",
    );
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("FATAL:  clawpatrol: the server refused the login: 28000")
            && err.contains("no encryption"),
        "{err}"
    );
    assert!(log_shows(&tls_pg, "no encryption"), "{}", tls_pg.log_text());

    for endpoint in ["postgres.req", "postgres.full"] {
        let (out, err) = psql(
            gw.port(endpoint),
            PLACEHOLDER_USER,
            "appdb",
            "SELECT 'must-not-run';\n",
        );
        assert!(out.is_empty(), "{endpoint}: {out}");
        assert!(
            err.contains("the server does not accept TLS but the endpoint's sslmode requires it"),
            "{endpoint}: {err}"
        );
        let rows = wait_audit_of(&gw.state, Some(endpoint), 1);
        assert!(
            rows.iter()
                .any(|r| r.0 == "connect" && r.2 == "error" && r.3.contains("does not accept TLS")),
            "{endpoint}: {rows:?}"
        );
    }
    // Neither server completed a login.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(logins(&tls_pg), 0, "{}", tls_pg.log_text());
    assert_eq!(logins(&plain_pg), 0, "{}", plain_pg.log_text());
}

/// Whether the server's log mentions `needle` (its own record of a refused login).
fn log_shows(pg: &PgServer, needle: &str) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if pg.log_text().contains(needle) {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
