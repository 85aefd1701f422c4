//! The audit database (`<state_dir>/clawpatrol.db`): SQLite in WAL mode, owner-only files,
//! numbered migrations, the `actions` table and the hash-chain head (`audit_head`).

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use clawpatrol_core::audit::{seal_with, AuditRecord, ChainError, ChainVerifier, JsonFields};
use rusqlite::{params, Connection, OpenFlags, Row, TransactionBehavior};

use super::schema::{latest, MIGRATIONS};

/// Why an audit database operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The database file does not exist (and was not to be created).
    #[error("audit database `{}` does not exist", path.display())]
    Missing {
        /// The path asked for.
        path: PathBuf,
    },
    /// The file or its directory could not be created or restricted.
    #[error("audit database `{}`: {source}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is a SQLite database but not one of ours.
    #[error("`{}` is not a clawpatrol audit database (no `_schema` table)", path.display())]
    Foreign {
        /// The path.
        path: PathBuf,
    },
    /// The database was written by a newer clawpatrol.
    #[error("audit database `{}` has schema version {found}; this clawpatrol knows up to {known}", path.display())]
    TooNew {
        /// The path.
        path: PathBuf,
        /// The version found.
        found: i64,
        /// The newest version this binary knows.
        known: i64,
    },
    /// SQLite refused an operation.
    #[error("audit database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A record field does not fit its column.
    #[error("audit record `{action_id}`: `{field}` is too large to store")]
    TooLarge {
        /// The record's action id.
        action_id: String,
        /// The field.
        field: &'static str,
    },
    /// A stored row cannot be read back as a record (edited with the wrong type or bad JSON).
    #[error("row {id} was modified: column `{column}` holds invalid data ({message})")]
    Corrupt {
        /// The row id.
        id: i64,
        /// The column.
        column: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The hash chain is broken.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The file the store writes left its path (deleted, moved or replaced) during an
    /// append, or no audit database could be opened at the path since.
    #[error("audit database `{}` was deleted, moved or replaced under the gateway; its rows go to the database at the path once one can be opened there", path.display())]
    Moved {
        /// The configured path.
        path: PathBuf,
    },
}

impl AuditError {
    /// True when the database, not the record, is at fault and a later attempt may succeed:
    /// busy or locked by another process, disk full, an I/O error, read-only, unopenable,
    /// out of memory, a file-locking protocol failure, or its file gone from its path.
    pub fn is_unavailable(&self) -> bool {
        use rusqlite::ErrorCode as C;
        match self {
            AuditError::Sql(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                C::DatabaseBusy
                    | C::DatabaseLocked
                    | C::DiskFull
                    | C::SystemIoFailure
                    | C::ReadOnly
                    | C::CannotOpen
                    | C::OutOfMemory
                    | C::FileLockingProtocolFailed
            ),
            AuditError::Moved { .. } => true,
            _ => false,
        }
    }

    /// True when the error is evidence of tampering (a finding), not an operational failure.
    pub fn is_tampering(&self) -> bool {
        matches!(self, AuditError::Chain(_) | AuditError::Corrupt { .. })
    }
}

/// An open audit database.
pub struct AuditStore {
    conn: Connection,
    path: PathBuf,
    /// The (device, inode) of the file opened at `path`, when it could be read.
    file: Option<(u64, u64)>,
}

impl std::fmt::Debug for AuditStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditStore")
            .field("path", &self.path)
            .finish()
    }
}

const COLUMNS: &str = "id, action_id, ts_ns, mode, family, agent_ip, profile, host, method, path, \
status, bytes_in, bytes_out, ms, action, reason, req_sha, resp_sha, req_body, resp_body, \
req_headers, resp_headers, extra, endpoint, rule, credential, approver, approver_type, \
approver_by, prev_hash, hash";

/// The `actions` columns an append writes, in binding order.
const INSERT_COLUMNS: &str = "action_id, ts_ns, mode, family, agent_ip, profile, host, method, \
path, status, bytes_in, bytes_out, ms, action, reason, req_sha, resp_sha, req_body, resp_body, \
req_headers, resp_headers, extra, endpoint, rule, credential, approver, approver_type, \
approver_by, prev_hash, hash";

/// Parameters bound per row (the number of `INSERT_COLUMNS`).
const PER_ROW: usize = 30;

/// Rows per multi-row `INSERT`, largest first: a batch is written in statements of these sizes
/// (32 × 30 parameters stays well under SQLite's limit), so one statement carries many rows and
/// at most six statements are ever prepared.
const INSERT_SIZES: [usize; 6] = [32, 16, 8, 4, 2, 1];

