//! The Postgres gateway end to end: a real PostgreSQL 15 started by the harness, real psql
//! (simple protocol) and tokio-postgres (extended protocol), auth offload with SCRAM and MD5,
//! per-statement gating, audit, hot reload.

mod support;
mod support_pg;

use std::path::Path;

use support::files_containing;
use support_pg::*;

const PLACEHOLDER_USER: &str = "ph_agent_user";

fn policy(pg_port: u16, gw_port: u16, md5_port: u16, extra: &str) -> String {
    let tls_port = gw_port.wrapping_add(1);
    format!(
        r##"schema_version = 1

endpoint "postgres" "db" {{
  host    = "127.0.0.1:{pg_port}"
  sslmode = "disable"
  listen  = "127.0.0.1:{gw_port}"
}}

endpoint "postgres" "dbtls" {{
  host      = "127.0.0.1:{pg_port}"
  sslmode   = "disable"
  listen    = "127.0.0.1:{tls_port}"
  agent_tls = true
}}

endpoint "postgres" "dbmd5" {{
  host    = "127.0.0.1:{pg_port}"
  sslmode = "prefer"
  listen  = "127.0.0.1:{md5_port}"
}}

credential "postgres_credential" "app" {{
  endpoints = [postgres.db, postgres.dbtls]
  user     = "app"
}}

credential "postgres_credential" "appmd5" {{
  endpoint = postgres.dbmd5
  user     = "app_md5"
}}

approver "human_approver" "ops" {{
  channel = "#ops"
  timeout = 1
}}

approver "human_approver" "desk" {{
  channel = "#desk"
  timeout = 60
}}

profile "dev" {{
  credentials = [postgres_credential.app, postgres_credential.appmd5]
}}

rule "no-ddl" {{
  endpoints = [postgres.db, postgres.dbmd5]
  priority  = 100
  condition = "sql.verb in ['drop', 'create', 'alter', 'truncate']"
  verdict   = "deny"
  reason    = "schema changes land via migrations"
}}

rule "no-delete" {{
  endpoints = [postgres.db, postgres.dbmd5]
  condition = "sql.verb == 'delete'"
  verdict   = "deny"
  reason    = "deletes are not allowed"
}}

rule "no-files" {{
  endpoints = [postgres.db, postgres.dbmd5]
  condition = "'pg_read_file' in sql.functions"
  verdict   = "deny"
  reason    = "filesystem functions are blocked"
}}

rule "updates-need-approval" {{
  endpoints = [postgres.db, postgres.dbmd5]
  condition = "sql.verb == 'update'"
  approve   = [human_approver.desk]
  reason    = "updates need the desk"
}}

rule "secrets-need-approval" {{
  endpoints = [postgres.db, postgres.dbmd5]
  condition = "'secrets' in sql.tables"
  approve   = [human_approver.ops]
}}
{extra}
"##
    )
}

struct Setup {
    pg: PgServer,
    gw: PgGateway,
    _dir: tempfile::TempDir,
    config: std::path::PathBuf,
    pg_port: u16,
    gw_port: u16,
    md5_port: u16,
}

fn setup() -> Setup {
    setup_with_args(&[])
}

fn setup_with_args(args: &[&str]) -> Setup {
    let pg = PgServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (mut gw_port, mut md5_port) = (0, 0);
    let config = dir.path().join("policy.hcl");
    let gw = PgGateway::start_retrying(
        &config,
        dir.path(),
        &[
            ("CLAWPATROL_SECRET_APP", SCRAM_PASSWORD),
            ("CLAWPATROL_SECRET_APPMD5", MD5_PASSWORD),
        ],
        args,
        || {
            (gw_port, md5_port) = (free_port(), free_port());
            std::fs::write(&config, policy(pg.port, gw_port, md5_port, "")).unwrap();
        },
    );
    Setup {
        pg_port: pg.port,
        pg,
        gw,
        _dir: dir,
        config,
        gw_port,
        md5_port,
    }
}

#[test]
fn psql_statements_are_gated_and_secrets_stay_in_the_gateway() {
    let s = setup();
    let port = s.gw.port("postgres.db");
    let script = "\
SELECT name FROM t ORDER BY id;
DROP TABLE t;
SELECT 'still-open' AS marker;
SELECT 1\\; DROP TABLE t;
WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *) SELECT count(*) FROM d;
DO $$ BEGIN DROP TABLE t; END $$;
SELECT pg_read_file('/etc/passwd');
SELEC broken syntax;
SELECT * FROM secrets;
SELECT usename FROM pg_stat_activity WHERE pid = pg_backend_pid();
SELECT count(*) FROM t;
\\copy (SELECT id, name FROM t ORDER BY id) TO STDOUT
";
    let (out, err) = psql(port, PLACEHOLDER_USER, "appdb", script);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        vec![
            "alpha",
            "beta",
            "gamma",
            "still-open",
            "app",
            "3",
            "1\talpha",
            "2\tbeta",
            "3\tgamma"
        ],
        "stdout:\n{out}\nstderr:\n{err}"
    );
    let errors: Vec<&str> = err.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 7, "stderr:\n{err}");
    assert!(errors[0].contains("schema changes land via migrations"));
    assert!(errors[1].contains("schema changes land via migrations"));
    assert!(errors[2].contains("deletes are not allowed"));
    assert!(errors[3].contains("schema changes land via migrations"));
    assert!(errors[4].contains("filesystem functions are blocked"));
    assert!(errors[5].contains("unparseable"), "{}", errors[5]);
    assert!(
        errors[6].contains("approver \"ops\" timed out after 1s; upstream request was not sent"),
        "{}",
        errors[6]
    );
    // The table survived and nothing was deleted.
    assert_eq!(s.pg.admin("appdb", "SELECT count(*) FROM t").trim(), "3");

    // COPY in through the gateway.
    let (out, err) = psql(
        port,
        PLACEHOLDER_USER,
        "appdb",
        "\\copy audit_log FROM STDIN\n2\tcopied\n3\tcopied too\n\\.\nSELECT count(*) FROM audit_log;\n",
    );
    assert_eq!(out.trim(), "COPY 2\n3", "stderr:\n{err}");

    // SQLSTATE of a denial.
    let (_, err) = psql(
        port,
        PLACEHOLDER_USER,
        "appdb",
        "\\set VERBOSITY verbose\nDROP TABLE t;\n",
    );
    assert!(err.contains("42501"), "{err}");

    // agent_tls: the agent's SSLRequest is answered with TLS from a minted leaf.
    let (out, err) = psql(
        s.gw.port("postgres.dbtls"),
        PLACEHOLDER_USER,
        "appdb",
        "\\conninfo\nSELECT count(*) FROM t;\n",
    );
    assert!(
        out.contains("SSL connection"),
        "stdout:\n{out}\nstderr:\n{err}"
    );
    assert!(out.trim_end().ends_with('3'), "{out}");

    // MD5 upstream auth, through the sslmode=prefer probe.
    let (out, err) = psql(
        s.gw.port("postgres.dbmd5"),
        "whoever",
        "appdb",
        "SELECT current_user, count(*) FROM t;\n",
    );
    assert_eq!(out.trim(), "app_md5|3", "stderr:\n{err}");

    // The placeholder never reached the server; the real password never left the gateway.
    let server_log = s.pg.log_text();
    assert!(server_log.contains("user=app "), "{server_log}");
    assert!(!server_log.contains(PLACEHOLDER_USER));
    assert!(!out.contains(SCRAM_PASSWORD) && !err.contains(SCRAM_PASSWORD));
    let rows = wait_audit(&s.gw.state, 10);
    assert!(rows
        .iter()
        .any(|r| r.0 == "drop" && r.2 == "deny" && r.3.contains("migrations")));
    assert!(rows.iter().any(|r| r.0 == "connect" && r.2 == "allow"));
    assert!(rows
        .iter()
        .any(|r| r.0 == "select" && r.1.starts_with("SELECT name FROM t") && r.2 == "allow"));
    for secret in [SCRAM_PASSWORD, MD5_PASSWORD] {
        let hits = files_containing(&s.gw.state, secret.as_bytes());
        assert!(hits.is_empty(), "secret found in {hits:?}");
        assert!(!s.gw.log_text().contains(secret));
    }
    let _ = (s.pg_port, s.gw_port, s.md5_port);
}

#[test]
fn sql_run_from_function_arguments_is_gated() {
    let s = setup();
    let port = s.gw.port("postgres.db");
    let script = "\
SELECT query_to_xml('SELECT * FROM secrets', true, true, '');
SELECT query_to_xml('DELETE FROM t RETURNING *', true, true, '');
SELECT table_to_xml('public.secrets', true, false, '');
SELECT query_to_xml(q, true, true, '') FROM (SELECT 'SELECT 1' AS q) s;
SELECT ('/etc/passwd'::text).pg_read_file;
SELECT query_to_xml('SELECT name FROM t ORDER BY id LIMIT 1', true, true, '') AS x;
SELECT count(*) FROM t;
";
    let (out, err) = psql(port, PLACEHOLDER_USER, "appdb", script);
    let errors: Vec<&str> = err.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 5, "stdout:\n{out}\nstderr:\n{err}");
    for i in [0, 2] {
        assert!(
            errors[i]
                .contains("approver \"ops\" timed out after 1s; upstream request was not sent"),
            "{}",
            errors[i]
        );
    }
    assert!(
        errors[1].contains("deletes are not allowed"),
        "{}",
        errors[1]
    );
    assert!(errors[3].contains("unparseable"), "{}", errors[3]);
    // `(expr).f` calls f(expr).
    assert!(
        errors[4].contains("filesystem functions are blocked"),
        "{}",
        errors[4]
    );
    // An allowed inner query runs.
    assert!(
        out.contains("<name>alpha</name>"),
        "stdout:\n{out}\nstderr:\n{err}"
    );
    assert!(out.trim_end().ends_with('3'), "{out}");
    let rows = wait_audit(&s.gw.state, 6);
    assert!(
        rows.iter()
            .any(|r| r.0 == "delete" && r.2 == "deny" && r.3.contains("deletes")),
        "{rows:?}"
    );
}

