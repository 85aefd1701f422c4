//! Differential tests of the Postgres fast path (libpg_query's summary) against the full
//! parse-tree walk: for every statement, `analyze_postgres` must give exactly the facts of
//! `analyze_postgres_full`. A difference in `tables` or `functions` would let a rule miss a
//! table the statement touches.

use clawpatrol_protocols::sql::{analyze_postgres, analyze_postgres_full};
use proptest::prelude::*;

/// Statements that exercise every place a relation or a function call can hide in DML.
const CORPUS: &[&str] = &[
    "SELECT 1",
    "select abalance from pgbench_accounts where aid = 4711",
    "SELECT * FROM public.users u JOIN sales.orders o ON o.user_id = u.id",
    "SELECT * FROM a LEFT JOIN b USING (id) RIGHT JOIN c ON true FULL JOIN d ON d.x = c.x",
    "SELECT * FROM a NATURAL JOIN b CROSS JOIN c",
    "SELECT * FROM a, b, LATERAL (SELECT * FROM c WHERE c.id = a.id) s",
    "SELECT * FROM (SELECT * FROM inner_t) AS sub",
    "SELECT (SELECT max(x) FROM scalar_t), 2",
    "SELECT * FROM t WHERE id IN (SELECT id FROM in_t) AND EXISTS (SELECT 1 FROM ex_t)",
    "SELECT * FROM t WHERE x = ANY (SELECT y FROM any_t)",
    "SELECT a FROM t GROUP BY a HAVING count(*) > (SELECT count(*) FROM having_t)",
    "SELECT a FROM t ORDER BY (SELECT min(b) FROM order_t)",
    "SELECT a FROM t LIMIT (SELECT 5 FROM limit_t)",
    "SELECT CASE WHEN x THEN (SELECT 1 FROM case_t) ELSE coalesce(y, z) END FROM t",
    "SELECT * FROM pg_read_file('/etc/passwd')",
    "SELECT * FROM generate_series(1, 10) g, unnest(ARRAY[1]) u",
    "SELECT * FROM ROWS FROM (generate_series(1,2), json_each('{}')) r",
    "SELECT * FROM t TABLESAMPLE SYSTEM (10)",
    "SELECT * FROM ONLY parent_t",
    "SELECT * FROM mydb.myschema.mytable",
    "SELECT * FROM \"Quoted\".\"MixedCase\"",
    "SELECT * FROM \"has.dot\"",
    "SELECT pg_catalog.now(), PUBLIC.MyFunc(1), \"Quoted\"(2), a.b.c(3)",
    "SELECT lower(upper(trim(x))) FROM t",
    "SELECT count(*) FILTER (WHERE x > (SELECT 1 FROM filter_t)) FROM t",
    "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM t",
    "SELECT row_number() OVER (PARTITION BY a ORDER BY b) FROM t",
    "SELECT sum(x) OVER w FROM t WINDOW w AS (PARTITION BY y)",
    "SELECT DISTINCT ON (a) a, b FROM t ORDER BY a, b",
    "SELECT a, b, sum(c) FROM t GROUP BY GROUPING SETS ((a), (b), ())",
    "SELECT a FROM t1 UNION SELECT b FROM t2 EXCEPT SELECT c FROM t3 INTERSECT SELECT d FROM t4",
    "(SELECT a FROM p1) UNION ALL (SELECT a FROM p2 ORDER BY 1 LIMIT 1)",
    "VALUES (1, (SELECT 2 FROM values_t))",
    "TABLE users",
    "SELECT * INTO new_t FROM t",
    "SELECT * INTO TEMP tmp_t FROM src_t",
    "SELECT x::int, CAST(y AS text), z COLLATE \"C\" FROM t",
    "SELECT ARRAY(SELECT id FROM arr_t), ROW(1, 2), (t.*).a FROM t",
    "SELECT greatest(a, b), least(c, d), nullif(e, f) FROM t",
    "SELECT current_user, session_user, current_date, localtimestamp FROM t",
    "SELECT x IS DISTINCT FROM y, x BETWEEN 1 AND 2, x LIKE 'a%' FROM t",
    "SELECT json_build_object('a', 1), jsonb_path_query(j, '$.a') FROM t",
    "SELECT * FROM JSON_TABLE('[1,2]'::jsonb, '$[*]' COLUMNS (v int PATH '$')) jt",
    "SELECT * FROM XMLTABLE('/r' PASSING (SELECT x FROM xml_src) COLUMNS a int) xt",
    "SELECT xmlelement(name a, (SELECT 1 FROM xml_t))",
    "SELECT * FROM t FOR UPDATE",
    "SELECT * FROM t FOR UPDATE OF t SKIP LOCKED",
    "SELECT * FROM accounts a FOR NO KEY UPDATE OF a NOWAIT",
    "SELECT * FROM t WHERE x = (SELECT y FROM u FOR SHARE OF u)",
    "SELECT * FROM t WHERE c = $1 AND d = $2",
    "SELECT * FROM t WHERE CURRENT_DATE > ANY (ARRAY(SELECT d FROM dates_t))",
    "SELECT set_config('role', 'admin', false)",
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity",
    "SELECT nextval('seq'), dblink_exec('x', 'drop table y')",
    "INSERT INTO t VALUES (1)",
    "INSERT INTO s.t (a, b) VALUES (1, now()), (2, (SELECT 3 FROM ins_sub))",
    "INSERT INTO t SELECT * FROM src WHERE x IN (SELECT y FROM filt)",
    "INSERT INTO t DEFAULT VALUES RETURNING id, (SELECT 1 FROM ret_t)",
    "INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET b = (SELECT 2 FROM conf_t)",
    "INSERT INTO t (a) VALUES (1) ON CONFLICT ON CONSTRAINT t_pkey DO NOTHING",
    "INSERT INTO t AS alias_t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = alias_t.a + 1",
    "UPDATE t SET a = 1",
    "UPDATE ONLY s.t AS x SET a = f(b), c = (SELECT d FROM upd_sub) FROM other o WHERE o.id = x.id",
    "UPDATE t SET (a, b) = (SELECT 1, 2 FROM multi_t) WHERE id = 3 RETURNING *",
    "UPDATE accounts SET balance = balance - 1 WHERE id = (SELECT id FROM pick LIMIT 1)",
    "DELETE FROM t",
    "DELETE FROM s.t USING u, v WHERE t.id = u.id RETURNING t.*",
    "DELETE FROM t WHERE id IN (SELECT id FROM del_sub WHERE f(x))",
    "DELETE FROM t WHERE CURRENT OF cur",
    "SELECT 1; SELECT * FROM second_t",
    "SELECT * FROM a WHERE b = 'it''s' AND c = E'\\n' AND d = $$x$$",
    "SELECT * FROM a -- comment ; not a split\nWHERE b = 1",
    "SELECT * FROM a /* block; comment */ WHERE b = 1",
    "SELECT 1 FROM t1 JOIN (t2 JOIN t3 ON true) ON true",
    "SELECT * FROM t1 AS a(x, y) JOIN LATERAL f(a.x) AS g(z) ON true",
    "SELECT (x).field, x[1], x[1:2] FROM t",
    "SELECT 'a' || 'b', 1 + 2 * 3, -x, NOT y FROM t",
    "SELECT * FROM t WHERE x ~ 'a' OR x SIMILAR TO 'b'",
    "SELECT interval '1 day', timestamp '2020-01-01', date '2020-01-01'",
    "SELECT EXTRACT(year FROM now()), SUBSTRING('abc' FROM 2), POSITION('b' IN 'abc'), OVERLAY('abc' PLACING 'x' FROM 1), TRIM(BOTH 'x' FROM 'xax')",
    "SELECT * FROM t WHERE x IS NULL AND y IS NOT TRUE AND z IS OF (int)",
    "SELECT COALESCE((SELECT a FROM coalesce_t), 0)",
    "SELECT * FROM t1 WHERE (a, b) IN (SELECT a, b FROM t2) AND a > ALL (SELECT a FROM t3)",
    "SELECT * FROM t WHERE a IN (1, 2, 3) AND b NOT IN ('x')",
    "select * from Users where Name = 'x'",
    "SELECT * FROM \"Users\" WHERE id = 1",
    "SELECT jsonb_agg(t) FROM (SELECT * FROM nested_a WHERE x IN (SELECT y FROM nested_b WHERE z = ANY(SELECT w FROM nested_c))) t",
    "INSERT INTO logs SELECT now(), current_user",
    "SELECT pg_sleep(1)",
    "SELECT lo_import('/etc/passwd')",
    "SELECT * FROM t WHERE a = (SELECT b FROM u WHERE u.c = t.c ORDER BY d LIMIT 1 OFFSET (SELECT 0 FROM off_t))",
    "SELECT * FROM XMLTABLE('/r' PASSING '<r/>' COLUMNS a numeric((SELECT 1 FROM secrets)) PATH 'a') x",
    "SELECT * FROM XMLTABLE('/r' PASSING '<r/>' COLUMNS a numeric(pg_sleep(1)) PATH 'a') x",
    "INSERT INTO t (a) VALUES (1) ON CONFLICT (a text_ops (o = numeric(pg_sleep(1)))) DO NOTHING",
    "INSERT INTO t (a) VALUES (1) ON CONFLICT (a text_ops (o = numeric((SELECT 1 FROM secrets)))) DO NOTHING",
    "SELECT CAST(x AS numeric((SELECT 1 FROM secrets))) FROM t",
    "SELECT x::varchar(pg_sleep(1)) FROM t",
    "CREATE TABLE z (a numeric((SELECT 1 FROM secrets)))",
    // Calls that run SQL or read a table given in their arguments, and calls in attribute
    // notation, take the full path.
    "SELECT query_to_xml('DELETE FROM t RETURNING *', true, true, '')",
    "SELECT a FROM t WHERE b = (SELECT count(*) FROM ts_stat('SELECT v FROM secrets'))",
    "SELECT pg_catalog.table_to_xml('secrets', true, false, '')",
    "SELECT * FROM dblink('dbname=x', 'SELECT 1') AS r(a int)",
    "SELECT query_to_xml(q, true, true, '') FROM queries",
    "SELECT w(7 + a, wln.a e'x.al', b'101', X'1F', N'n.m') FROM t",
    "SELECT causeRO~ ATPBson.al`er+poLL, wr+joLL, wb(7+ TULL, wLn.a e'cDht_.al`er+joLL, wr+j, ')",
    "SELECT cron.schedule('* * * * *', 'DELETE FROM t')",
    "SELECT schedule('@daily', 'TRUNCATE t'), app.schedule('x')",
    "SELECT cron.schedule_in_database('j', '@daily', 'DELETE FROM t', 'db')",
    "SELECT pg_background_launch('DELETE FROM t') FROM u",
    "SELECT run_command_on_workers('DROP TABLE t'), run_command_on_shards('t', 'x')",
    "SELECT ('/etc/passwd'::text).pg_read_file",
    "SELECT (t.c).f, $1 /* c */ .g FROM t WHERE (a) = 1",
    "SELECT s.pg_reinto_claad_stname' ASfile FROM CAST('/etc",
    // Not plain DML: these take the full path and must agree trivially.
    "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
    "WITH x AS (SELECT 1) SELECT * FROM x",
    "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
    "DO $$BEGIN DROP TABLE t; END$$",
    "DROP TABLE a, b.c",
    "EXPLAIN ANALYZE DELETE FROM t",
    "COPY t FROM STDIN",
    "CREATE TABLE x AS SELECT * FROM y",
    "SELECT 1 FROM",
    "this is not sql",
    "SELECT a COLLATE default FROM t",
];

