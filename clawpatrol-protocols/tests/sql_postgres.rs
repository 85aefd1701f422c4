//! Table tests of Postgres statement analysis: verbs, tables, functions, shadows.

use clawpatrol_protocols::sql::{
    analyze_postgres, analyze_postgres_full, split_postgres, SqlStatement,
};

fn one(text: &str) -> SqlStatement {
    let all = analyze_postgres(text);
    assert!(!all.is_empty(), "no statement for {text:?}");
    all.into_iter().next().unwrap_or_default()
}

#[test]
fn verb_table() {
    let cases: &[(&str, &str)] = &[
        ("SELECT 1", "select"),
        ("VALUES (1), (2)", "select"),
        ("select 1 union select 2", "select"),
        ("TABLE users", "select"),
        ("SELECT * INTO new_t FROM t", "select"),
        ("INSERT INTO t VALUES (1)", "insert"),
        ("UPDATE t SET a = 1", "update"),
        ("DELETE FROM t", "delete"),
        (
            "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
            "merge",
        ),
        ("CREATE TABLE t (a int)", "create"),
        ("CREATE VIEW v AS SELECT 1", "create"),
        ("CREATE INDEX i ON t (a)", "create"),
        ("CREATE SEQUENCE s", "create"),
        ("CREATE SCHEMA s", "create"),
        (
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'select 1'",
            "create",
        ),
        ("CREATE PROCEDURE p() LANGUAGE sql AS 'select 1'", "create"),
        (
            "CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()",
            "create",
        ),
        ("CREATE TYPE mood AS ENUM ('a')", "create"),
        ("CREATE DOMAIN d AS int", "create"),
        ("CREATE TABLE t2 AS SELECT * FROM t", "create"),
        ("CREATE MATERIALIZED VIEW mv AS SELECT 1", "create"),
        ("CREATE ROLE r", "create"),
        ("CREATE USER u", "create"),
        ("CREATE DATABASE d", "create"),
        ("DROP TABLE t", "drop"),
        ("DROP FUNCTION f()", "drop"),
        ("DROP ROLE r", "drop"),
        ("DROP DATABASE d", "drop"),
        ("ALTER TABLE t ADD COLUMN b int", "alter"),
        ("ALTER INDEX i SET (fillfactor = 50)", "alter"),
        ("ALTER SEQUENCE s RESTART", "alter"),
        ("ALTER DOMAIN d SET NOT NULL", "alter"),
        ("ALTER TYPE mood ADD VALUE 'b'", "alter"),
        ("ALTER ROLE r WITH SUPERUSER", "alter"),
        ("ALTER ROLE r SET search_path = x", "alter"),
        ("ALTER DATABASE d CONNECTION LIMIT 1", "alter"),
        ("ALTER DATABASE d SET work_mem = '1MB'", "alter"),
        ("ALTER TABLE t SET SCHEMA s", "alter"),
        ("ALTER TABLE t OWNER TO bob", "alter"),
        ("ALTER FUNCTION f() IMMUTABLE", "alter"),
        ("ALTER TABLE t RENAME TO u", "rename"),
        ("ALTER TABLE t RENAME COLUMN a TO b", "rename"),
        ("ALTER SCHEMA s RENAME TO s2", "rename"),
        ("TRUNCATE t", "truncate"),
        ("COMMENT ON TABLE t IS 'x'", "comment"),
        ("GRANT SELECT ON t TO bob", "grant"),
        ("REVOKE SELECT ON t FROM bob", "grant"),
        ("GRANT admin TO bob", "grant"),
        ("REVOKE admin FROM bob", "grant"),
        ("COPY t FROM stdin", "copy"),
        ("VACUUM t", "vacuum"),
        ("ANALYZE t", "analyze"),
        ("LOCK TABLE t", "lock"),
        ("REFRESH MATERIALIZED VIEW mv", "refresh"),
        ("CLUSTER t USING i", "cluster"),
        ("REINDEX TABLE t", "reindex"),
        ("DO $$ BEGIN END $$", "do"),
        ("CALL p()", "call"),
        ("EXPLAIN SELECT 1", "explain"),
        ("EXPLAIN ANALYZE DELETE FROM t", "explain"),
        ("PREPARE q AS SELECT 1", "prepare"),
        ("EXECUTE q", "execute"),
        ("DEALLOCATE q", "deallocate"),
        ("DECLARE c CURSOR FOR SELECT 1", "declare"),
        ("FETCH NEXT FROM c", "fetch"),
        ("MOVE NEXT IN c", "move"),
        ("CLOSE c", "close"),
        ("LISTEN ch", "listen"),
        ("UNLISTEN ch", "unlisten"),
        ("NOTIFY ch", "notify"),
        ("LOAD 'x'", "load"),
        ("CHECKPOINT", "checkpoint"),
        ("DISCARD ALL", "discard"),
        ("SET CONSTRAINTS ALL DEFERRED", "set"),
        ("BEGIN", "begin"),
        ("START TRANSACTION", "begin"),
        ("COMMIT", "commit"),
        ("COMMIT PREPARED 'x'", "commit"),
        ("ROLLBACK", "rollback"),
        ("ROLLBACK TO SAVEPOINT s", "rollback"),
        ("ROLLBACK PREPARED 'x'", "rollback"),
        ("SAVEPOINT s", "savepoint"),
        ("RELEASE SAVEPOINT s", "release"),
        ("PREPARE TRANSACTION 'x'", "prepare"),
        ("SET ROLE admin", "set role"),
        ("SET LOCAL ROLE admin", "set local role"),
        ("RESET ROLE", "set role"),
        ("SET SESSION AUTHORIZATION bob", "set session authorization"),
        (
            "SET LOCAL SESSION AUTHORIZATION bob",
            "set local session authorization",
        ),
        ("SET search_path = public", "set"),
        ("RESET ALL", "set"),
        ("SHOW search_path", "show"),
        ("CREATE EXTENSION pgcrypto", ""),
        ("CREATE POLICY p ON t USING (true)", ""),
        ("ALTER SYSTEM SET work_mem = '1MB'", ""),
        ("SECURITY LABEL ON TABLE t IS 'x'", ""),
    ];
    for (text, verb) in cases {
        let s = one(text);
        assert!(!s.unparseable, "{text} is unparseable");
        assert_eq!(s.verb, *verb, "{text}");
    }
}