#[test]
fn login_failures_are_fatal_28000() {
    let s = setup();
    // Let the config watcher take its first snapshot before the edit.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // Wrong real password: the upstream refuses, the agent gets FATAL 28000.
    std::fs::write(
        &s.config,
        policy(s.pg_port, s.gw_port, s.md5_port, "").replace("\"app_md5\"", "\"no_such_role\""),
    )
    .unwrap();
    s.gw.wait_log("config reloaded", 1);
    let (_, err) = psql(
        s.gw.port("postgres.dbmd5"),
        "x",
        "appdb",
        "\\set VERBOSITY verbose\nSELECT 1;\n",
    );
    assert!(
        err.contains("FATAL:  clawpatrol: the server refused the login"),
        "{err}"
    );
    assert!(!err.contains(MD5_PASSWORD));
    // The SQLSTATE is 28000, and nothing of the secret reaches the agent.
    let port = s.gw.port("postgres.dbmd5");
    let db = refused_login(port);
    assert!(!db.message().contains(MD5_PASSWORD));
}

/// A tokio-postgres session through the gateway's listener on `port`, as the agent (its
/// connection task runs in the background).
async fn agent_session(port: u16) -> tokio_postgres::Client {
    let conn_str =
        format!("host=127.0.0.1 port={port} user={PLACEHOLDER_USER} dbname=appdb sslmode=disable");
    let (client, conn) = tokio_postgres::connect(&conn_str, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_protocol_reload_and_denied_parse() {
    let s = setup();
    let client = agent_session(s.gw.port("postgres.db")).await;

    // Prepared statements with parameters.
    let stmt = client
        .prepare("SELECT name FROM t WHERE id = $1")
        .await
        .unwrap();
    let row = client.query_one(&stmt, &[&2i32]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "beta");

    // A denied Parse: exactly one error, and the connection stays usable.
    let err = client.prepare("DROP TABLE t").await.unwrap_err();
    let db = err.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "42501");
    assert!(db.message().contains("migrations"));
    let row = client.query_one(&stmt, &[&3i32]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "gamma");

    // Pipelining: concurrent queries on one connection, one of them denied.
    let (a, b, c) = tokio::join!(
        client.query_one("SELECT count(*) FROM t", &[]),
        client.query("DELETE FROM t WHERE id = $1", &[&1i32]),
        client.query_one("SELECT max(id) FROM t", &[]),
    );
    assert_eq!(a.unwrap().get::<_, i64>(0), 3);
    assert_eq!(b.unwrap_err().as_db_error().unwrap().code().code(), "42501");
    assert_eq!(c.unwrap().get::<_, i32>(0), 3);

    // COPY FROM STDIN in the extended protocol (Parse/Bind/Execute/Sync, data, CopyDone,
    // Sync): the server ignores the Sync that reaches it during the COPY and answers one
    // ReadyForQuery for both, so the gateway must owe the agent only one. A denied statement
    // right after is answered at once (it would wait behind a never-coming answer otherwise).
    {
        use futures_util::SinkExt;
        let sink = client
            .copy_in("COPY audit_log (id, note) FROM STDIN")
            .await
            .unwrap();
        let mut sink = std::pin::pin!(sink);
        sink.send(bytes::Bytes::from_static(b"7\tcopied\n8\tcopied\n"))
            .await
            .unwrap();
        assert_eq!(sink.as_mut().finish().await.unwrap(), 2);
    }
    let err = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        client.prepare("DROP TABLE t"),
    )
    .await
    .expect("a denied Parse after COPY is answered, not parked behind the COPY's Sync")
    .unwrap_err();
    assert_eq!(err.as_db_error().unwrap().code().code(), "42501");
    // A COPY the server rejects mid-way (bad data): one error, and the session goes on.
    {
        use futures_util::SinkExt;
        let sink = client
            .copy_in("COPY audit_log (id, note) FROM STDIN")
            .await
            .unwrap();
        let mut sink = std::pin::pin!(sink);
        let sent = sink
            .send(bytes::Bytes::from_static(b"not-a-number\tbad\n"))
            .await;
        let finished = match sent {
            Ok(()) => sink.as_mut().finish().await,
            Err(e) => Err(e),
        };
        let err = finished.unwrap_err();
        assert_eq!(err.as_db_error().unwrap().code().code(), "22P02", "{err:?}");
    }
    let err = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        client.prepare("DROP TABLE t"),
    )
    .await
    .expect("a denied Parse after a failed COPY is answered")
    .unwrap_err();
    assert_eq!(err.as_db_error().unwrap().code().code(), "42501");
    let copied = client
        .query_one("SELECT count(*) FROM audit_log WHERE note = 'copied'", &[])
        .await
        .unwrap();
    assert_eq!(copied.get::<_, i64>(0), 2);

    // A frame over the 1 MiB inspection cap fails closed; the session goes on.
    let huge = format!("SELECT '{}'", "x".repeat(1_100_000));
    let err = client.simple_query(&huge).await.unwrap_err();
    let db = err.as_db_error().unwrap();
    assert_eq!(db.code().code(), "42501");
    assert!(db.message().contains("1 MiB"), "{}", db.message());
    assert_eq!(
        client
            .query_one("SELECT count(*) FROM t", &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
        3
    );

    // CancelRequest reaches the upstream backend behind the key the agent was given.
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

    // Transactions keep working across a denial.
    client.batch_execute("BEGIN").await.unwrap();
    client
        .execute("INSERT INTO audit_log VALUES ($1, $2)", &[&9i32, &"tx"])
        .await
        .unwrap();
    assert!(client.batch_execute("TRUNCATE audit_log").await.is_err());
    client.batch_execute("COMMIT").await.unwrap();

    // A reload changes the verdict for the next statement of this open session.
    let rows = client.simple_query("SELECT id FROM t").await.unwrap();
    assert!(rows.len() > 1);
    close_t_for_reading(&s);
    let err = client.simple_query("SELECT id FROM t").await.unwrap_err();
    assert!(
        err.as_db_error()
            .unwrap()
            .message()
            .contains("closed for reading"),
        "{err:?}"
    );
    // The statement was prepared before the reload: its Bind is refused until it is
    // prepared again (and then decided by the new policy); the session goes on.
    let err = client.query_one(&stmt, &[&2i32]).await.unwrap_err();
    let db = err.as_db_error().expect("the gateway's denial");
    assert_eq!(db.code().code(), "42501");
    assert!(db.message().contains("prepare it again"), "{db:?}");
    let err = client
        .prepare("SELECT name FROM t WHERE id = $1")
        .await
        .unwrap_err();
    assert!(
        err.as_db_error()
            .unwrap()
            .message()
            .contains("closed for reading"),
        "{err:?}"
    );
    let n: i64 = client
        .query_one("SELECT count(*) FROM audit_log", &[])
        .await
        .unwrap()
        .get(0);
    // The seed row, the transaction's insert and the two copied rows.
    assert_eq!(n, 4);
}

