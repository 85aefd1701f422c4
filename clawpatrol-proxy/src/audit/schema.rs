//! Numbered schema migrations of the audit database, tracked in `_schema`.

/// One migration: its number, name and SQL.
pub struct Migration {
    /// Applied in increasing order; recorded in `_schema.version`.
    pub version: i64,
    /// `NNNN_name`, for humans.
    pub name: &'static str,
    /// The statements.
    pub sql: &'static str,
}

/// Every migration, in order. Never edit one that shipped: add a new one.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "0001_actions",
    sql: "
CREATE TABLE actions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    action_id     TEXT    NOT NULL,
    ts_ns         INTEGER NOT NULL,
    mode          TEXT    NOT NULL,
    family        TEXT    NOT NULL,
    agent_ip      TEXT    NOT NULL,
    profile       TEXT,
    host          TEXT    NOT NULL,
    method        TEXT    NOT NULL,
    path          TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    bytes_in      INTEGER NOT NULL,
    bytes_out     INTEGER NOT NULL,
    ms            INTEGER NOT NULL,
    action        TEXT    NOT NULL,
    reason        TEXT    NOT NULL,
    req_sha       TEXT    NOT NULL,
    resp_sha      TEXT    NOT NULL,
    req_body      TEXT    NOT NULL,
    resp_body     TEXT    NOT NULL,
    req_headers   TEXT    NOT NULL,
    resp_headers  TEXT    NOT NULL,
    extra         TEXT    NOT NULL,
    endpoint      TEXT,
    rule          TEXT,
    credential    TEXT,
    approver      TEXT,
    approver_type TEXT,
    approver_by   TEXT,
    prev_hash     TEXT    NOT NULL,
    hash          TEXT    NOT NULL
);
CREATE INDEX actions_ts_ns ON actions (ts_ns);
CREATE INDEX actions_action_id ON actions (action_id);
CREATE INDEX actions_agent_ip_ts_ns ON actions (agent_ip, ts_ns);
CREATE INDEX actions_family_ts_ns ON actions (family, ts_ns);
CREATE TABLE audit_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    hash  TEXT    NOT NULL,
    count INTEGER NOT NULL
);
INSERT INTO audit_head (id, hash, count) VALUES (1, '', 0);
",
}];

/// The schema version this binary writes.
pub fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}