fn tables(text: &str) -> Vec<String> {
    one(text).tables
}

#[test]
fn tables_from_the_tree() {
    let cases: &[(&str, &[&str])] = &[
        (
            "SELECT u.name, o.total FROM users u JOIN orders o ON o.user_id = u.id LEFT JOIN s.items i ON i.oid = o.id",
            &["items", "orders", "s.items", "users"],
        ),
        ("SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE EXISTS (SELECT 1 FROM v))", &["t", "u", "v"]),
        ("SELECT (SELECT max(x) FROM w) FROM t", &["t", "w"]),
        ("WITH c AS (SELECT * FROM base) SELECT * FROM c", &["base", "c"]),
        ("SELECT * FROM \"MixedCase\" JOIN Lower ON true", &["MixedCase", "lower"]),
        ("SELECT * FROM \"Sch\".\"T\"", &["Sch.T", "T"]),
        ("SELECT * FROM db.sch.t", &["sch.t", "t"]),
        ("INSERT INTO archive SELECT * FROM live WHERE old", &["archive", "live"]),
        ("INSERT INTO t VALUES (1) RETURNING (SELECT 1 FROM r)", &["r", "t"]),
        ("UPDATE t SET a = u.a FROM u WHERE t.id = u.id", &["t", "u"]),
        ("DELETE FROM t USING u WHERE t.id = u.id", &["t", "u"]),
        ("MERGE INTO tgt USING src ON tgt.id = src.id WHEN NOT MATCHED THEN INSERT VALUES (src.id)", &["src", "tgt"]),
        ("COPY s.t (a, b) FROM stdin", &["s.t", "t"]),
        ("COPY (SELECT * FROM q) TO stdout", &["q"]),
        ("GRANT SELECT, INSERT ON a, s.b TO bob", &["a", "b", "s.b"]),
        ("REVOKE ALL ON TABLE t FROM bob", &["t"]),
        ("GRANT EXECUTE ON FUNCTION f() TO bob", &[]),
        ("GRANT USAGE ON SCHEMA s TO bob", &[]),
        ("DROP TABLE a, s.b CASCADE", &["a", "b", "s.b"]),
        ("DROP VIEW v", &["v"]),
        ("DROP MATERIALIZED VIEW mv", &["mv"]),
        ("DROP SEQUENCE sq", &["sq"]),
        ("DROP FOREIGN TABLE ft", &["ft"]),
        ("DROP INDEX i", &[]),
        ("DROP FUNCTION f(int)", &[]),
        ("DROP SCHEMA s", &[]),
        ("COMMENT ON TABLE s.t IS 'x'", &["s.t", "t"]),
        ("COMMENT ON VIEW v IS 'x'", &["v"]),
        ("COMMENT ON COLUMN t.c IS 'x'", &[]),
        ("COMMENT ON FUNCTION f() IS 'x'", &[]),
        ("ALTER TABLE t RENAME TO u", &["t"]),
        ("ALTER TABLE s.t SET SCHEMA s2", &["s.t", "t"]),
        ("ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES other (id)", &["other", "t"]),
        ("CREATE TABLE n (a int)", &["n"]),
        ("CREATE TABLE n AS SELECT * FROM o", &["n", "o"]),
        ("CREATE VIEW v AS SELECT * FROM o", &["o", "v"]),
        ("CREATE INDEX i ON t (a)", &["t"]),
        ("CREATE SEQUENCE s.q", &["q", "s.q"]),
        ("ALTER SEQUENCE q RESTART", &["q"]),
        ("TRUNCATE a, b", &["a", "b"]),
        ("LOCK TABLE a IN ACCESS EXCLUSIVE MODE", &["a"]),
        ("VACUUM ANALYZE a", &["a"]),
        ("REFRESH MATERIALIZED VIEW mv", &["mv"]),
        ("CLUSTER t USING i", &["t"]),
        ("REINDEX TABLE t", &["t"]),
        ("EXPLAIN ANALYZE SELECT * FROM big", &["big"]),
        ("SELECT * INTO new_t FROM t", &["new_t", "t"]),
        ("SELECT * FROM t, LATERAL (SELECT * FROM u WHERE u.id = t.id) x", &["t", "u"]),
        ("SELECT 1", &[]),
    ];
    for (text, want) in cases {
        let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        assert_eq!(tables(text), want, "{text}");
    }
}