fn assert_same(text: &str) {
    let fast = analyze_postgres(text);
    let full = analyze_postgres_full(text);
    assert_eq!(fast, full, "fast path and full walk differ for {text:?}");
}

#[test]
fn fast_path_matches_the_full_walk_on_the_corpus() {
    for text in CORPUS {
        assert_same(text);
    }
}

#[test]
fn fast_path_reports_the_hidden_tables_and_functions() {
    let s = &analyze_postgres(
        "SELECT f(x) FROM a WHERE x IN (SELECT y FROM s.b WHERE g(y) > (SELECT 1 FROM c))",
    )[0];
    assert_eq!(s.verb, "select");
    assert_eq!(s.tables, ["a", "b", "c", "s.b"]);
    assert_eq!(s.functions, ["f", "g"]);
    let s = &analyze_postgres("SELECT Pg_Catalog.Pg_Read_File('x')")[0];
    assert_eq!(s.functions, ["pg_catalog.pg_read_file", "pg_read_file"]);
}

/// Random plain DML built from the constructs above, nested a few levels deep.
fn dml() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("t".to_string()),
        Just("s.t2".to_string()),
        Just("\"Q\".\"R\"".to_string()),
        Just("db.s.t3".to_string()),
        "[a-z]{1,3}",
    ];
    let func = prop_oneof![
        Just("f".to_string()),
        Just("pg_catalog.now".to_string()),
        Just("\"Up\"".to_string()),
        Just("s.g".to_string()),
        Just("a.b.c".to_string()),
    ];
    let leaf_expr = prop_oneof![
        Just("1".to_string()),
        Just("x".to_string()),
        Just("'s'".to_string()),
        Just("$1".to_string()),
        func.clone().prop_map(|f| format!("{f}(x)")),
    ];
    let expr = leaf_expr.prop_recursive(3, 24, 3, move |inner| {
        let name = name.clone();
        let func = func.clone();
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} + {b})")),
            (func, inner.clone()).prop_map(|(f, a)| format!("{f}({a})")),
            (inner.clone(), name.clone(), inner.clone())
                .prop_map(|(a, n, w)| format!("(SELECT {a} FROM {n} WHERE {w} > 0)")),
            (inner.clone(), name.clone()).prop_map(|(a, n)| format!("{a} IN (SELECT x FROM {n})")),
            (name.clone(), inner.clone())
                .prop_map(|(n, w)| format!("EXISTS (SELECT 1 FROM {n} WHERE {w} = 1)")),
            (inner.clone(), inner.clone(), inner)
                .prop_map(|(a, b, c)| format!("CASE WHEN {a} = 1 THEN {b} ELSE {c} END")),
        ]
    });
    let name = prop_oneof![
        Just("t".to_string()),
        Just("s.t2".to_string()),
        Just("\"Q\".\"R\"".to_string()),
        "[a-z]{1,3}",
    ];
    let from = prop_oneof![
        name.clone(),
        (name.clone(), name.clone()).prop_map(|(a, b)| format!("{a} JOIN {b} ON true")),
        (name.clone(), expr.clone()).prop_map(|(a, e)| format!("{a}, LATERAL (SELECT {e}) l")),
        expr.clone().prop_map(|e| format!("(SELECT {e}) sub")),
        Just("generate_series(1, 3) g".to_string()),
    ];
    prop_oneof![
        (expr.clone(), from.clone(), expr.clone())
            .prop_map(|(e, f, w)| format!("SELECT {e} FROM {f} WHERE {w} = 1")),
        (name.clone(), expr.clone()).prop_map(|(n, e)| format!("INSERT INTO {n} VALUES ({e})")),
        (name.clone(), from.clone())
            .prop_map(|(n, f)| format!("INSERT INTO {n} SELECT * FROM {f}")),
        (name.clone(), expr.clone(), from.clone(), expr.clone())
            .prop_map(|(n, e, f, w)| format!("UPDATE {n} SET a = {e} FROM {f} WHERE {w} = 2")),
        (name, from, expr.clone())
            .prop_map(|(n, f, w)| format!("DELETE FROM {n} USING {f} WHERE {w} = 3")),
        (expr.clone(), expr).prop_map(|(a, b)| format!("SELECT {a} UNION SELECT {b}")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, .. ProptestConfig::default() })]

    #[test]
    fn fast_path_matches_the_full_walk_on_random_dml(text in dml()) {
        let fast = analyze_postgres(&text);
        let full = analyze_postgres_full(&text);
        prop_assert_eq!(fast, full, "for {:?}", text);
    }
}

/// The one intended difference: a tree nested deeper than prost's decoding limit (100) is
/// unparseable on the full path (its protobuf cannot be decoded; the backstop denies it),
/// while the summary, which needs no protobuf tree, still names every table.
#[test]
fn deep_nesting_is_analysed_by_the_fast_path_only() {
    let text = format!("SELECT {}1 FROM secrets", "1+".repeat(120));
    let full = analyze_postgres_full(&text);
    assert!(full[0].unparseable);
    let fast = analyze_postgres(&text);
    assert!(!fast[0].unparseable);
    assert_eq!(fast[0].tables, ["secrets"]);
    assert!(matches!(
        pg_query::parse(&text),
        Err(pg_query::Error::Decode(_))
    ));
}