/// Waits until one approval is pending on the gateway and returns its id.
fn pending_id(state: &Path) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_clawpatrol"))
            .args(["approvals", "list", "--json", "--state-dir"])
            .arg(state)
            .output()
            .unwrap();
        let list: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap_or_default();
        if let Some(p) = list.first() {
            assert_eq!(p["approver"], "human_approver.desk");
            assert_eq!(p["endpoint"], "postgres.db");
            assert_eq!(p["method"], "update");
            return p["id"].to_string();
        }
        assert!(std::time::Instant::now() < deadline, "nothing pending");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn decide(state: &Path, args: &[&str]) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_clawpatrol"))
        .arg("approvals")
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn parked_psql_statements_are_released_or_denied_by_a_human() {
    let s = setup();
    let port = s.gw.port("postgres.db");
    let state = s.gw.state.clone();

    // Approved: the statement reaches the server only after the decision.
    let run = std::thread::spawn(move || {
        psql(
            port,
            PLACEHOLDER_USER,
            "appdb",
            "UPDATE t SET name = 'approved' WHERE id = 1;\nSELECT 'after';\n",
        )
    });
    let id = pending_id(&s.gw.state);
    assert_eq!(
        s.pg.admin("appdb", "SELECT name FROM t WHERE id = 1")
            .trim(),
        "alpha"
    );
    decide(&s.gw.state, &["approve", &id, "--by", "carol"]);
    let (out, err) = run.join().unwrap();
    assert!(out.contains("after"), "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(
        s.pg.admin("appdb", "SELECT name FROM t WHERE id = 1")
            .trim(),
        "approved"
    );

    // Denied: the operator's reason reaches psql as 42501, the session goes on.
    let run = std::thread::spawn(move || {
        psql(
            port,
            PLACEHOLDER_USER,
            "appdb",
            "UPDATE t SET name = 'nope' WHERE id = 2;\nSELECT 'still-open';\n",
        )
    });
    let id = pending_id(&state);
    decide(&state, &["deny", &id, "--reason", "not during the freeze"]);
    let (out, err) = run.join().unwrap();
    assert!(err.contains("not during the freeze"), "{err}");
    assert!(out.contains("still-open"), "{out}");
    assert_eq!(
        s.pg.admin("appdb", "SELECT name FROM t WHERE id = 2")
            .trim(),
        "beta"
    );

    // Two statements needing different approvers: both chains run (desk, then ops), the
    // approvers see the whole text, and ops timing out denies the frame whole.
    let run = std::thread::spawn(move || {
        psql(
            port,
            PLACEHOLDER_USER,
            "appdb",
            "UPDATE t SET name = 'both' WHERE id = 3\\; SELECT * FROM secrets;\n",
        )
    });
    let id = pending_id(&state);
    let shown = std::process::Command::new(env!("CARGO_BIN_EXE_clawpatrol"))
        .args(["approvals", "show", &id, "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&shown.stdout).contains("secrets"));
    decide(&state, &["approve", &id]);
    let (_, err) = run.join().unwrap();
    assert!(err.contains("approver \"ops\" timed out after 1s"), "{err}");
    assert_eq!(
        s.pg.admin("appdb", "SELECT name FROM t WHERE id = 3")
            .trim(),
        "gamma"
    );

    let rows = wait_audit(&s.gw.state, 1);
    assert!(
        rows.iter().any(|r| r.0 == "update" && r.2 == "approved"),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r.0 == "update" && r.2 == "denied" && r.3 == "not during the freeze"),
        "{rows:?}"
    );
}

/// Reads backend messages from a raw socket until a ReadyForQuery arrives.
fn read_until_ready(
    sock: &mut std::net::TcpStream,
    dec: &mut clawpatrol_protocols::postgres::BackendDecoder,
) -> Vec<clawpatrol_protocols::postgres::BackendMessage> {
    use clawpatrol_protocols::postgres::BackendMessage;
    let out = read_until_ready_or_closed(sock, dec);
    assert!(
        matches!(out.last(), Some(BackendMessage::ReadyForQuery(_))),
        "the gateway closed the connection; got {out:?}"
    );
    out
}

#[test]
fn function_call_is_denied_and_the_session_goes_on() {
    use clawpatrol_protocols::postgres::{
        BackendMessage, FrontendMessage, FUNCTION_CALL_DENY_REASON,
    };
    use std::io::Write;
    let s = setup();
    let (mut sock, mut dec) = raw_login(s.gw.port("postgres.db"));
    let send = |m: FrontendMessage, sock: &mut std::net::TcpStream| {
        let mut bytes = Vec::new();
        m.encode(&mut bytes).unwrap();
        sock.write_all(&bytes).unwrap();
    };

    // The legacy fast-path call of lo_unlink(0): no SQL text, so it never reaches the server
    // (which would answer FunctionCallResponse or its own error, not the gateway's 42501).
    send(
        FrontendMessage::FunctionCall {
            function: 964,
            arg_formats: vec![1],
            args: vec![Some(0u32.to_be_bytes().to_vec())],
            result_format: 1,
        },
        &mut sock,
    );
    let answer = read_until_ready(&mut sock, &mut dec);
    let [BackendMessage::ErrorResponse(e), BackendMessage::ReadyForQuery(_)] = answer.as_slice()
    else {
        panic!("expected exactly ErrorResponse + ReadyForQuery, got {answer:?}")
    };
    assert_eq!(e.code(), Some("42501"));
    assert_eq!(e.message(), Some(FUNCTION_CALL_DENY_REASON));

    // The session goes on.
    send(
        FrontendMessage::Query("SELECT count(*) FROM t".into()),
        &mut sock,
    );
    let answer = read_until_ready(&mut sock, &mut dec);
    assert!(
        answer
            .iter()
            .any(|m| matches!(m, BackendMessage::DataRow(_))),
        "{answer:?}"
    );
    // A stray CopyDone between two Queries (no COPY running: the server ignores it) must not
    // hold back the gateway's answer to the denied second Query.
    let mut batch = Vec::new();
    for m in [
        FrontendMessage::Query("SELECT 1".into()),
        FrontendMessage::CopyDone,
        FrontendMessage::Query("DROP TABLE t".into()),
    ] {
        m.encode(&mut batch).unwrap();
    }
    sock.write_all(&batch).unwrap();
    let first = read_until_ready(&mut sock, &mut dec);
    assert!(
        first
            .iter()
            .any(|m| matches!(m, BackendMessage::DataRow(_))),
        "{first:?}"
    );
    let second = read_until_ready(&mut sock, &mut dec);
    let [BackendMessage::ErrorResponse(e), BackendMessage::ReadyForQuery(_)] = second.as_slice()
    else {
        panic!("expected the gateway's denial, got {second:?}")
    };
    assert_eq!(e.code(), Some("42501"));

    // Stray CopyDones with nothing owed are not tracked at all; while an answer is owed
    // (a slow query), a flood of them is bounded: the gateway closes the session.
    let mut flood = Vec::new();
    for _ in 0..20_000 {
        FrontendMessage::CopyDone.encode(&mut flood).unwrap();
    }
    sock.write_all(&flood).unwrap();
    send(FrontendMessage::Query("SELECT 2".into()), &mut sock);
    let alive = read_until_ready(&mut sock, &mut dec);
    assert!(
        alive
            .iter()
            .any(|m| matches!(m, BackendMessage::DataRow(_))),
        "{alive:?}"
    );
    let mut slow = Vec::new();
    FrontendMessage::Query("SELECT pg_sleep(1)".into())
        .encode(&mut slow)
        .unwrap();
    slow.extend_from_slice(&flood);
    let _ = sock.write_all(&slow);
    assert!(
        closed_by_gateway(&mut sock),
        "the gateway should close a session that floods owed answers"
    );

    let rows = wait_audit(&s.gw.state, 3);
    assert!(
        rows.iter()
            .any(|r| r.0 == "function_call" && r.2 == "deny" && r.3 == FUNCTION_CALL_DENY_REASON),
        "{rows:?}"
    );
}

/// Statements the server runs although the text hides them from a naive splitter: a `--`
/// comment ended by CR, a quote escaped by a backslash in an `E'…'` string, and one escaped
/// in a plain string while `standard_conforming_strings` is off. Each text is denied whole,
/// and nothing is deleted or dropped.
#[test]
fn statements_hidden_by_cr_comments_and_escape_strings_are_denied() {
    use clawpatrol_protocols::postgres::{BackendMessage, FrontendMessage};
    let s = setup();
    let (mut sock, mut dec) = raw_login(s.gw.port("postgres.db"));
    for (text, reason) in [
        (
            "SELECT name FROM t WHERE id = 1 --\r; DELETE FROM t",
            "deletes are not allowed",
        ),
        (
            "SELECT 1 --\r; DROP TABLE t",
            "schema changes land via migrations",
        ),
        (
            r"SELECT E'\'(' ; DROP TABLE t",
            "schema changes land via migrations",
        ),
    ] {
        let answer = exchange(
            &mut sock,
            &mut dec,
            vec![FrontendMessage::Query(text.into())],
        );
        assert_eq!(denial(&answer), reason, "{text:?}");
    }
    // The same texts run as the server reads them once the policy allows them: the
    // statements really were there.
    let answer = exchange(
        &mut sock,
        &mut dec,
        vec![FrontendMessage::Query(
            "SELECT name FROM t WHERE id = 1 --\r; SELECT count(*) FROM t".into(),
        )],
    );
    let completed = answer
        .iter()
        .filter(|m| matches!(m, BackendMessage::CommandComplete(_)))
        .count();
    assert_eq!(completed, 2, "two statements ran: {answer:?}");

    // With standard_conforming_strings off (the agent may turn it off) the server reads a
    // backslash before a quote as an escape: this text is then a SELECT and a DROP, while
    // the default reading is one SELECT. The gateway cannot know which applies: it denies.
    query_ok(&mut sock, &mut dec, "SET standard_conforming_strings = off");
    let answer = exchange(
        &mut sock,
        &mut dec,
        vec![FrontendMessage::Query(
            r"SELECT 'x\'' ; DROP TABLE t; --'".into(),
        )],
    );
    assert!(denial(&answer).contains("unparseable"), "{answer:?}");
    assert_eq!(s.pg.admin("appdb", "SELECT count(*) FROM t").trim(), "3");
}

/// In a client-only encoding such as SJIS the second byte of a character can be `\`: the
/// UTF-8 text `E'Ё\' ; DROP TABLE t; --'` is one SELECT to the gateway but a SELECT and a
/// DROP to a server reading SJIS. Sessions stay in UTF-8: other encodings are refused at
/// login (also through `options`), statements that switch are denied, and a session the
/// server reports in such an encoding anyway is closed.
#[test]
fn client_encodings_the_gateway_cannot_read_are_refused() {
    use clawpatrol_protocols::postgres::{BackendMessage, FrontendMessage};
    let s = setup();
    let port = s.gw.port("postgres.db");
    for extra in [
        vec![("client_encoding", "SJIS")],
        vec![("client_encoding", "win950")],
        vec![("Client_Encoding", "BIG5")],
        vec![("client_encoding", "UTF8"), ("client_encoding", "GBK")],
    ] {
        let (_, _, login) = raw_login_with(port, &extra);
        let (code, message) = fatal(&login).unwrap_or_else(|| panic!("{extra:?}: {login:?}"));
        assert_eq!(code, "28000", "{extra:?}");
        assert!(message.contains("client_encoding"), "{message}");
        assert!(
            !login
                .iter()
                .any(|m| matches!(m, BackendMessage::Authentication(_))),
            "{extra:?}: {login:?}"
        );
    }
    // Without a choice of its own the session is pinned to UTF8, which also wins over
    // `options`; SQL_ASCII over a UTF-8 database reads the same.
    let encoding = |login: &[BackendMessage]| {
        login.iter().find_map(|m| match m {
            BackendMessage::ParameterStatus { name, value } if name == "client_encoding" => {
                Some(value.clone())
            }
            _ => None,
        })
    };
    for (extra, expect) in [
        (vec![], "UTF8"),
        (vec![("options", "-c client_encoding=GBK")], "UTF8"),
        (vec![("options", "--client-encoding=UHC")], "UTF8"),
        (vec![("client_encoding", "SQL_ASCII")], "SQL_ASCII"),
        (vec![("client_encoding", "utf-8")], "UTF8"),
    ] {
        let (_, _, login) = raw_login_with(port, &extra);
        assert!(fatal(&login).is_none(), "{extra:?}: {login:?}");
        assert_eq!(encoding(&login).as_deref(), Some(expect), "{extra:?}");
    }
    // The server's report decides: SQL_ASCII over an EUC_JP database is not read as UTF-8.
    s.pg.admin(
        "postgres",
        "CREATE DATABASE eucdb ENCODING 'EUC_JP' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'",
    );
    let (_, _, login) = raw_login_with(
        port,
        &[("database", "eucdb"), ("client_encoding", "SQL_ASCII")],
    );
    let (code, message) = fatal(&login).unwrap_or_else(|| panic!("{login:?}"));
    assert_eq!(code, "28000");
    assert!(message.contains("SQL_ASCII"), "{message}");

    let (mut sock, mut dec) = raw_login(port);
    for text in [
        "SET client_encoding TO 'SJIS'",
        "SET NAMES 'GBK'",
        "SET LOCAL client_encoding = big5",
        "SELECT set_config('client_encoding', 'UHC', false)",
        "SELECT set_config(name, 'SJIS', false) FROM (VALUES ('client_encoding')) v(name)",
        "DO $$BEGIN PERFORM set_config('client_encoding', 'SJIS', false); END$$",
        "DO $$BEGIN SET client_encoding = 'SJIS'; END$$",
        "UPDATE pg_settings SET setting = 'SJIS' WHERE name = 'client_encoding'",
        "EXPLAIN ANALYZE UPDATE pg_settings SET setting = 'SJIS' WHERE name = 'client_encoding'",
        "PREPARE p AS UPDATE pg_settings SET setting = 'SJIS' WHERE name = 'client_encoding'",
        "WITH u AS (UPDATE pg_catalog.pg_settings SET setting = 'BIG5' WHERE name = 'client_encoding' RETURNING 1) SELECT 1",
    ] {
        let answer = exchange(
            &mut sock,
            &mut dec,
            vec![FrontendMessage::Query(text.into())],
        );
        assert!(
            denial(&answer).contains("client_encoding"),
            "{text}: {answer:?}"
        );
    }
    for text in [
        "SET client_encoding TO 'UTF8'",
        "RESET client_encoding",
        "SELECT set_config('application_name', 'agent', false)",
    ] {
        query_ok(&mut sock, &mut dec, text);
    }
    // Read as UTF-8 (as the server still does) this is one harmless SELECT.
    let answer = exchange(
        &mut sock,
        &mut dec,
        vec![FrontendMessage::Query(
            "SELECT E'\u{401}\\' ; DROP TABLE t; --'".into(),
        )],
    );
    assert!(has_rows(&answer), "{answer:?}");
    assert_eq!(s.pg.admin("appdb", "SELECT count(*) FROM t").trim(), "3");

    // Non-ASCII text pipelined behind other statements waits for their answers, then runs.
    send(
        &mut sock,
        ["SELECT 1", "SELECT 'Ё' AS e"].map(|q| FrontendMessage::Query(q.into())),
    );
    let first = read_until_ready(&mut sock, &mut dec);
    let second = read_until_ready(&mut sock, &mut dec);
    assert!(
        has_rows(&first) && has_rows(&second),
        "{first:?} {second:?}"
    );

    // A function the gateway cannot see into switches the encoding: the server reports it,
    // and the gateway ends the session before anything else is read.
    s.pg.admin(
        "appdb",
        "CREATE FUNCTION enc_flip(e text) RETURNS text LANGUAGE plpgsql AS \
         $$BEGIN RETURN set_config('client_' || 'encoding', e, false); END$$",
    );
    send(
        &mut sock,
        [FrontendMessage::Query("SELECT enc_flip('SJIS')".into())],
    );
    let answer = read_until_ready_or_closed(&mut sock, &mut dec);
    let (code, message) = fatal(&answer).unwrap_or_else(|| panic!("{answer:?}"));
    assert_eq!(code, "0A000");
    assert!(message.contains("SJIS"), "{message}");
    assert!(
        !answer
            .iter()
            .any(|m| matches!(m, BackendMessage::ReadyForQuery(_))),
        "{answer:?}"
    );
    assert!(closed_by_gateway(&mut sock));

    // The same, with the statement that a SJIS reading turns into a DROP pipelined behind
    // the call (simple protocol): it waits for the call's answer, which ends the session.
    let mut sock = ended_by_unreadable_encoding(
        &s,
        port,
        [
            "SELECT enc_flip('SJIS')",
            "SELECT E'\u{401}\\' ; DROP TABLE t; --'",
        ]
        .map(|q| FrontendMessage::Query(q.into())),
    );
    assert!(closed_by_gateway(&mut sock));

    // After a COPY (psql's `\copy`: the Query, its data, CopyDone, then the answer) a
    // non-ASCII statement runs as usual.
    let (mut sock, mut dec) = raw_login(port);
    send(
        &mut sock,
        [FrontendMessage::Query(
            "COPY audit_log (id, note) FROM STDIN".into(),
        )],
    );
    let mut buf = [0u8; 4096];
    while !dec.next_frame().unwrap().is_some_and(|f| {
        matches!(
            f,
            clawpatrol_protocols::postgres::Decoded::Message(BackendMessage::CopyInResponse(_))
        )
    }) {
        let n = std::io::Read::read(&mut sock, &mut buf).unwrap();
        assert!(n > 0);
        dec.feed(&buf[..n]);
    }
    let copied = exchange(
        &mut sock,
        &mut dec,
        vec![
            FrontendMessage::CopyData(b"7\tcopied \xc3\xa9\n".to_vec()),
            FrontendMessage::CopyDone,
        ],
    );
    assert!(fatal(&copied).is_none(), "{copied:?}");
    let answer = exchange(
        &mut sock,
        &mut dec,
        vec![FrontendMessage::Query("SELECT 'Ё' AS e".into())],
    );
    assert!(has_rows(&answer), "{answer:?}");
    drop(sock);

    // A Sync pipelined into a COPY that fails: whether the server ignores it depends on when
    // the COPY fails, so the gateway no longer matches answers to requests with certainty
    // and refuses non-ASCII text for the rest of the session (here: behind a call that
    // switches the encoding, it would be read as SJIS).
    let (mut sock, _) = raw_login(port);
    let mut frames = vec![
        FrontendMessage::Query("COPY audit_log (id, note) FROM STDIN".into()),
        FrontendMessage::CopyData(b"not a number\tx\n".to_vec()),
        FrontendMessage::Sync,
        FrontendMessage::CopyDone,
    ];
    frames.extend(prepare("", "SELECT enc_flip('SJIS')").into_iter().take(1));
    frames.extend(run_prepared(""));
    frames.push(FrontendMessage::Query(
        "SELECT E'\u{401}\\' ; DROP TABLE t; --'".into(),
    ));
    send(&mut sock, frames);
    assert!(closed_by_gateway(&mut sock));
    assert_eq!(s.pg.admin("appdb", "SELECT count(*) FROM t").trim(), "3");

    // A Parse alone can run a function: a constant cast to a domain runs the domain's
    // CHECK. A non-ASCII Parse behind it in the same batch cannot wait (no Sync yet), so it
    // is denied; the server never reads it.
    s.pg.admin(
        "appdb",
        "CREATE DOMAIN encd AS text CHECK (enc_flip('SJIS') IS NOT NULL)",
    );
    let mut batch = prepare("", "SELECT '{x}'::encd[]");
    batch.pop(); // its Sync
    batch.extend(hidden_delete());
    ended_by_unreadable_encoding(&s, port, batch);

    // Extended protocol: behind an Execute of its own batch such a Parse cannot wait (no
    // Sync yet), so it is denied; the call's answer then ends the session.
    let mut batch = prepare("", "SELECT enc_flip('SJIS')");
    batch.pop(); // its Sync
    batch.extend(
        run_prepared("")
            .into_iter()
            .filter(|m| !matches!(m, FrontendMessage::Sync)),
    );
    batch.extend(hidden_delete());
    ended_by_unreadable_encoding(&s, port, batch);
    // The session ended before the batch's answer, so the denial is in the audit only.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !audit_rows(&s.gw.state)
        .iter()
        .any(|(_, _, action, reason)| action == "deny" && reason.contains("non-ASCII"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no audit row of the denied Parse"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Parse, Bind, Execute and Sync of one statement that is a SELECT read as UTF-8, and a
/// SELECT with a data-modifying CTE deleting all of `t` read as SJIS (where the
/// backslash after `Ё` is the second byte of a character).
fn hidden_delete() -> Vec<clawpatrol_protocols::postgres::FrontendMessage> {
    let mut msgs = prepare(
        "",
        "WITH a AS (SELECT E'\u{401}\\'), d AS (DELETE FROM t RETURNING 1) SELECT 1 --') SELECT 1",
    );
    msgs.pop();
    msgs.extend(run_prepared(""));
    msgs
}

/// Reads until the gateway closes the socket (true) or the read times out (false).
fn closed_by_gateway(sock: &mut std::net::TcpStream) -> bool {
    use std::io::Read;
    let mut buf = [0u8; 4096];
    loop {
        match sock.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(_) => return false,
        }
    }
}

/// Reloads the policy with a rule that denies reading `t`, and waits for the reload.
fn close_t_for_reading(s: &Setup) {
    let extra = r#"
rule "no-reads-of-t" {
  endpoint  = postgres.db
  priority  = 200
  condition = "sql.verb == 'select' && 't' in sql.tables"
  verdict   = "deny"
  reason    = "t is closed for reading"
}
"#;
    std::fs::write(&s.config, policy(s.pg_port, s.gw_port, s.md5_port, extra)).unwrap();
    s.gw.wait_log("config reloaded", 1);
}

/// Logs in over a raw socket with the placeholder user; returns the socket and its decoder.
fn raw_login(
    port: u16,
) -> (
    std::net::TcpStream,
    clawpatrol_protocols::postgres::BackendDecoder,
) {
    use clawpatrol_protocols::postgres::BackendMessage;
    let (sock, dec, login) = raw_login_with(port, &[]);
    assert!(
        !login
            .iter()
            .any(|m| matches!(m, BackendMessage::ErrorResponse(_))),
        "{login:?}"
    );
    (sock, dec)
}

/// Sends a StartupMessage with the placeholder user, database `appdb` (unless `extra` names
/// one) and `extra`
/// parameters; returns the socket, its decoder and the answer up to ReadyForQuery or close.
fn raw_login_with(
    port: u16,
    extra: &[(&str, &str)],
) -> (
    std::net::TcpStream,
    clawpatrol_protocols::postgres::BackendDecoder,
    Vec<clawpatrol_protocols::postgres::BackendMessage>,
) {
    use clawpatrol_protocols::postgres::{
        BackendDecoder, BackendMessage, FrontendMessage, ProtocolVersion,
    };
    use std::io::Write;
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(15)))
        .unwrap();
    let mut dec = BackendDecoder::new();
    let mut bytes = Vec::new();
    let mut params = vec![("user".to_string(), PLACEHOLDER_USER.to_string())];
    if !extra.iter().any(|(k, _)| *k == "database") {
        params.push(("database".to_string(), "appdb".to_string()));
    }
    params.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    FrontendMessage::Startup {
        version: ProtocolVersion::V3_0,
        params,
    }
    .encode(&mut bytes)
    .unwrap();
    sock.write_all(&bytes).unwrap();
    let login = read_until_ready_or_closed(&mut sock, &mut dec);
    if login
        .last()
        .is_some_and(|m| !matches!(m, BackendMessage::ReadyForQuery(_)))
    {
        assert!(closed_by_gateway(&mut sock), "{login:?}");
    }
    (sock, dec, login)
}

/// Reads answers up to the first ReadyForQuery, or until the gateway closes the socket.
fn read_until_ready_or_closed(
    sock: &mut std::net::TcpStream,
    dec: &mut clawpatrol_protocols::postgres::BackendDecoder,
) -> Vec<clawpatrol_protocols::postgres::BackendMessage> {
    use clawpatrol_protocols::postgres::{BackendMessage, Decoded};
    use std::io::Read;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        while let Some(item) = dec.next_frame().unwrap() {
            let Decoded::Message(m) = item else {
                panic!("unexpected {item:?}")
            };
            let ready = matches!(m, BackendMessage::ReadyForQuery(_));
            out.push(m);
            if ready {
                return out;
            }
        }
        match sock.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => dec.feed(&buf[..n]),
            Err(e) => panic!("no answer: {e}; got {out:?}"),
        }
    }
}