#[test]
fn functions_from_the_tree() {
    let cases: &[(&str, &[&str])] = &[
        ("SELECT now(), pg_catalog.now()", &["now", "pg_catalog.now"]),
        ("SELECT Lower(name) FROM t", &["lower"]),
        (
            "SELECT count(*), sum(x) FILTER (WHERE y > f(z)) FROM t",
            &["count", "f", "sum"],
        ),
        (
            "SELECT rank() OVER (PARTITION BY g(a) ORDER BY h(b)) FROM t",
            &["g", "h", "rank"],
        ),
        (
            "SELECT string_agg(a, ',' ORDER BY k(a)) FROM t",
            &["k", "string_agg"],
        ),
        ("CALL s.proc(1, now())", &["now", "proc", "s.proc"]),
        ("SELECT * FROM generate_series(1, 3)", &["generate_series"]),
        (
            "INSERT INTO t VALUES (gen_random_uuid())",
            &["gen_random_uuid"],
        ),
        (
            "UPDATE t SET a = upper(a) WHERE b = lower(b)",
            &["lower", "upper"],
        ),
        ("SELECT \"MyFunc\"(1)", &["myfunc"]),
        (
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity",
            &["pg_terminate_backend"],
        ),
        ("SELECT 1", &[]),
    ];
    for (text, want) in cases {
        let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        assert_eq!(one(text).functions, want, "{text}");
    }
}

#[test]
fn multi_statement_text_is_one_statement_per_piece() {
    let all = analyze_postgres("select 1; delete from t; ; select 'a;b'");
    let got: Vec<(&str, &str)> = all
        .iter()
        .map(|s| (s.statement.as_str(), s.verb.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("select 1", "select"),
            ("delete from t", "delete"),
            ("select 'a;b'", "select")
        ]
    );
    assert!(all.iter().all(|s| !s.shadow && !s.unparseable));
    assert!(analyze_postgres("").is_empty());
    assert!(analyze_postgres(" \n\t ").is_empty());
}