/// `insert_sql(n)` for each of `INSERT_SIZES`, built once.
static INSERT_SQL: LazyLock<[String; INSERT_SIZES.len()]> =
    LazyLock::new(|| INSERT_SIZES.map(insert_sql));

/// `INSERT OR FAIL INTO actions (…) VALUES (…), …` for `rows` rows. `OR FAIL` spares SQLite
/// the statement journal it keeps to undo a failing multi-row statement (a copy of every page
/// the statement touches): `append` rolls back its whole transaction on any error instead.
fn insert_sql(rows: usize) -> String {
    let one = format!("({})", vec!["?"; PER_ROW].join(", "));
    format!(
        "INSERT OR FAIL INTO actions ({INSERT_COLUMNS}) VALUES {}",
        vec![one; rows].join(", ")
    )
}

impl AuditStore {
    /// Opens the database at `path`, creating it (and its directory, mode 0700) if needed;
    /// the file and its `-wal`/`-shm` companions are made owner-only (0600).
    pub fn open(path: &Path) -> Result<AuditStore, AuditError> {
        let io = |source| AuditError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(io)?;
            }
        }
        // Created owner-only before SQLite sees it: SQLite gives `-wal`/`-shm` the same mode.
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let store = AuditStore::init(conn, path, true)?;
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            let p = PathBuf::from(p);
            if p.exists() {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).map_err(
                    |source| AuditError::Io {
                        path: p.clone(),
                        source,
                    },
                )?;
            }
        }
        Ok(store)
    }

    /// Opens an existing audit database; never creates one (for the `audit` commands).
    pub fn open_existing(path: &Path) -> Result<AuditStore, AuditError> {
        if !path.is_file() {
            return Err(AuditError::Missing {
                path: path.to_path_buf(),
            });
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        AuditStore::init(conn, path, false)
    }

    fn init(conn: Connection, path: &Path, create: bool) -> Result<AuditStore, AuditError> {
        conn.busy_timeout(Duration::from_millis(5000))?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), mode, "audit database is not in WAL mode");
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut store = AuditStore {
            conn,
            path: path.to_path_buf(),
            file: file_id(path),
        };
        store.migrate(create)?;
        Ok(store)
    }

    /// Applies every migration newer than the recorded schema version.
    fn migrate(&mut self, create: bool) -> Result<(), AuditError> {
        let has_schema: bool = self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_schema')",
            [],
            |r| r.get(0),
        )?;
        if !has_schema {
            let tables: i64 =
                self.conn
                    .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
            if !create || tables > 0 {
                return Err(AuditError::Foreign {
                    path: self.path.clone(),
                });
            }
            self.conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS _schema (
                    version    INTEGER PRIMARY KEY,
                    name       TEXT    NOT NULL,
                    applied_ns INTEGER NOT NULL
                )",
            )?;
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: i64 =
            tx.query_row("SELECT coalesce(max(version), 0) FROM _schema", [], |r| {
                r.get(0)
            })?;
        if current > latest() {
            return Err(AuditError::TooNew {
                path: self.path.clone(),
                found: current,
                known: latest(),
            });
        }
        for m in MIGRATIONS.iter().filter(|m| m.version > current) {
            tx.execute_batch(m.sql)?;
            tx.execute(
                "INSERT INTO _schema (version, name, applied_ns) VALUES (?1, ?2, ?3)",
                params![m.version, m.name, now_ns()],
            )?;
            tracing::info!(path = %self.path.display(), migration = m.name, "audit database migrated");
        }
        tx.commit()?;
        Ok(())
    }

    /// How long a statement waits for another connection's lock (5 s by default).
    pub fn set_busy_timeout(&self, timeout: Duration) -> Result<(), AuditError> {
        Ok(self.conn.busy_timeout(timeout)?)
    }

    /// Copies the WAL's frames into the database file without waiting for readers (SQLite
    /// does not do that on close once the file has moved). True when every frame was copied:
    /// the WAL then holds nothing the database file lacks.
    pub fn checkpoint(&self) -> Result<bool, AuditError> {
        let (log, copied): (i64, i64) =
            self.conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                    Ok((r.get(1)?, r.get(2)?))
                })?;
        Ok(log == copied)
    }

    /// Closes the database.
    pub fn close(self) -> Result<(), AuditError> {
        self.conn.close().map_err(|(_, e)| AuditError::Sql(e))
    }

    /// The database path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// False once the file this store writes is no longer the one at its path: deleted,
    /// moved or replaced (SQLite goes on writing to the file it has open, so in WAL mode
    /// rows appended to a deleted file would vanish with it). True when it cannot tell.
    pub fn still_at_path(&self) -> bool {
        match std::fs::metadata(&self.path) {
            Ok(m) => self.file.is_none_or(|id| id == (m.dev(), m.ino())),
            Err(e) => e.kind() != std::io::ErrorKind::NotFound,
        }
    }

    /// Appends records in one transaction: each is sealed into the hash chain and gets its
    /// row `id`. On error nothing is stored.
    pub fn append(&mut self, recs: &mut [AuditRecord]) -> Result<(), AuditError> {
        if recs.is_empty() {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (mut head, mut count): (String, i64) = tx
            .prepare_cached("SELECT hash, count FROM audit_head WHERE id = 1")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let mut rest: &mut [AuditRecord] = recs;
        while !rest.is_empty() {
            // The last size is 1, so some size always fits.
            let i = INSERT_SIZES
                .iter()
                .position(|size| *size <= rest.len())
                .unwrap_or(INSERT_SIZES.len() - 1);
            let (chunk, tail) = std::mem::take(&mut rest).split_at_mut(INSERT_SIZES[i]);
            rest = tail;
            let mut stmt = tx.prepare_cached(&INSERT_SQL[i])?;
            let mut at = 0;
            for rec in chunk.iter_mut() {
                // Serialised once: the hash covers the same texts the columns store.
                let json = JsonFields::of(rec);
                seal_with(rec, &head, &json);
                head.clone_from(&rec.hash);
                bind_row(&mut stmt, &mut at, rec, &json)?;
            }
            stmt.raw_execute()?;
            // One statement inside our write transaction: its rows got consecutive ids
            // ending at the last one inserted.
            let rows = INSERT_SIZES[i] as i64;
            let first = tx.last_insert_rowid() - rows + 1;
            for (rec, id) in chunk.iter_mut().zip(first..) {
                rec.id = id;
            }
            count += rows;
        }
        tx.prepare_cached("UPDATE audit_head SET hash = ?1, count = ?2 WHERE id = 1")?
            .execute(params![head, count])?;
        tx.commit()?;
        Ok(())
    }

    /// The row with this id, else the first row with this action id.
    pub fn get(&self, id_or_action_id: &str) -> Result<Option<AuditRecord>, AuditError> {
        if let Ok(id) = id_or_action_id.parse::<i64>() {
            let by_id = self.one(&format!("SELECT {COLUMNS} FROM actions WHERE id = ?1"), id)?;
            if by_id.is_some() {
                return Ok(by_id);
            }
        }
        self.one(
            &format!("SELECT {COLUMNS} FROM actions WHERE action_id = ?1 ORDER BY id LIMIT 1"),
            id_or_action_id,
        )
    }

    fn one(&self, sql: &str, key: impl rusqlite::ToSql) -> Result<Option<AuditRecord>, AuditError> {
        let mut stmt = self.conn.prepare(sql)?;
        let mut rows = stmt.query([key])?;
        match rows.next()? {
            Some(row) => Ok(Some(from_row(row)?)),
            None => Ok(None),
        }
    }

    /// The last `n` rows, oldest first.
    pub fn tail(&self, n: usize) -> Result<Vec<AuditRecord>, AuditError> {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        let mut out = self.collect(
            &format!("SELECT {COLUMNS} FROM actions ORDER BY id DESC LIMIT ?1"),
            [n],
        )?;
        out.reverse();
        Ok(out)
    }

    /// Rows with `id > after_id`, oldest first, at most `limit` (for following the log).
    pub fn after(&self, after_id: i64, limit: usize) -> Result<Vec<AuditRecord>, AuditError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.collect(
            &format!("SELECT {COLUMNS} FROM actions WHERE id > ?1 ORDER BY id LIMIT ?2"),
            [after_id, limit],
        )
    }

    /// Every row whose action started at or after `ts_ns`, in id order.
    pub fn since(&self, ts_ns: i64) -> Result<Vec<AuditRecord>, AuditError> {
        let mut out = Vec::new();
        self.scan_since(ts_ns, |r| {
            out.push(r);
            Ok(())
        })?;
        Ok(out)
    }

    /// Streams every row whose action started at or after `ts_ns`, in id order, to `f`.
    pub fn scan_since(
        &self,
        ts_ns: i64,
        mut f: impl FnMut(AuditRecord) -> Result<(), AuditError>,
    ) -> Result<(), AuditError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM actions WHERE ts_ns >= ?1 ORDER BY id"
        ))?;
        let mut rows = stmt.query([ts_ns])?;
        while let Some(row) = rows.next()? {
            f(from_row(row)?)?;
        }
        Ok(())
    }

    fn collect(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<AuditRecord>, AuditError> {
        let mut stmt = self.conn.prepare(sql)?;
        let mut rows = stmt.query(params)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(from_row(row)?);
        }
        Ok(out)
    }

    /// The stored chain head: the last row's hash and the number of rows appended.
    pub fn head(&self) -> Result<(String, u64), AuditError> {
        let (hash, count): (String, i64) =
            self.conn
                .query_row("SELECT hash, count FROM audit_head WHERE id = 1", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
        Ok((hash, u64::try_from(count).unwrap_or(0)))
    }

    /// Verifies the whole hash chain against the stored head, in one read snapshot; returns
    /// the number of rows.
    pub fn verify(&self) -> Result<u64, AuditError> {
        let tx = self.conn.unchecked_transaction()?;
        let (hash, count): (String, i64) =
            tx.query_row("SELECT hash, count FROM audit_head WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        let count = u64::try_from(count).map_err(|_| AuditError::Corrupt {
            id: 1,
            column: "audit_head.count",
            message: format!("negative count {count}"),
        })?;
        let mut verifier = ChainVerifier::new();
        {
            let mut stmt = tx.prepare(&format!("SELECT {COLUMNS} FROM actions ORDER BY id"))?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                verifier.push(&from_row(row)?)?;
            }
        }
        let n = verifier.finish(Some((&hash, count)))?;
        tx.finish()?;
        Ok(n)
    }
}