/// Logs in, sends `msgs` in one write and checks that the gateway ends the session with
/// FATAL 0A000 (the server now reads an encoding it cannot) and `t` still has its 3 rows.
fn ended_by_unreadable_encoding(
    s: &Setup,
    port: u16,
    msgs: impl IntoIterator<Item = clawpatrol_protocols::postgres::FrontendMessage>,
) -> std::net::TcpStream {
    let (mut sock, mut dec) = raw_login(port);
    send(&mut sock, msgs);
    let answer = read_until_ready_or_closed(&mut sock, &mut dec);
    assert_eq!(
        fatal(&answer).map(|f| f.0).as_deref(),
        Some("0A000"),
        "{answer:?}"
    );
    assert_eq!(s.pg.admin("appdb", "SELECT count(*) FROM t").trim(), "3");
    sock
}

/// The FATAL error (SQLSTATE, message) in `answer`, if any.
fn fatal(answer: &[clawpatrol_protocols::postgres::BackendMessage]) -> Option<(String, String)> {
    use clawpatrol_protocols::postgres::BackendMessage;
    answer.iter().find_map(|m| match m {
        BackendMessage::ErrorResponse(f) if f.severity() == Some("FATAL") => Some((
            f.code().unwrap_or("").to_string(),
            f.message().unwrap_or("").to_string(),
        )),
        _ => None,
    })
}