#[test]
fn statements_hidden_from_the_splitter_are_found() {
    // The server ends a `--` comment at CR, and a backslash escapes a quote in E'…'.
    for (text, verbs) in [
        (
            "select * from t where id = 1 --\r; delete from t",
            vec!["select", "delete"],
        ),
        ("select 1 --\r\n; drop table secret", vec!["select", "drop"]),
        (r"select E'\'(' ; drop table u", vec!["select", "drop"]),
        (r"select e'\\' ; drop table u", vec!["select", "drop"]),
    ] {
        let all = analyze_postgres(text);
        let got: Vec<&str> = all.iter().map(|s| s.verb.as_str()).collect();
        assert_eq!(got, verbs, "{text:?}");
    }
}

#[test]
fn texts_read_differently_without_standard_conforming_strings_fail_closed() {
    // With standard_conforming_strings off the backslash escapes the quote, the string
    // ends at the last quote and a DROP runs; with it on the text is one SELECT.
    let all = analyze_postgres(r"select 'x\'' ; drop table u; --'");
    assert!(!all.is_empty());
    assert!(all.iter().all(|s| s.unparseable && !s.shadow), "{all:?}");
    let all = analyze_postgres(r"select 'C:\'");
    assert!(all.iter().all(|s| s.unparseable), "{all:?}");
    // Backslashes that mean the same either way change nothing.
    for text in [
        r"select * from t where name like 'a\_%'",
        r"select E'a\'b' from t",
        r"select $$\'$$ from t",
    ] {
        let all = analyze_postgres(text);
        assert_eq!(all.len(), 1, "{text}");
        assert!(!all[0].unparseable, "{text}");
        assert_eq!(all[0].verb, "select");
        assert_eq!(all[0].tables, vec!["t".to_string()]);
        assert_eq!(all, analyze_postgres_full(text));
    }
}

#[test]
fn unparseable_pieces_keep_their_text() {
    let all = analyze_postgres("select 1; selec 2; select 3");
    assert_eq!(all.len(), 3);
    assert!(all[1].unparseable);
    assert_eq!(all[1].statement, "selec 2");
    assert!(all[1].verb.is_empty() && all[1].tables.is_empty() && all[1].functions.is_empty());
    assert!(!all[2].unparseable);
    assert!(one("select 'unterminated").unparseable);
    assert!(one("select \0").unparseable);
}

#[test]
fn psql_describe_collate_default_is_retried() {
    let text = "SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relname OPERATOR(pg_catalog.~) '^(t)$' COLLATE pg_catalog.default";
    let s = one(text);
    assert!(!s.unparseable);
    assert_eq!(s.statement, text, "statement keeps the original text");
    assert_eq!(s.tables, vec!["pg_catalog.pg_class", "pg_class"]);
    assert!(!one("SELECT 'a' COLLATE default").unparseable);
    assert!(!one("select a collate DEFAULT from t").unparseable);
}

#[test]
fn data_modifying_ctes_are_shadows() {
    let all = analyze_postgres(
        "WITH d AS (DELETE FROM t WHERE old RETURNING *), i AS (INSERT INTO log SELECT now() FROM d RETURNING 1), r AS (SELECT 1 FROM x) SELECT * FROM d",
    );
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].verb, "select");
    assert_eq!(
        all[0].tables,
        vec!["d", "log", "t", "x"],
        "CTE tables merge into the outer statement"
    );
    assert_eq!(all[0].functions, vec!["now"]);
    assert_eq!(
        (
            all[1].statement.as_str(),
            all[1].verb.as_str(),
            all[1].shadow
        ),
        ("d", "delete", true)
    );
    assert_eq!(all[1].tables, vec!["t"]);
    assert_eq!(
        (all[2].statement.as_str(), all[2].verb.as_str()),
        ("i", "insert")
    );
    assert_eq!(all[2].tables, vec!["d", "log"]);
    assert_eq!(all[2].functions, vec!["now"]);
    // EXPLAIN ANALYZE executes the CTE too.
    let all = analyze_postgres(
        "EXPLAIN ANALYZE WITH u AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM u",
    );
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].verb, "update");
    // Shadows follow their own piece.
    let all = analyze_postgres("WITH m AS (MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE RETURNING *) SELECT 1 FROM m; select 2");
    let verbs: Vec<&str> = all.iter().map(|s| s.verb.as_str()).collect();
    assert_eq!(verbs, vec!["select", "merge", "select"]);
}

