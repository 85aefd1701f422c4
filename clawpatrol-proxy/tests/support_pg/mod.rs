//! Test harness for the Postgres gateway: a real PostgreSQL 15 started with `initdb`/`pg_ctl`
//! as the `postgres` user in a temp directory, `psql`, and the gateway binary.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's postgresql-15 puts its server binaries (not on PATH).
pub const PG15_BIN: &str = "/usr/lib/postgresql/15/bin";

/// The server binaries: `CLAWPATROL_PG_BIN`, else PostgreSQL 15's, else the newest installed.
pub fn pg_bin() -> String {
    if let Ok(p) = std::env::var("CLAWPATROL_PG_BIN") {
        return p;
    }
    if Path::new(PG15_BIN).join("initdb").exists() {
        return PG15_BIN.to_string();
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    found.retain(|p| p.join("initdb").exists());
    found.sort();
    found
        .pop()
        .map(|p| p.display().to_string())
        .expect("PostgreSQL server binaries not found; run scripts/install-deps.sh")
}

/// Password of the SCRAM role `app` (only the gateway knows it).
pub const SCRAM_PASSWORD: &str = "real-scram-pw-4f9e1c77";
/// Password of the MD5 role `app_md5`.
pub const MD5_PASSWORD: &str = "real-md5-pw-a81b3d02";

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running PostgreSQL 15 on a random loopback port.
pub struct PgServer {
    pub dir: PathBuf,
    pub port: u16,
    _tmp: tempfile::TempDir,
}

fn run_as_postgres(args: &[&str]) -> Output {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .args(args)
        .output()
        .expect("runuser");
    assert!(
        out.status.success(),
        "{args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Addresses a TLS-only server listens on: the certificate names only the first, so the
/// second reaches the same server under a name the certificate does not cover.
pub const TLS_LISTEN: [&str; 2] = ["127.0.0.1", "127.0.0.2"];

impl PgServer {
    /// initdb, configure (SCRAM by default, an MD5 role), start, and create the test roles,
    /// database and tables.
    pub fn start() -> PgServer {
        PgServer::start_with(None)
    }

    /// Like [`PgServer::start`], but TLS-only: `ssl = on` with `cert_pem`/`key_pem` (PEM) as the
    /// server certificate and key, listening on both [`TLS_LISTEN`] addresses, and `pg_hba.conf`
    /// holding only `hostssl` lines, so a TCP login without TLS is refused.
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> PgServer {
        PgServer::start_with(Some((cert_pem, key_pem)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> PgServer {
        let tmp = tempfile::Builder::new().prefix("cp-pg").tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let data = dir.join("data");
        std::fs::create_dir(&data).unwrap();
        let st = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(st.success());
        let initdb = format!("{}/initdb", pg_bin());
        run_as_postgres(&[
            &initdb,
            "-D",
            data.to_str().unwrap(),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--no-sync",
        ]);
        let port = free_port();
        let listen = if tls.is_some() {
            TLS_LISTEN.join(",")
        } else {
            TLS_LISTEN[0].to_string()
        };
        let mut conf = format!(
            "port = {port}\nlisten_addresses = '{listen}'\nunix_socket_directories = '{}'\n\
             password_encryption = 'scram-sha-256'\nlog_connections = on\nfsync = off\n",
            dir.display()
        );
        let hba = if let Some((cert_pem, key_pem)) = tls {
            let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
            write_as_postgres(&cert, cert_pem);
            write_as_postgres(&key, key_pem);
            // PostgreSQL refuses a key readable by group or others when it owns it.
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
            conf.push_str(&format!(
                "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
                cert.display(),
                key.display()
            ));
            "local all all trust\nhostssl all app_md5 127.0.0.0/8 md5\n\
             hostssl all all 127.0.0.0/8 scram-sha-256\n"
        } else {
            "local all all trust\nhost all app_md5 127.0.0.1/32 md5\n\
             host all all 127.0.0.1/32 scram-sha-256\n"
        };
        append(&data.join("postgresql.conf"), &conf);
        write_as_postgres(&data.join("pg_hba.conf"), hba);
        let pg_ctl = format!("{}/pg_ctl", pg_bin());
        let log = dir.join("server.log");
        run_as_postgres(&[
            &pg_ctl,
            "-D",
            data.to_str().unwrap(),
            "-l",
            log.to_str().unwrap(),
            "-w",
            "start",
        ]);
        let s = PgServer {
            dir,
            port,
            _tmp: tmp,
        };
        s.admin(
            "postgres",
            &format!(
                "CREATE ROLE app LOGIN PASSWORD '{SCRAM_PASSWORD}';\n\
                 SET password_encryption = 'md5';\n\
                 CREATE ROLE app_md5 LOGIN PASSWORD '{MD5_PASSWORD}';\n\
                 CREATE DATABASE appdb OWNER app;"
            ),
        );
        s.admin(
            "appdb",
            "SET ROLE app;\n\
             CREATE TABLE t (id int PRIMARY KEY, name text);\n\
             INSERT INTO t VALUES (1, 'alpha'), (2, 'beta'), (3, 'gamma');\n\
             CREATE TABLE secrets (id int, value text);\n\
             CREATE TABLE audit_log (id int, note text);\n\
             INSERT INTO audit_log VALUES (1, 'x');\n\
             GRANT SELECT ON t TO app_md5;",
        );
        s
    }

    /// Runs SQL as the superuser over the unix socket; returns stdout.
    pub fn admin(&self, db: &str, sql: &str) -> String {
        use std::io::Write;
        let mut child = Command::new("runuser")
            .args(["-u", "postgres", "--", "psql", "-X", "-q", "-A", "-t"])
            .args(["-v", "ON_ERROR_STOP=1"])
            .arg("-h")
            .arg(&self.dir)
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", db])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{sql}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "admin sql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The server log.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let pg_ctl = format!("{}/pg_ctl", pg_bin());
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--", &pg_ctl, "-D"])
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

fn append(path: &Path, text: &str) {
    let mut cur = std::fs::read_to_string(path).unwrap();
    cur.push_str(text);
    write_as_postgres(path, &cur);
}

fn write_as_postgres(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    let st = Command::new("chown")
        .arg("postgres:postgres")
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success());
}

/// The gateway binary with its postgres listeners.
pub struct PgGateway {
    child: Option<Child>,
    pub state: PathBuf,
    pub log: PathBuf,
    pub listeners: Vec<(String, u16)>,
}

impl PgGateway {
    /// Starts the gateway on a config written by `write_config`, which picks its listen
    /// ports with [`free_port`]: when another process took one of them between the pick and
    /// the gateway's bind, the config is written again with new ports (up to five times).
    pub fn start_retrying(
        config: &Path,
        dir: &Path,
        env: &[(&str, &str)],
        args: &[&str],
        mut write_config: impl FnMut(),
    ) -> PgGateway {
        let mut last = String::new();
        for _ in 0..5 {
            write_config();
            match PgGateway::try_start_with_args(config, dir, env, args) {
                Ok(gw) => return gw,
                Err(log) if log.contains("Address already in use") => last = log,
                Err(log) => panic!("gateway did not start:\n{log}"),
            }
        }
        panic!("gateway did not start (ports kept being taken):\n{last}")
    }

    /// The gateway's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("gateway already stopped").id()
    }

    /// Starts the gateway; on failure, its log.
    pub fn try_start_with_args(
        config: &Path,
        dir: &Path,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Result<PgGateway, String> {
        let state = dir.join("state");
        let log = dir.join("gateway.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_clawpatrol"));
        cmd.arg("gateway")
            .arg(config)
            .arg("--state-dir")
            .arg(&state)
            .args(["--proxy-listen", "127.0.0.1:0"])
            .args(["--transparent-listen", "127.0.0.1:0"])
            .args(["--management-listen", "127.0.0.1:0"])
            .args(["--reload-poll-ms", "100"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start gateway");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut listeners = Vec::new();
        let mut ready = false;
        while let Some(Ok(line)) = lines.next() {
            if let Some(rest) = line.strip_prefix("postgres ") {
                let (name, addr) = rest.split_once(" listening on ").unwrap();
                let port = addr.rsplit(':').next().unwrap().parse().unwrap();
                listeners.push((name.to_string(), port));
            } else if line.starts_with("audit database ") {
                ready = true;
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        if !ready {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::fs::read_to_string(&log).unwrap_or_default());
        }
        Ok(PgGateway {
            child: Some(child),
            state,
            log,
            listeners,
        })
    }

    /// The port of the listener of `endpoint` (typed name).
    pub fn port(&self, endpoint: &str) -> u16 {
        self.listeners
            .iter()
            .find(|(n, _)| n == endpoint)
            .map(|(_, p)| *p)
            .unwrap_or_else(|| panic!("no listener for {endpoint}: {:?}", self.listeners))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle` `count` times.
    pub fn wait_log(&self, needle: &str, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.log_text().matches(needle).count() >= count {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("log never showed {needle:?} x{count}:\n{}", self.log_text());
    }
}

impl PgGateway {
    /// Sends SIGTERM and waits for the exit; `None` if it did not exit within 30 s (it is
    /// killed then).
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let child = self.child.take()?;
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        super::support::wait_exit(child)
    }
}

impl Drop for PgGateway {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs psql against the gateway as the agent would (placeholder user, no password), with
/// `input` on stdin; returns (stdout, stderr).
pub fn psql(port: u16, user: &str, db: &str, input: &str) -> (String, String) {
    use std::io::Write;
    let mut child = Command::new("psql")
        .arg("-X")
        .args(["-A", "-t"])
        .arg(format!(
            "host=127.0.0.1 port={port} user={user} dbname={db} sslmode=prefer connect_timeout=10"
        ))
        .env("PGPASSWORD", "placeholder-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One audit row: (method, path, action, reason).
pub type AuditRow = (String, String, String, String);

/// The gateway's audit rows, oldest first; only those of `endpoint` (typed name) if given.
pub fn audit_rows_of(state: &Path, endpoint: Option<&str>) -> Vec<AuditRow> {
    let db = rusqlite::Connection::open(state.join("clawpatrol.db")).unwrap();
    let mut st = db
        .prepare(
            "SELECT method, path, action, reason FROM actions \
             WHERE ?1 IS NULL OR endpoint = ?1 ORDER BY id",
        )
        .unwrap();
    st.query_map([endpoint], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// All audit rows, oldest first.
pub fn audit_rows(state: &Path) -> Vec<AuditRow> {
    audit_rows_of(state, None)
}

/// Waits (up to 10 s) until at least `n` audit rows (of `endpoint`, if given) are written.
pub fn wait_audit_of(state: &Path, endpoint: Option<&str>, n: usize) -> Vec<AuditRow> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = audit_rows_of(state, endpoint);
        if rows.len() >= n || Instant::now() > deadline {
            return rows;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits (up to 10 s) until at least `n` audit rows are written.
pub fn wait_audit(state: &Path, n: usize) -> Vec<AuditRow> {
    wait_audit_of(state, None, n)
}

/// Logs in through the gateway's listener at `port` with tokio-postgres and returns the
/// server error, which must be a FATAL 28000 (a login the gateway refuses).
pub fn refused_login(port: u16) -> tokio_postgres::error::DbError {
    refused_login_with(port, "")
}

/// [`refused_login`] with `extra` appended to the connection string (`options='…'`).
pub fn refused_login_with(port: u16, extra: &str) -> tokio_postgres::error::DbError {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = rt
        .block_on(tokio_postgres::connect(
            &format!("host=127.0.0.1 port={port} user=x dbname=appdb sslmode=disable {extra}"),
            tokio_postgres::NoTls,
        ))
        .err()
        .expect("the login must fail");
    let db = err.as_db_error().expect("an ErrorResponse").clone();
    assert_eq!(db.code().code(), "28000");
    assert_eq!(db.severity(), "FATAL");
    db
}