/// Sends `msgs` in one write and reads the answers up to the first ReadyForQuery.
fn exchange(
    sock: &mut std::net::TcpStream,
    dec: &mut clawpatrol_protocols::postgres::BackendDecoder,
    msgs: Vec<clawpatrol_protocols::postgres::FrontendMessage>,
) -> Vec<clawpatrol_protocols::postgres::BackendMessage> {
    send(sock, msgs);
    read_until_ready(sock, dec)
}

/// Sends `msgs` in one write (pipelined), reading nothing.
fn send(
    sock: &mut std::net::TcpStream,
    msgs: impl IntoIterator<Item = clawpatrol_protocols::postgres::FrontendMessage>,
) {
    let mut bytes = Vec::new();
    for m in msgs {
        m.encode(&mut bytes).unwrap();
    }
    std::io::Write::write_all(sock, &bytes).unwrap();
}

/// Runs simple `text` and asserts the server answered without an error.
fn query_ok(
    sock: &mut std::net::TcpStream,
    dec: &mut clawpatrol_protocols::postgres::BackendDecoder,
    text: &str,
) -> Vec<clawpatrol_protocols::postgres::BackendMessage> {
    use clawpatrol_protocols::postgres::{BackendMessage, FrontendMessage};
    let answer = exchange(sock, dec, vec![FrontendMessage::Query(text.into())]);
    assert!(
        !answer
            .iter()
            .any(|m| matches!(m, BackendMessage::ErrorResponse(_))),
        "{text}: {answer:?}"
    );
    answer
}

/// Bind (unnamed portal) of `statement`, Execute and Sync.
fn run_prepared(statement: &str) -> Vec<clawpatrol_protocols::postgres::FrontendMessage> {
    use clawpatrol_protocols::postgres::FrontendMessage;
    vec![
        FrontendMessage::Bind {
            portal: String::new(),
            statement: statement.into(),
            param_formats: vec![],
            params: vec![],
            result_formats: vec![],
        },
        FrontendMessage::Execute {
            portal: String::new(),
            max_rows: 0,
        },
        FrontendMessage::Sync,
    ]
}

/// Parse of `name` as `sql`, then Sync.
fn prepare(name: &str, sql: &str) -> Vec<clawpatrol_protocols::postgres::FrontendMessage> {
    use clawpatrol_protocols::postgres::FrontendMessage;
    vec![
        FrontendMessage::Parse {
            name: name.into(),
            query: sql.into(),
            param_types: vec![],
        },
        FrontendMessage::Sync,
    ]
}

/// The single gateway denial in `answer` (ErrorResponse 42501 + ReadyForQuery), its message.
fn denial(answer: &[clawpatrol_protocols::postgres::BackendMessage]) -> String {
    use clawpatrol_protocols::postgres::BackendMessage;
    let [BackendMessage::ErrorResponse(e), BackendMessage::ReadyForQuery(_)] = answer else {
        panic!("expected exactly ErrorResponse + ReadyForQuery, got {answer:?}")
    };
    assert_eq!(e.code(), Some("42501"), "{e:?}");
    e.message().unwrap_or_default().to_string()
}

fn has_rows(answer: &[clawpatrol_protocols::postgres::BackendMessage]) -> bool {
    use clawpatrol_protocols::postgres::BackendMessage;
    answer
        .iter()
        .any(|m| matches!(m, BackendMessage::DataRow(_)))
}