#[test]
fn do_bodies_are_shadows() {
    let all = analyze_postgres(
        "DO $$ DECLARE n int; BEGIN IF now() > '2020-01-01' THEN DROP TABLE users; END IF; n := count_rows('t'); INSERT INTO audit SELECT 1; EXECUTE 'truncate s.log'; END $$; select 1",
    );
    assert_eq!(all[0].verb, "do");
    assert!(!all[0].shadow);
    let shadows: Vec<&SqlStatement> = all.iter().filter(|s| s.shadow).collect();
    assert!(shadows
        .iter()
        .any(|s| s.verb == "drop" && s.tables == vec!["users"]));
    assert!(shadows
        .iter()
        .any(|s| s.verb == "insert" && s.tables == vec!["audit"]));
    assert!(shadows
        .iter()
        .any(|s| s.verb == "truncate" && s.tables == vec!["log", "s.log"]));
    assert!(shadows.iter().any(|s| s.functions == vec!["count_rows"]));
    assert!(shadows.iter().any(|s| s.functions == vec!["now"]));
    assert!(shadows.iter().all(|s| !s.unparseable));
    assert_eq!(
        all.last().map(|s| (s.verb.as_str(), s.shadow)),
        Some(("select", false))
    );

    // Nested: a DO inside a DO, and a data-modifying CTE inside a DO.
    let all = analyze_postgres(
        "DO $o$ BEGIN EXECUTE 'DO $i$ BEGIN DROP TABLE deep; END $i$'; WITH x AS (DELETE FROM t RETURNING 1) SELECT 1 FROM x; END $o$",
    );
    assert!(all
        .iter()
        .any(|s| s.shadow && s.verb == "drop" && s.tables == vec!["deep"]));
    assert!(all
        .iter()
        .any(|s| s.shadow && s.verb == "delete" && s.statement == "x"));
}

#[test]
fn do_bodies_that_cannot_be_analysed_fail_closed() {
    for text in [
        "DO $$ BEGIN EXECUTE 'drop table ' || tname; END $$",
        "DO $$ BEGIN EXECUTE format('drop table %I', 'x'); END $$",
        "DO LANGUAGE plpython3u $$ plpy.execute('drop table x') $$",
        "DO $$ BEGIN this is not plpgsql; END $$",
        // libpg_query's JSON leaves out a record variable's default expression.
        "DO $$ DECLARE r record := ROW(pg_read_file('/etc/passwd')); BEGIN END $$",
        "DO $$ DECLARE r record := ROW(set_config('client_encoding', 'SJIS', false)); BEGIN END $$",
        // ... also for a type it takes for `record`: any prefix of RECORD.
        "DO $$ DECLARE x rec := ROW(pg_read_file('/etc/passwd')); BEGIN END $$",
    ] {
        let all = analyze_postgres(text);
        assert_eq!(all[0].verb, "do", "{text}");
        assert!(has_unparseable_shadow(&all), "{text}: {all:?}");
    }
}