/// Binds one record's columns (in `INSERT_COLUMNS` order) after parameter `at`; `json` holds
/// the record's structured fields in canonical JSON ([`JsonFields::of`]).
fn bind_row(
    stmt: &mut rusqlite::CachedStatement<'_>,
    at: &mut usize,
    rec: &AuditRecord,
    json: &JsonFields,
) -> Result<(), AuditError> {
    let big = |field| AuditError::TooLarge {
        action_id: rec.action_id.clone(),
        field,
    };
    let bytes_in = i64::try_from(rec.bytes_in).map_err(|_| big("bytes_in"))?;
    let bytes_out = i64::try_from(rec.bytes_out).map_err(|_| big("bytes_out"))?;
    let ms = i64::try_from(rec.ms).map_err(|_| big("ms"))?;
    let values: [&dyn rusqlite::ToSql; PER_ROW] = [
        &rec.action_id,
        &rec.ts_ns,
        &rec.mode,
        &rec.family,
        &rec.agent_ip,
        &rec.profile,
        &rec.host,
        &rec.method,
        &rec.path,
        &rec.status,
        &bytes_in,
        &bytes_out,
        &ms,
        &rec.action,
        &rec.reason,
        &rec.req_sha,
        &rec.resp_sha,
        &rec.req_body,
        &rec.resp_body,
        &json.req_headers,
        &json.resp_headers,
        &json.extra,
        &rec.endpoint,
        &rec.rule,
        &rec.credential,
        &rec.approver,
        &rec.approver_type,
        &rec.approver_by,
        &rec.prev_hash,
        &rec.hash,
    ];
    for v in values {
        *at += 1;
        stmt.raw_bind_parameter(*at, v)?;
    }
    Ok(())
}