/// Statements prepared before a reload are decided again at their next Bind, with the text
/// the server really holds under the name; statements whose text the gateway cannot know
/// (SQL PREPARE, DEALLOCATE) are refused after a reload.
#[test]
fn prepared_statements_are_decided_again_after_a_reload() {
    use clawpatrol_protocols::postgres::{BackendMessage, FrontendMessage};
    let s = setup();
    let (mut sock, mut dec) = raw_login(s.gw.port("postgres.db"));
    let sock = &mut sock;
    let dec = &mut dec;

    // A statement prepared in SQL, reachable by Bind under its name. (SQL PREPARE,
    // DEALLOCATE and DISCARD make the statements confirmed before them unknown, so this
    // one comes first.)
    let sql_prepared = exchange(
        sock,
        dec,
        vec![FrontendMessage::Query(
            "PREPARE s_sql AS SELECT name FROM t WHERE id = 3".into(),
        )],
    );
    assert!(
        !sql_prepared
            .iter()
            .any(|m| matches!(m, BackendMessage::ErrorResponse(_))),
        "{sql_prepared:?}"
    );
    let ok = exchange(sock, dec, prepare("s1", "SELECT name FROM t WHERE id = 1"));
    assert!(
        ok.iter()
            .any(|m| matches!(m, BackendMessage::ParseComplete)),
        "{ok:?}"
    );
    exchange(sock, dec, prepare("s_const", "SELECT 42 AS answer"));
    // The first Parse of s5 fails on the server (no such table); the second one holds.
    let failed = exchange(sock, dec, prepare("s5", "SELECT * FROM no_such_table"));
    assert!(
        failed
            .iter()
            .any(|m| matches!(m, BackendMessage::ErrorResponse(_))),
        "{failed:?}"
    );
    exchange(sock, dec, prepare("s5", "SELECT name FROM t WHERE id = 2"));
    // Parsed then closed: the server no longer has s_closed.
    let closed = exchange(
        sock,
        dec,
        vec![
            FrontendMessage::Parse {
                name: "s_closed".into(),
                query: "SELECT 7".into(),
                param_types: vec![],
            },
            FrontendMessage::Close {
                target: clawpatrol_protocols::postgres::Target::Statement,
                name: "s_closed".into(),
            },
            FrontendMessage::Sync,
        ],
    );
    assert!(
        closed
            .iter()
            .any(|m| matches!(m, BackendMessage::CloseComplete)),
        "{closed:?}"
    );
    // Before the reload every one of them runs.
    for name in ["s1", "s_const", "s5", "s_sql"] {
        let answer = exchange(sock, dec, run_prepared(name));
        assert!(has_rows(&answer), "{name}: {answer:?}");
    }

    close_t_for_reading(&s);

    // Prepared before the reload: refused, exactly one error each, whatever the text.
    for name in ["s1", "s5", "s_const", "s_sql"] {
        let refused = denial(&exchange(sock, dec, run_prepared(name)));
        assert!(refused.contains("prepare it again"), "{name}: {refused}");
    }
    // A new Parse under an existing name fails upstream (duplicate): s_const still holds
    // the old statement, so it stays refused.
    let dup = exchange(sock, dec, prepare("s_const", "SELECT 43"));
    assert!(
        dup.iter()
            .any(|m| matches!(m, BackendMessage::ErrorResponse(_))),
        "{dup:?}"
    );
    assert!(denial(&exchange(sock, dec, run_prepared("s_const"))).contains("prepare it again"));
    // Closed and prepared again under the new policy: runs.
    let again = exchange(
        sock,
        dec,
        vec![
            FrontendMessage::Close {
                target: clawpatrol_protocols::postgres::Target::Statement,
                name: "s_const".into(),
            },
            FrontendMessage::Parse {
                name: "s_const".into(),
                query: "SELECT 44".into(),
                param_types: vec![],
            },
            FrontendMessage::Sync,
        ],
    );
    assert!(
        again
            .iter()
            .any(|m| matches!(m, BackendMessage::ParseComplete)),
        "{again:?}"
    );
    assert!(has_rows(&exchange(sock, dec, run_prepared("s_const"))));
    // Parse and Bind in one batch under the new policy: runs.
    let same_batch = exchange(
        sock,
        dec,
        [prepare("s7", "SELECT 7")[..1].to_vec(), run_prepared("s7")].concat(),
    );
    assert!(has_rows(&same_batch), "{same_batch:?}");
    // The new policy decides what is prepared now.
    let denied_parse = denial(&exchange(
        sock,
        dec,
        prepare("s8", "SELECT name FROM t WHERE id = 1"),
    ));
    assert!(
        denied_parse.contains("closed for reading"),
        "{denied_parse}"
    );
    // A Bind over the 1 MiB inspection cap cannot be matched to its statement any more.
    let mut huge = run_prepared("s_const");
    if let FrontendMessage::Bind { params, .. } = &mut huge[0] {
        params.push(Some(vec![b'x'; 1_100_000]));
    }
    let too_big = denial(&exchange(sock, dec, huge));
    assert!(too_big.contains("1 MiB"), "{too_big}");
    // Closed before the reload: refused the same way.
    let gone = denial(&exchange(sock, dec, run_prepared("s_closed")));
    assert!(gone.contains("prepare it again"), "{gone}");
    // A Bind denied after an allowed Parse in the same batch: one error for the batch.
    let batch = exchange(
        sock,
        dec,
        [
            vec![FrontendMessage::Parse {
                name: "s6".into(),
                query: "SELECT 6".into(),
                param_types: vec![],
            }],
            run_prepared("s1"),
        ]
        .concat(),
    );
    let errors = batch
        .iter()
        .filter(|m| matches!(m, BackendMessage::ErrorResponse(_)))
        .count();
    assert_eq!(errors, 1, "{batch:?}");
    // The session goes on.
    assert!(has_rows(&exchange(
        sock,
        dec,
        vec![FrontendMessage::Query("SELECT 1".into())]
    )));

    // A simple Query inside an unfinished extended batch closes the session: after an error
    // in the batch the server would skip it, and answers could no longer be matched.
    {
        use std::io::Write;
        let mut bytes = Vec::new();
        for m in [
            FrontendMessage::Parse {
                name: "s9".into(),
                query: "SELECT 9".into(),
                param_types: vec![],
            },
            FrontendMessage::Query("SELECT 1".into()),
        ] {
            m.encode(&mut bytes).unwrap();
        }
        sock.write_all(&bytes).unwrap();
        assert!(
            closed_by_gateway(sock),
            "a Query inside an extended batch must close the session"
        );
    }

    // Rows: connect, PREPARE, five Parses, then after the reload (at least) the refused Binds.
    let rows = wait_audit(&s.gw.state, 20);
    assert!(
        rows.iter()
            .any(|r| r.0 == "bind" && r.2 == "deny" && r.3.contains("prepare it again")),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r.0 == "select" && r.2 == "deny" && r.3.contains("closed for reading")),
        "{rows:?}"
    );
}

/// With one session thread, a session waiting on the server does not hold up the others:
/// the thread is an event loop, not one blocking session at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_session_thread_serves_a_waiting_session_and_others() {
    let s = setup_with_args(&["--postgres-threads", "1"]);
    assert!(
        s.gw.log_text().contains("1 postgres session thread"),
        "{}",
        s.gw.log_text()
    );
    let port = s.gw.port("postgres.db");
    let connect = || agent_session(port);
    let holder = connect().await;
    let waiter = connect().await;
    holder
        .simple_query("SELECT pg_advisory_lock(4242)")
        .await
        .unwrap();
    // The waiter's statement reaches the server and blocks there.
    let waiting = tokio::spawn(async move {
        waiter
            .simple_query("SELECT pg_advisory_lock(4242), 'got it'")
            .await
            .map(|_| waiter)
    });
    loop {
        let rows = holder
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap();
        if rows.get::<_, i64>(0) == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Meanwhile the same thread serves the holder and a new session.
    let third = connect().await;
    let row = third
        .query_one("SELECT name FROM t WHERE id = 2", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "beta");
    assert!(!waiting.is_finished());
    holder
        .simple_query("SELECT pg_advisory_unlock(4242)")
        .await
        .unwrap();
    let waiter = waiting.await.unwrap().expect("the waiter gets the lock");
    waiter.simple_query("SELECT 1").await.unwrap();
}

/// CPU time (user + system, clock ticks) the process has used so far, all threads.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// With busy polling on, sessions are decided as usual (an allowed statement returns rows, a
/// denied one gets 42501 and the session goes on), the session thread polled while they ran,
/// and once they are idle it sleeps instead of polling on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_polling_sessions_are_gated_and_the_thread_sleeps_when_idle() {
    let mut s = setup_with_args(&["--postgres-threads", "1", "--postgres-busy-poll", "2000"]);
    let log = s.gw.log_text();
    assert!(
        log.contains("1 postgres session thread") && log.contains("busy_poll_us=2000"),
        "{log}"
    );
    let client = agent_session(s.gw.port("postgres.db")).await;
    for _ in 0..200 {
        let row = client
            .query_one("SELECT name FROM t WHERE id = 2", &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "beta");
    }
    let err = client.simple_query("DROP TABLE t").await.unwrap_err();
    assert_eq!(err.as_db_error().unwrap().code().code(), "42501");
    let row = client
        .query_one("SELECT name FROM t WHERE id = 1", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "alpha");
    // Idle with the session open: a thread still polling would use about one CPU.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let before = cpu_ticks(s.gw.pid());
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let used = cpu_ticks(s.gw.pid()) - before;
    assert!(used < 10, "the idle gateway used {used} clock ticks in 2 s");
    drop(client);
    // The thread did poll: the gateway reports how often when it stops.
    let status = tokio::task::block_in_place(|| s.gw.terminate()).expect("the gateway exited");
    assert!(status.success(), "{status:?}");
    let log = s.gw.log_text();
    let polls: u64 = log
        .lines()
        .find(|l| l.contains("non-blocking polls made while busy polling"))
        .and_then(|l| l.split("polls=").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no busy-poll count in the log:\n{log}"));
    assert!(polls > 0, "{log}");
}

/// SIGTERM: no new sessions; an open session past the grace period is closed, its rows are
/// flushed, and the gateway exits 0 (the session threads stop before the audit queue drains).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_open_sessions_after_the_grace_period() {
    let mut s = setup_with_args(&["--shutdown-grace", "1"]);
    let port = s.gw.port("postgres.db");
    let conn_str =
        format!("host=127.0.0.1 port={port} user={PLACEHOLDER_USER} dbname=appdb sslmode=disable");
    let (client, conn) = tokio_postgres::connect(&conn_str, tokio_postgres::NoTls)
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    let row = client
        .query_one("SELECT name FROM t WHERE id = 1", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "alpha");
    let status = tokio::task::spawn_blocking(move || {
        let status = s.gw.terminate();
        (s, status)
    })
    .await
    .unwrap();
    let (s, status) = status;
    let status = status.expect("the gateway did not exit");
    assert!(status.success(), "{status:?}\n{}", s.gw.log_text());
    // The session was closed under the client.
    let _ = conn.await;
    assert!(client.is_closed());
    let log = s.gw.log_text();
    assert!(log.contains("did not finish in time"), "{log}");
    let rows = audit_rows(&s.gw.state);
    assert!(
        rows.iter()
            .any(|r| r.0 == "select" && r.1 == "SELECT name FROM t WHERE id = 1"),
        "{rows:?}"
    );
    assert!(rows.iter().any(|r| r.0 == "connect"), "{rows:?}");
}