#[test]
fn sql_run_from_function_arguments_is_analysed() {
    // The query a call runs is a shadow statement, and its tables count for the call's
    // statement too.
    let all = analyze_postgres("SELECT query_to_xml('SELECT * FROM secrets', true, true, '')");
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0].verb, "select");
    assert_eq!(all[0].tables, vec!["secrets"]);
    assert!(all[0].functions.contains(&"query_to_xml".to_string()));
    assert!(all[1].shadow && !all[1].unparseable);
    assert_eq!(all[1].verb, "select");
    assert_eq!(all[1].tables, vec!["secrets"]);

    // A data-modifying query run by dblink keeps its verb; nested calls are followed.
    let text = "SELECT dblink_exec('dbname=prod', \
                'SELECT query_to_xml(''DELETE FROM users RETURNING 1'', true, true, '''')')";
    let all = analyze_postgres(text);
    assert!(
        all.iter()
            .any(|s| s.shadow && s.verb == "delete" && s.tables == vec!["users"]),
        "{all:?}"
    );
    assert!(all[0].tables.contains(&"users".to_string()), "{all:?}");

    // A table given by name is read by the statement.
    let all = analyze_postgres(
        "SELECT table_to_xml('public.secrets'::pg_catalog.regclass, true, false, '')",
    );
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].tables, vec!["public.secrets", "secrets"]);

    // Functions inside the text count as well.
    let all =
        analyze_postgres("SELECT * FROM ts_stat('SELECT pg_read_file(''/etc/passwd'')::tsvector')");
    assert!(
        all[0].functions.contains(&"pg_read_file".to_string()),
        "{all:?}"
    );

    // Inside a DO body too.
    let all = analyze_postgres(
        "DO $$ BEGIN PERFORM query_to_xml('DELETE FROM t', true, true, ''); END $$",
    );
    assert!(
        all.iter().any(|s| s.shadow && s.verb == "delete"),
        "{all:?}"
    );
}

/// `SELECT query_to_xml('<inner>', true, true, '')`, quoting `inner` as a string literal.
fn query_to_xml_of(inner: &str) -> String {
    format!(
        "SELECT query_to_xml('{}', true, true, '')",
        inner.replace('\'', "''")
    )
}

#[test]
fn attribute_notation_calls_count_as_functions() {
    // `(expr).f` calls f(expr): a function rule must see it.
    let all = analyze_postgres("SELECT ('/etc/passwd'::text).pg_read_file");
    assert_eq!(all.len(), 1);
    assert!(
        all[0].functions.contains(&"pg_read_file".to_string()),
        "{all:?}"
    );
    assert_eq!(
        all,
        analyze_postgres_full("SELECT ('/etc/passwd'::text).pg_read_file")
    );
    let all = analyze_postgres("SELECT ('SELECT s FROM secrets'::varchar).ts_stat");
    assert_eq!(all[0].tables, vec!["secrets"]);
    assert!(
        all.iter().any(|s| s.shadow && s.tables == vec!["secrets"]),
        "{all:?}"
    );
}

#[test]
fn qualified_column_references_count_as_functions() {
    // `s.pg_read_file` calls pg_read_file(s) when s has no such column: here s is text.
    let text = "SELECT s.pg_read_file FROM CAST('/etc/hostname' AS text) s";
    let all = analyze_postgres(text);
    assert!(
        all[0].functions.contains(&"pg_read_file".to_string()),
        "{all:?}"
    );
    assert_eq!(all, analyze_postgres_full(text));
    // A text-running function called so has a computed argument: unknown.
    let all = analyze_postgres("SELECT s.ts_stat FROM unnest(ARRAY['SELECT 1']) s");
    assert!(has_unparseable_shadow(&all), "{all:?}");
}

#[test]
fn strings_read_differently_without_standard_conforming_strings_fail_closed() {
    // Inside SQL a function runs, and inside a DO body (PL/pgSQL lexes with the session's
    // setting): with it off, `'a\'` does not end at its second quote.
    for text in [
        "SELECT query_to_xml($$SELECT 'a\\' AS x, ', s FROM secrets -- '$$, true, true, '')",
        "DO $$ BEGIN PERFORM 'a\\' AS x, '; DROP TABLE t; --'; END $$",
        "DO $$ BEGIN EXECUTE $q$SELECT 'a\\' AS x, '; DROP TABLE t; --'$q$; END $$",
    ] {
        let all = analyze_postgres(text);
        assert!(has_unparseable_shadow(&all), "{text}: {all:?}");
        assert!(!all.iter().any(|s| s.verb == "drop"), "{text}: {all:?}");
    }
    // In a DO body any backslash in a plain string fails closed: the body is split with the
    // setting as the block starts, and a `SET` in it can change how later expressions lex.
    let all = analyze_postgres("DO $$ BEGIN RAISE NOTICE 'C:\\temp'; DELETE FROM t; END $$");
    assert!(has_unparseable_shadow(&all), "{all:?}");
    // In an E'' string it reads the same either way.
    let all = analyze_postgres("DO $$ BEGIN RAISE NOTICE E'C:\\temp'; DELETE FROM t; END $$");
    assert!(all.iter().all(|s| !s.unparseable), "{all:?}");
    assert!(all.iter().any(|s| s.verb == "delete"), "{all:?}");
}