/// Reads one `actions` row (columns in `COLUMNS` order).
fn from_row(row: &Row<'_>) -> Result<AuditRecord, AuditError> {
    let id: i64 = row.get(0)?;
    let bad = |column: &'static str, message: String| AuditError::Corrupt {
        id,
        column,
        message,
    };
    macro_rules! col {
        ($i:expr, $name:expr) => {
            row.get($i).map_err(|e| bad($name, e.to_string()))?
        };
    }
    let unsigned = |v: i64, column: &'static str| {
        u64::try_from(v).map_err(|_| bad(column, format!("negative value {v}")))
    };
    fn json<T: serde::de::DeserializeOwned>(
        id: i64,
        text: String,
        column: &'static str,
    ) -> Result<T, AuditError> {
        serde_json::from_str(&text).map_err(|e| AuditError::Corrupt {
            id,
            column,
            message: e.to_string(),
        })
    }
    let bytes_in: i64 = col!(11, "bytes_in");
    let bytes_out: i64 = col!(12, "bytes_out");
    let ms: i64 = col!(13, "ms");
    Ok(AuditRecord {
        id,
        action_id: col!(1, "action_id"),
        ts_ns: col!(2, "ts_ns"),
        mode: col!(3, "mode"),
        family: col!(4, "family"),
        agent_ip: col!(5, "agent_ip"),
        profile: col!(6, "profile"),
        host: col!(7, "host"),
        method: col!(8, "method"),
        path: col!(9, "path"),
        status: col!(10, "status"),
        bytes_in: unsigned(bytes_in, "bytes_in")?,
        bytes_out: unsigned(bytes_out, "bytes_out")?,
        ms: unsigned(ms, "ms")?,
        action: col!(14, "action"),
        reason: col!(15, "reason"),
        req_sha: col!(16, "req_sha"),
        resp_sha: col!(17, "resp_sha"),
        req_body: col!(18, "req_body"),
        resp_body: col!(19, "resp_body"),
        req_headers: json(id, col!(20, "req_headers"), "req_headers")?,
        resp_headers: json(id, col!(21, "resp_headers"), "resp_headers")?,
        extra: json(id, col!(22, "extra"), "extra")?,
        endpoint: col!(23, "endpoint"),
        rule: col!(24, "rule"),
        credential: col!(25, "credential"),
        approver: col!(26, "approver"),
        approver_type: col!(27, "approver_type"),
        approver_by: col!(28, "approver_by"),
        prev_hash: col!(29, "prev_hash"),
        hash: col!(30, "hash"),
    })
}