/// A stalled audit writer holds statements back instead of losing their rows: with the audit
/// database locked, a session stops reading statements once half of the (small) queue is
/// waiting, and goes on when the lock is released; every statement has its row and none
/// was dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_wait_for_a_stalled_audit_writer_and_every_one_is_audited() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    const STATEMENTS: usize = 100;
    let mut s = setup_with_args(&["--audit-queue", "16"]);
    let client = agent_session(s.gw.port("postgres.db")).await;
    // The session's connect row is written before the database is locked.
    let state = s.gw.state.clone();
    assert_eq!(
        tokio::task::block_in_place(|| wait_audit(&state, 1)).len(),
        1
    );
    let blocker = rusqlite::Connection::open(state.join("clawpatrol.db")).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();

    let done = Arc::new(AtomicUsize::new(0));
    let counter = done.clone();
    let statements = tokio::spawn(async move {
        for _ in 0..STATEMENTS {
            client
                .simple_query("SELECT name FROM t WHERE id = 2")
                .await
                .unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    tokio::task::block_in_place(|| {
        s.gw.wait_log("audit writer is behind", 1);
        support::assert_held_back(&done, STATEMENTS);
    });

    blocker.execute_batch("COMMIT").unwrap();
    drop(blocker);
    tokio::time::timeout(Duration::from_secs(30), statements)
        .await
        .expect("the session did not go on after the writer caught up")
        .unwrap();
    let status = tokio::task::block_in_place(|| s.gw.terminate()).expect("the gateway exited");
    assert!(status.success(), "{status:?}");
    let log = s.gw.log_text();
    assert!(!log.contains("dropped"), "{log}");
    assert!(
        log.contains("connections waited for the audit writer"),
        "{log}"
    );
    let selects = audit_rows_of(&state, Some("postgres.db"))
        .into_iter()
        .filter(|(method, path, action, _)| {
            method == "select" && action == "allow" && path.contains("FROM t WHERE id = 2")
        })
        .count();
    assert_eq!(selects, STATEMENTS);
}

/// Statements pipelined in one write are all read and forwarded before their rows finish:
/// rows that find the audit queue full wait in the session (which relays nothing meanwhile)
/// instead of being dropped.
#[test]
fn pipelined_statements_behind_a_stalled_audit_writer_are_all_audited() {
    use clawpatrol_protocols::postgres::{BackendMessage, FrontendMessage};

    const SIMPLE: usize = 300;
    const EXTENDED: usize = 100;
    let mut s = setup_with_args(&["--audit-queue", "16"]);
    let (mut sock, mut dec) = raw_login(s.gw.port("postgres.db"));
    let state = s.gw.state.clone();
    assert_eq!(wait_audit(&state, 1).len(), 1, "the connect row");
    let blocker = rusqlite::Connection::open(state.join("clawpatrol.db")).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();

    let mut msgs: Vec<FrontendMessage> = (0..SIMPLE)
        .map(|_| FrontendMessage::Query("SELECT name FROM t WHERE id = 2".into()))
        .collect();
    for _ in 0..EXTENDED {
        msgs.push(FrontendMessage::Parse {
            name: String::new(),
            query: "SELECT name FROM t WHERE id = 3".into(),
            param_types: vec![],
        });
        msgs.extend(run_prepared(""));
    }
    send(&mut sock, msgs);
    s.gw.wait_log("audit writer is behind", 1);
    blocker.execute_batch("COMMIT").unwrap();
    drop(blocker);
    for i in 0..SIMPLE + EXTENDED {
        let answer = read_until_ready(&mut sock, &mut dec);
        assert!(has_rows(&answer), "answer {i}: {answer:?}");
        assert!(
            !answer
                .iter()
                .any(|m| matches!(m, BackendMessage::ErrorResponse(_))),
            "answer {i}: {answer:?}"
        );
    }
    drop(sock);
    let status = s.gw.terminate().expect("the gateway exited");
    assert!(status.success(), "{status:?}");
    let log = s.gw.log_text();
    assert!(!log.contains("dropped"), "{log}");
    let rows = audit_rows_of(&state, Some("postgres.db"));
    let count = |id: &str| {
        rows.iter()
            .filter(|(method, path, action, _)| {
                method == "select" && action == "allow" && path.ends_with(&format!("id = {id}"))
            })
            .count()
    };
    assert_eq!((count("2"), count("3")), (SIMPLE, EXTENDED));
}

/// The text of the first DataRow's first column in `answer`.
fn first_value(answer: &[clawpatrol_protocols::postgres::BackendMessage]) -> String {
    use clawpatrol_protocols::postgres::BackendMessage;
    answer
        .iter()
        .find_map(|m| match m {
            BackendMessage::DataRow(cols) => cols
                .first()
                .and_then(|c| c.as_ref())
                .map(|c| String::from_utf8_lossy(c).into_owned()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no row in {answer:?}"))
}

#[test]
fn startup_settings_are_decided_like_the_set_statements_they_amount_to() {
    use clawpatrol_protocols::postgres::BackendMessage;
    let s = setup();
    // `app` may become `app_admin`: `SET ROLE app_admin` is what the rule below is for.
    s.pg.admin(
        "postgres",
        "CREATE ROLE app_admin NOLOGIN; GRANT app_admin TO app;",
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let extra = r#"
rule "no-role-changes" {
  endpoint  = postgres.db
  priority  = 300
  condition = "sql.verb in ['set role', 'set session authorization']"
  verdict   = "deny"
  reason    = "role changes are not allowed"
}

rule "no-work-mem" {
  endpoint  = postgres.db
  priority  = 300
  condition = "sql.verb == 'set' && sql.statement.contains('work_mem')"
  verdict   = "deny"
  reason    = "work_mem is fixed"
}

rule "timeouts-need-approval" {
  endpoint  = postgres.db
  priority  = 300
  condition = "sql.verb == 'set' && sql.statement.contains('statement_timeout')"
  approve   = [human_approver.desk]
}
"#;
    std::fs::write(&s.config, policy(s.pg_port, s.gw_port, s.md5_port, extra)).unwrap();
    s.gw.wait_log("config reloaded", 1);
    let port = s.gw.port("postgres.db");

    // Every way of asking for the role at startup is the `SET ROLE` the rules deny.
    let role_requests: Vec<Vec<(&str, &str)>> = vec![
        vec![("options", "-c role=app_admin")],
        vec![("options", "-crole=app_admin")],
        vec![("options", "--role=app_admin")],
        vec![("options", "-c application_name=x -c ROLE=app_admin")],
        vec![("options", "-c session-authorization=app_admin")],
        vec![("role", "app_admin")],
        vec![("Role", "app_admin")],
    ];
    for extra in &role_requests {
        let (_, _, login) = raw_login_with(port, extra);
        let (code, message) = fatal(&login).unwrap_or_else(|| panic!("{extra:?}: {login:?}"));
        assert_eq!(code, "28000", "{extra:?}");
        assert!(
            message.contains("role changes are not allowed"),
            "{extra:?}: {message}"
        );
        assert!(
            !login
                .iter()
                .any(|m| matches!(m, BackendMessage::Authentication(_))),
            "{extra:?}: {login:?}"
        );
    }
    // Other rules apply the same way; an approval cannot be waited for at login.
    for (extra, expect) in [
        (vec![("options", "-c work_mem=1MB")], "work_mem is fixed"),
        (vec![("work_mem", "1MB")], "work_mem is fixed"),
        (
            vec![("options", "--statement-timeout=5s")],
            "needs approval, which a login cannot wait for",
        ),
    ] {
        let (_, _, login) = raw_login_with(port, &extra);
        let (code, message) = fatal(&login).unwrap_or_else(|| panic!("{extra:?}: {login:?}"));
        assert_eq!(code, "28000", "{extra:?}");
        assert!(message.contains(expect), "{extra:?}: {message}");
    }
    // A refused login applies none of its settings, so none is audited as allowed.
    let (_, _, login) =
        raw_login_with(port, &[("options", "-c lock_timeout=3s -c role=app_admin")]);
    assert!(
        fatal(&login).is_some_and(|(_, m)| m.contains("role changes")),
        "{login:?}"
    );
    // Library loading at session start is refused whatever the rules say; so are more
    // settings, or a bigger packet, than the server takes.
    let many: Vec<(String, String)> = (0..40)
        .map(|i| (format!("x.p{i}"), "1".to_string()))
        .chain(std::iter::once((
            "options".to_string(),
            "-c x.q=1 ".repeat(30),
        )))
        .collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let big = "v".repeat(10_000);
    for (extra, expect) in [
        (
            vec![("local_preload_libraries", "auto_explain")],
            "loads libraries into the session",
        ),
        (
            vec![("options", "-c session-preload-libraries=auto_explain")],
            "loads libraries into the session",
        ),
        (many, "more than 64 startup settings"),
        (
            vec![("x.big", big.as_str())],
            "over the 10000 bytes the server accepts",
        ),
    ] {
        let (_, _, login) = raw_login_with(port, &extra);
        let (code, message) = fatal(&login).unwrap_or_else(|| panic!("{login:?}"));
        assert_eq!(code, "28000");
        assert!(message.contains(expect), "{message}");
    }
    // `options` words the gateway does not read as settings are refused, not passed on.
    for (options, expect) in [
        ("-P", "`options` switch `-P` is not a run-time setting"),
        ("-c", "no setting after it"),
        ("-c role", "has no `=value`"),
        ("-c\\ role=app_admin", "not a parameter name"),
        ("-c application_name=\u{e9}", "non-ASCII"),
    ] {
        let (_, _, login) = raw_login_with(port, &[("options", options)]);
        let (code, message) = fatal(&login).unwrap_or_else(|| panic!("{options:?}: {login:?}"));
        assert_eq!(code, "28000", "{options:?}");
        assert!(message.contains(expect), "{options:?}: {message}");
    }

    // Allowed settings reach the server as the agent wrote them (escaped spaces included),
    // and the formatting parameters drivers send are not decided.
    let (mut sock, mut dec, login) = raw_login_with(
        port,
        &[
            (
                "options",
                "-c search_path=pg_catalog,\\ public --lock-timeout=7s",
            ),
            ("application_name", "agent-x"),
            ("DateStyle", "ISO, DMY"),
        ],
    );
    assert!(fatal(&login).is_none(), "{login:?}");
    for (show, expect) in [
        ("SHOW search_path", "pg_catalog, public"),
        ("SHOW lock_timeout", "7s"),
        ("SHOW application_name", "agent-x"),
        ("SHOW DateStyle", "ISO, DMY"),
        ("SELECT current_user", "app"),
    ] {
        assert_eq!(first_value(&query_ok(&mut sock, &mut dec, show)), expect);
    }
    drop(sock);

    // psql and a Rust driver, with the role in their `options`, are refused the same way.
    let out = std::process::Command::new("psql")
        .args(["-X", "-A", "-t", "-c", "SELECT current_user"])
        .arg(format!(
            "host=127.0.0.1 port={port} user={PLACEHOLDER_USER} dbname=appdb sslmode=disable"
        ))
        .env("PGOPTIONS", "-c role=app_admin")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("startup setting `role` denied: role changes are not allowed"),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("app_admin"));
    let db = refused_login_with(port, "options='-c role=app_admin'");
    assert!(
        db.message().contains("role changes are not allowed"),
        "{db:?}"
    );

    // Each decided setting is audited like a statement (the last rows may still be queued).
    let denied_roles = |rows: &[AuditRow]| {
        rows.iter()
            .filter(|r| r.0 == "set role" && r.2 == "deny" && r.3 == "role changes are not allowed")
            .count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut rows = audit_rows_of(&s.gw.state, Some("postgres.db"));
    while denied_roles(&rows) < 9 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        rows = audit_rows_of(&s.gw.state, Some("postgres.db"));
    }
    assert_eq!(denied_roles(&rows), 9, "{rows:?}");
    assert!(
        rows.iter()
            .any(|r| r.0 == "set session authorization" && r.2 == "deny"),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r.0 == "set" && r.1.contains("search_path") && r.2 == "allow"),
        "{rows:?}"
    );
    assert!(
        !rows
            .iter()
            .any(|r| r.1.contains("lock_timeout\" TO $cp$3s")),
        "a setting of a refused login is audited as allowed: {rows:?}"
    );
    assert!(
        !rows
            .iter()
            .any(|r| r.1.contains("x.p") || r.1.contains("x.big")),
        "{rows:?}"
    );
    assert!(
        !rows
            .iter()
            .any(|r| r.0 == "set" && r.1.contains("application_name")),
        "formatting parameters are not decided: {rows:?}"
    );
}

#[test]
fn a_message_of_too_many_statements_closes_the_session_instead_of_growing_memory() {
    use clawpatrol_protocols::postgres::{BackendMessage, FrontendMessage};
    let s = setup();
    let port = s.gw.port("postgres.db");
    // A thousand statements in one Query are decided, answered and audited one by one.
    let (mut sock, mut dec) = raw_login(port);
    let answer = query_ok(&mut sock, &mut dec, &"SELECT 1;".repeat(1000));
    let done = answer
        .iter()
        .filter(|m| matches!(m, BackendMessage::CommandComplete(_)))
        .count();
    assert_eq!(done, 1000);
    // Seventy thousand would keep more than 64 MiB of audit rows until the server answers:
    // the gateway closes the session and forwards none of them.
    send(
        &mut sock,
        [FrontendMessage::Query("SELECT 2;".repeat(70_000))],
    );
    let rest = read_until_ready_or_closed(&mut sock, &mut dec);
    assert!(
        !rest
            .iter()
            .any(|m| matches!(m, BackendMessage::CommandComplete(_))),
        "{:?}",
        rest.first()
    );
    assert!(closed_by_gateway(&mut sock));
    s.gw.wait_log(
        "MiB of audit rows kept for statements the server has not answered",
        1,
    );
    // The same in Parse messages that no Sync ends.
    let (mut sock, mut dec) = raw_login(port);
    send(
        &mut sock,
        (0..3).map(|_| FrontendMessage::Parse {
            name: String::new(),
            query: "SELECT 3;".repeat(30_000),
            param_types: vec![],
        }),
    );
    let rest = read_until_ready_or_closed(&mut sock, &mut dec);
    assert!(closed_by_gateway(&mut sock), "{rest:?}");
    s.gw.wait_log(
        "MiB of audit rows kept for statements the server has not answered",
        2,
    );
}

#[test]
fn writes_wrapped_in_explain_analyze_prepare_or_copy_are_decided_as_writes() {
    use clawpatrol_protocols::postgres::FrontendMessage;
    let s = setup();
    let (mut sock, mut dec) = raw_login(s.gw.port("postgres.db"));
    for q in [
        "EXPLAIN ANALYZE DELETE FROM t WHERE id = 2",
        "PREPARE d AS DELETE FROM t WHERE id = 3",
        "COPY (DELETE FROM t WHERE id = 1 RETURNING *) TO STDOUT",
    ] {
        let answer = exchange(&mut sock, &mut dec, vec![FrontendMessage::Query(q.into())]);
        assert!(denial(&answer).contains("deletes are not allowed"), "{q}");
    }
    // The same through the extended protocol.
    let mut batch = prepare("", "PREPARE d2 AS DELETE FROM t WHERE id = 1");
    batch.pop();
    batch.extend(run_prepared(""));
    assert!(denial(&exchange(&mut sock, &mut dec, batch)).contains("deletes are not allowed"));
    // Not run: a plan without ANALYZE passes.
    query_ok(&mut sock, &mut dec, "EXPLAIN DELETE FROM t WHERE id = 2");
    assert_eq!(
        s.pg.admin(
            "appdb",
            "SELECT string_agg(id::text, ',' ORDER BY id) FROM t"
        )
        .trim(),
        "1,2,3"
    );
}

/// Parse of `name` as `sql` (no Sync).
fn parse_only(name: &str, sql: &str) -> clawpatrol_protocols::postgres::FrontendMessage {
    clawpatrol_protocols::postgres::FrontendMessage::Parse {
        name: name.into(),
        query: sql.into(),
        param_types: vec![],
    }
}

#[test]
fn answers_the_gateway_cannot_match_close_the_session_or_untrack_prepared_statements() {
    use clawpatrol_protocols::postgres::{BackendMessage, FrontendMessage};
    let s = setup();
    let port = s.gw.port("postgres.db");
    let (mut sock, mut dec) = raw_login(port);
    let (mut sock2, mut dec2) = raw_login(port);
    for (sock, dec) in [(&mut sock, &mut dec), (&mut sock2, &mut dec2)] {
        let ok = exchange(
            sock,
            dec,
            prepare("evil", "SELECT name FROM t WHERE id = 1"),
        );
        assert!(ok
            .iter()
            .any(|m| matches!(m, BackendMessage::ParseComplete)));
    }
    close_t_for_reading(&s);
    assert!(
        denial(&exchange(&mut sock, &mut dec, run_prepared("evil"))).contains("prepare it again")
    );
    // A COPY the server aborts on its first row, with a batch pipelined behind it: whether
    // the server ran that batch's Parse depends on when the COPY failed, so the gateway stops
    // trusting its count of answers. An answer to the batch must not confirm `evil` (whose
    // second Parse the server refuses as a duplicate) under the new policy.
    send(
        &mut sock,
        vec![
            FrontendMessage::Query("COPY audit_log (id, note) FROM STDIN".into()),
            FrontendMessage::CopyData(b"not a number\tx\n".to_vec()),
            parse_only("y", "SELECT 1"),
            FrontendMessage::Sync,
            parse_only("evil", "SELECT 2"),
            FrontendMessage::Flush,
        ],
    );
    read_until_ready(&mut sock, &mut dec);
    read_until_ready(&mut sock, &mut dec);
    exchange(&mut sock, &mut dec, vec![FrontendMessage::Sync]);
    let ran = exchange(&mut sock, &mut dec, run_prepared("evil"));
    assert!(!has_rows(&ran), "{ran:?}");
    assert!(denial(&ran).contains("prepare it again"));
    // A CopyDone outside any COPY, inside a batch with a denied FunctionCall: the server
    // answers a Sync where the gateway owes its own denial, and the session is closed
    // before any answer is attributed to the wrong request.
    send(
        &mut sock2,
        vec![
            FrontendMessage::Sync,
            FrontendMessage::Flush,
            FrontendMessage::CopyDone,
            FrontendMessage::FunctionCall {
                function: 1,
                arg_formats: vec![],
                args: vec![],
                result_format: 0,
            },
            FrontendMessage::Sync,
        ],
    );
    let mut answers = Vec::new();
    for _ in 0..3 {
        let a = read_until_ready_or_closed(&mut sock2, &mut dec2);
        let ended = !matches!(a.last(), Some(BackendMessage::ReadyForQuery(_)));
        answers.push(a);
        if ended {
            break;
        }
    }
    assert!(closed_by_gateway(&mut sock2), "{answers:?}");
    s.gw.wait_log("no longer match the requests the gateway forwarded", 1);
}
