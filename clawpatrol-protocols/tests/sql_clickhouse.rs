//! Table tests of ClickHouse statement analysis and `USE` tracking.

use clawpatrol_protocols::clickhouse::{analyze_clickhouse, database_after, use_database};

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn verbs_tables_functions() {
    let cases: &[(&str, &str, &[&str], &[&str])] = &[
        (
            "SELECT count() FROM db.Events e JOIN users u ON e.uid = u.id WHERE toDate(e.ts) = today()",
            "select",
            &["db.events", "users"],
            &["count", "todate", "today"],
        ),
        ("SELECT number FROM numbers(10)", "select", &[], &["numbers"]),
        ("SELECT * FROM system.numbers LIMIT 1", "select", &["system.numbers"], &[]),
        ("WITH x AS (SELECT 1) SELECT * FROM x, t", "select", &["t"], &[]),
        ("INSERT INTO db.t SELECT * FROM remote('h', db2.s)", "insert", &["db.t"], &["remote"]),
        ("INSERT INTO t (a) VALUES (1)", "insert", &["t"], &[]),
        ("DROP TABLE a, db.b", "drop", &["a", "db.b"], &[]),
        ("DROP DATABASE d", "drop", &[], &[]),
        ("GRANT SELECT ON db.t TO bob", "grant", &["db.t"], &[]),
        ("OPTIMIZE TABLE db.t FINAL", "optimize", &["db.t"], &[]),
        ("CREATE TABLE t (a UInt8) ENGINE = MergeTree ORDER BY a", "create", &["t"], &[]),
        ("CREATE DATABASE d", "create", &[], &[]),
        ("CREATE VIEW v AS SELECT * FROM src", "create", &["src", "v"], &[]),
        ("TRUNCATE TABLE db.t", "truncate", &["db.t"], &[]),
        ("DELETE FROM t WHERE a = 1", "delete", &["t"], &[]),
        ("ALTER TABLE t ADD COLUMN b UInt8", "alter", &["t"], &[]),
        ("USE analytics", "use", &[], &[]),
        ("SET max_threads = 1", "set", &[], &[]),
        ("SHOW TABLES", "show", &[], &[]),
        ("DESCRIBE TABLE t", "describe", &["t"], &[]),
        ("EXPLAIN SELECT 1", "explain", &[], &[]),
        ("RENAME TABLE a TO b", "rename", &["a", "b"], &[]),
        ("SELECT 1; DROP TABLE x", "select", &["x"], &[]),
        ("SELECT * FROM t SETTINGS max_threads = 1; DROP TABLE hidden", "select", &["t"], &[]),
        ("select * from t format JSONEachRow", "select", &["t"], &[]),
        ("SELECT lower(a), COUNT(b) FROM t GROUP BY a", "select", &["t"], &["count", "lower"]),
    ];
    for (text, verb, tables, functions) in cases {
        let s = analyze_clickhouse(text);
        assert!(!s.unparseable, "{text}");
        assert_eq!(s.statement, *text);
        assert_eq!(s.verb, *verb, "{text}");
        assert_eq!(s.tables, strs(tables), "{text}");
        assert_eq!(s.functions, strs(functions), "{text}");
        assert!(!s.shadow);
    }
}

#[test]
fn refused_text_is_unparseable() {
    for text in ["", "garbage", "SYSTEM FLUSH LOGS", "SELECT FROM WHERE"] {
        let s = analyze_clickhouse(text);
        assert!(s.unparseable, "{text}");
        assert_eq!(s.statement, text);
        assert!(s.verb.is_empty() && s.tables.is_empty() && s.functions.is_empty());
    }
}

#[test]
fn use_moves_the_session_database() {
    assert_eq!(use_database("USE analytics").as_deref(), Some("analytics"));
    assert_eq!(use_database("use Analytics").as_deref(), Some("analytics"));
    assert_eq!(use_database("SELECT 1"), None);
    assert_eq!(use_database("garbage"), None);
    assert_eq!(database_after("default", "USE logs"), "logs");
    assert_eq!(database_after("default", "SELECT 1"), "default");
}