/// The (device, inode) of the file at `path`, if it can be read.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// True when `path` starts with the SQLite file header (`SQLite format 3\0`).
pub fn is_sqlite_file(path: &Path) -> bool {
    use std::io::Read as _;
    let mut header = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok()
        && &header == b"SQLite format 3\0"
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn temp_db(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "clawpatrol-store-{name}-{}-{}",
            std::process::id(),
            now_ns()
        ));
        dir.join("state").join("clawpatrol.db")
    }

    fn rec(n: u64) -> AuditRecord {
        AuditRecord {
            action_id: format!("0190-{n:04}"),
            ts_ns: 1_000 + n as i64,
            mode: "mitm".into(),
            family: "http".into(),
            agent_ip: "127.0.0.1".into(),
            profile: Some("default".into()),
            host: "api.github.com".into(),
            method: "GET".into(),
            path: "/user".into(),
            status: "200".into(),
            bytes_in: n,
            action: "allow".into(),
            req_headers: [("Authorization".into(), "***".into())].into(),
            extra: json!({"action": {"host": "api.github.com", "http": {"method": "get"}}, "f": 0.1}),
            endpoint: Some("https.github".into()),
            credential: Some("pat".into()),
            ..Default::default()
        }
    }

    #[test]
    fn append_read_back_and_verify() {
        let path = temp_db("rw");
        let mut store = AuditStore::open(&path).unwrap();
        let mut batch: Vec<AuditRecord> = (1..=3).map(rec).collect();
        store.append(&mut batch).unwrap();
        let mut more = vec![rec(4)];
        store.append(&mut more).unwrap();
        assert_eq!(batch[0].id, 1);
        assert_eq!(more[0].id, 4);
        assert_eq!(more[0].prev_hash, batch[2].hash);
        assert_eq!(store.get("2").unwrap().unwrap(), batch[1]);
        assert_eq!(store.get("0190-0003").unwrap().unwrap(), batch[2]);
        assert_eq!(store.get("nope").unwrap(), None);
        let tail = store.tail(2).unwrap();
        assert_eq!(tail.iter().map(|r| r.id).collect::<Vec<_>>(), vec![3, 4]);
        assert_eq!(store.since(1_003).unwrap().len(), 2);
        assert_eq!(store.after(2, 10).unwrap().len(), 2);
        assert_eq!(store.verify().unwrap(), 4);
        assert_eq!(store.head().unwrap(), (more[0].hash.clone(), 4));
        drop(store);

        // Reopening keeps the data and applies no migration twice.
        let store = AuditStore::open_existing(&path).unwrap();
        assert_eq!(store.verify().unwrap(), 4);
        std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap()).ok();
    }

    #[test]
    fn files_are_owner_only() {
        let path = temp_db("perm");
        let mut store = AuditStore::open(&path).unwrap();
        store.append(&mut [rec(1)]).unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let p = PathBuf::from(format!("{}{suffix}", path.display()));
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", p.display());
        }
        let dir_mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap()).ok();
    }

    #[test]
    fn tampering_is_detected() {
        let path = temp_db("tamper");
        let mut store = AuditStore::open(&path).unwrap();
        store
            .append(&mut (1..=5).map(rec).collect::<Vec<_>>())
            .unwrap();
        let sql = |s: &str| {
            store.conn.execute_batch(s).unwrap();
        };
        sql("UPDATE actions SET reason = 'edited' WHERE id = 2");
        let e = store.verify().unwrap_err();
        assert!(
            matches!(e, AuditError::Chain(ChainError::Modified { id: 2 })),
            "{e}"
        );
        assert!(e.is_tampering());
        sql("UPDATE actions SET reason = '' WHERE id = 2");
        assert_eq!(store.verify().unwrap(), 5);
        sql("UPDATE actions SET extra = 'not json' WHERE id = 3");
        let e = store.verify().unwrap_err();
        assert!(
            matches!(
                e,
                AuditError::Corrupt {
                    id: 3,
                    column: "extra",
                    ..
                }
            ),
            "{e}"
        );
        sql("UPDATE actions SET extra = '{}' WHERE id = 3");
        sql("UPDATE actions SET bytes_in = 'x' WHERE id = 3");
        assert!(store.verify().unwrap_err().is_tampering());
        std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap()).ok();
    }

    #[test]
    fn open_existing_never_creates() {
        let path = temp_db("missing");
        let e = AuditStore::open_existing(&path).unwrap_err();
        assert!(matches!(e, AuditError::Missing { .. }), "{e}");
        assert!(!path.exists());
        assert!(!path.parent().unwrap().exists());
        // A foreign SQLite file is refused, not migrated.
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let c = Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE t (x)").unwrap();
        drop(c);
        let e = AuditStore::open_existing(&path).unwrap_err();
        assert!(matches!(e, AuditError::Foreign { .. }), "{e}");
        let e = AuditStore::open(&path).unwrap_err();
        assert!(matches!(e, AuditError::Foreign { .. }), "{e}");
        std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap()).ok();
    }

    #[test]
    fn oversized_counters_are_refused_without_storing_anything() {
        let path = temp_db("big");
        let mut store = AuditStore::open(&path).unwrap();
        let mut r = rec(1);
        r.bytes_out = u64::MAX;
        let e = store.append(&mut [rec(2), r]).unwrap_err();
        assert!(e.to_string().contains("`bytes_out` is too large"), "{e}");
        assert_eq!(store.verify().unwrap(), 0);
        std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap()).ok();
    }

    #[test]
    fn a_large_batch_is_written_in_chunks_with_the_ids_the_rows_got() {
        let path = temp_db("chunks");
        let mut store = AuditStore::open(&path).unwrap();
        store.append(&mut [rec(1), rec(2), rec(3)]).unwrap();
        // 61 rows: statements of 32, 16, 8, 4 and 1 rows.
        let mut batch: Vec<AuditRecord> = (4..=64).map(rec).collect();
        store.append(&mut batch).unwrap();
        for (r, want) in batch.iter().zip(4..) {
            assert_eq!(r.id, want, "{}", r.action_id);
            assert_eq!(store.get(&r.action_id).unwrap().unwrap(), *r);
        }
        for pair in batch.windows(2) {
            assert_eq!(pair[1].prev_hash, pair[0].hash);
        }
        assert_eq!(store.verify().unwrap(), 64);
        assert_eq!(store.head().unwrap(), (batch[60].hash.clone(), 64));
        std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap()).ok();
    }

    #[test]
    fn a_bad_record_after_a_written_chunk_stores_nothing_of_the_batch() {
        let path = temp_db("late-bad");
        let mut store = AuditStore::open(&path).unwrap();
        store.append(&mut [rec(1)]).unwrap();
        let head = store.head().unwrap();
        // The first 32 rows are inserted by one statement before row 36 fails to bind.
        let mut batch: Vec<AuditRecord> = (2..=41).map(rec).collect();
        batch[34].bytes_in = u64::MAX;
        let e = store.append(&mut batch).unwrap_err();
        assert!(e.to_string().contains("`bytes_in` is too large"), "{e}");
        assert_eq!(store.head().unwrap(), head);
        assert_eq!(store.verify().unwrap(), 1);
        assert_eq!(store.get("0190-0002").unwrap(), None);
        std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap()).ok();
    }
}