#[test]
fn extension_calls_that_run_sql_are_analysed() {
    // pg_cron, pg_background and Citus run a command given as a string.
    for text in [
        "SELECT cron.schedule('purge', '*/5 * * * *', 'DROP TABLE t')",
        "SELECT schedule('* * * * *', $$DROP TABLE t$$)",
        "SELECT pg_background_launch('DROP TABLE t')",
        "SELECT run_command_on_workers($cmd$DROP TABLE t$cmd$)",
    ] {
        let all = analyze_postgres(text);
        assert_eq!(all[0].verb, "select", "{text}");
        assert!(all[0].tables.contains(&"t".to_string()), "{text}: {all:?}");
        assert!(
            all.iter()
                .any(|s| s.shadow && !s.unparseable && s.verb == "drop" && s.tables == vec!["t"]),
            "{text}: {all:?}"
        );
        assert_eq!(all, analyze_postgres_full(text), "{text}");
    }
    // Commands the facts cannot follow fail closed.
    for text in [
        "SELECT cron.schedule_in_database('j', '@daily', 'DELETE FROM t', 'other')",
        "SELECT run_command_on_shards('t', 'DELETE FROM %s')",
        "SELECT * FROM pg_get_wal_block_info('0/0', '0/FFFFFF', true)",
    ] {
        let all = analyze_postgres(text);
        assert!(has_unparseable_shadow(&all), "{text}: {all:?}");
    }
    // A `schedule` function of another schema is an ordinary call, `schedule` an ordinary
    // column.
    for text in [
        "SELECT app.schedule('tomorrow', 'soon')",
        "SELECT e.schedule FROM events e WHERE e.schedule IS NOT NULL",
    ] {
        let all = analyze_postgres(text);
        assert_eq!(all.len(), 1, "{all:?}");
        assert!(!all[0].unparseable);
        assert_eq!(all, analyze_postgres_full(text), "{text}");
    }
}

#[test]
fn sql_or_tables_in_arguments_that_cannot_be_read_fail_closed() {
    let mut deep = "SELECT 1".to_string();
    for _ in 0..6 {
        deep = query_to_xml_of(&deep);
    }
    for text in [
        "SELECT query_to_xml(q, true, true, '') FROM queries",
        "SELECT query_to_xml('SELECT * FROM ' || 'secrets', true, true, '')",
        "SELECT query_to_xml($1, true, true, '')",
        "SELECT table_to_xml(c.oid, true, false, '') FROM pg_class c",
        "SELECT database_to_xml(true, false, '')",
        "SELECT query_to_xml('not sql at all', true, true, '')",
        // Nesting beyond the DO depth limit is not followed.
        &deep,
    ] {
        let all = analyze_postgres(text);
        assert!(!all[0].unparseable, "{text}");
        assert!(has_unparseable_shadow(&all), "{text}: {all:?}");
        assert_eq!(all, analyze_postgres_full(text), "{text}");
    }
    // Four levels are followed.
    let mut four = "DELETE FROM t".to_string();
    for _ in 0..4 {
        four = query_to_xml_of(&four);
    }
    let all = analyze_postgres(&four);
    assert!(all.iter().all(|s| !s.unparseable), "{all:?}");
    assert!(all.iter().any(|s| s.verb == "delete"), "{all:?}");
}

#[test]
fn record_variables_without_defaults_are_analysed() {
    let all = analyze_postgres(
        "DO $$ DECLARE r record; BEGIN FOR r IN SELECT * FROM t LOOP DELETE FROM u; END LOOP; END $$",
    );
    assert!(all.iter().all(|s| !s.unparseable), "{all:?}");
    assert!(
        all.iter().any(|s| s.shadow && s.verb == "delete"),
        "{all:?}"
    );
}

#[test]
fn splitting_edge_cases() {
    let cases: &[(&str, &[&str])] = &[
        ("select 1;select 2", &["select 1", "select 2"]),
        ("select ';' ; select 2", &["select ';'", "select 2"]),
        ("select 'it''s;' ; x", &["select 'it''s;'", "x"]),
        ("select \"a;\"\"b\" ; x", &["select \"a;\"\"b\"", "x"]),
        ("select $$;$$; x", &["select $$;$$", "x"]),
        ("select $fn$ $$ ; $fn$; x", &["select $fn$ $$ ; $fn$", "x"]),
        (
            "select $x$ never closed; y",
            &["select $x$ never closed; y"],
        ),
        (
            "select 1 -- ; comment\n; x",
            &["select 1 -- ; comment", "x"],
        ),
        (
            "select /* /* ; */ ; */ 1; x",
            &["select /* /* ; */ ; */ 1", "x"],
        ),
        ("select f(1; 2); x", &["select f(1; 2)", "x"]),
        (";;;", &[";;;"]),
        ("  ;  select 1  ;  ", &["select 1"]),
        ("-- only a comment", &["-- only a comment"]),
    ];
    for (text, want) in cases {
        assert_eq!(split_postgres(text), *want, "{text}");
    }
    // A comment-only piece parses to no statement: parsed, empty verb.
    let s = one("-- only a comment");
    assert!(!s.unparseable && s.verb.is_empty());
}

/// True when the analysis holds a shadow statement it could not read (fail closed).
fn has_unparseable_shadow(all: &[SqlStatement]) -> bool {
    all.iter().any(|s| s.shadow && s.unparseable)
}

#[test]
fn statements_run_by_explain_analyze_prepare_and_copy_are_shadows() {
    // (text, the shadows as (verb, statement is the whole text, tables)).
    type Shadow<'a> = (&'a str, &'a str, &'a [&'a str]);
    let cases: &[(&str, &[Shadow])] = &[
        (
            "EXPLAIN ANALYZE DELETE FROM t WHERE id = 2",
            &[(
                "delete",
                "EXPLAIN ANALYZE DELETE FROM t WHERE id = 2",
                &["t"],
            )],
        ),
        (
            "EXPLAIN (ANALYZE false, VERBOSE) UPDATE t SET a = 1",
            &[(
                "update",
                "EXPLAIN (ANALYZE false, VERBOSE) UPDATE t SET a = 1",
                &["t"],
            )],
        ),
        (
            "PREPARE d AS DELETE FROM t",
            &[("delete", "PREPARE d AS DELETE FROM t", &["t"])],
        ),
        (
            "PREPARE m (int) AS INSERT INTO s.u SELECT $1",
            &[(
                "insert",
                "PREPARE m (int) AS INSERT INTO s.u SELECT $1",
                &["s.u", "u"],
            )],
        ),
        (
            "COPY (DELETE FROM t RETURNING *) TO STDOUT",
            &[(
                "delete",
                "COPY (DELETE FROM t RETURNING *) TO STDOUT",
                &["t"],
            )],
        ),
        (
            "EXPLAIN ANALYZE EXECUTE d",
            &[("execute", "EXPLAIN ANALYZE EXECUTE d", &[])],
        ),
        (
            "CREATE TABLE c AS EXECUTE d",
            &[("execute", "CREATE TABLE c AS EXECUTE d", &[])],
        ),
        (
            "PREPARE p AS WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
            &[("delete", "x", &["t"])],
        ),
        // Not run, or not a write: no shadow.
        ("EXPLAIN DELETE FROM t", &[]),
        ("EXPLAIN ANALYZE SELECT * FROM t", &[]),
        ("PREPARE s AS SELECT * FROM t", &[]),
        ("COPY (SELECT * FROM t) TO STDOUT", &[]),
    ];
    for (text, expect) in cases {
        let all = analyze_postgres(text);
        assert!(!all[0].shadow && !all[0].unparseable, "{text}: {all:?}");
        let shadows: Vec<(String, String, Vec<String>)> = all[1..]
            .iter()
            .map(|s| {
                assert!(s.shadow, "{text}: {all:?}");
                (s.verb.clone(), s.statement.clone(), s.tables.clone())
            })
            .collect();
        let want: Vec<(String, String, Vec<String>)> = expect
            .iter()
            .map(|(v, st, t)| {
                (
                    v.to_string(),
                    st.to_string(),
                    t.iter().map(|x| x.to_string()).collect(),
                )
            })
            .collect();
        assert_eq!(shadows, want, "{text}");
    }
}
