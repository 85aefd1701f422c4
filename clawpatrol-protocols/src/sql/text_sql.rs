//! SQL that a function call runs from its arguments, and tables it reads by name.
//!
//! `SELECT query_to_xml('SELECT * FROM secrets', true, true, '')` is a SELECT without tables
//! to the parse-tree walk, yet the server runs the inner query. The same holds for
//! `ts_stat`, `ts_rewrite`, the `dblink` and `tablefunc` extensions, and `table_to_xml`
//! reads the table it is given as a string. For these calls the SQL in a constant argument
//! becomes shadow statements and a constant table name becomes a table of the statement; an
//! argument that is not a constant (or a call that reads tables it does not name) makes the
//! statement's facts unknown, which the analysis reports as an unparseable shadow (fail
//! closed).

use pg_query::protobuf;
use serde_json::Value;

/// What a call does with its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Runs the SQL text of argument `n` (`query_to_xml`, `ts_stat`, `crosstab2`, …).
    Query(usize),
    /// `ts_rewrite(query, select)`: the two-argument form runs its second argument.
    Rewrite,
    /// `crosstab(source_sql [, category_sql | n])`: a second text argument is SQL too.
    Crosstab,
    /// The `dblink` family: the SQL is the last argument once a trailing boolean constant
    /// (`fail_on_error`) is set aside.
    Dblink,
    /// Reads the table named by argument 0 (`regclass` or text).
    Table,
    /// Reads tables it does not name (a whole schema or database, the changes decoded from
    /// the WAL, an index's entries), or splices its text arguments into SQL unquoted
    /// (`connectby`).
    Opaque,
}

/// The kind of a function, by its (lower-case) name or the last part of its name.
fn kind(name: &str) -> Option<Kind> {
    Some(match name {
        "query_to_xml"
        | "query_to_xmlschema"
        | "query_to_xml_and_xmlschema"
        | "ts_stat"
        | "crosstab2"
        | "crosstab3"
        | "crosstab4" => Kind::Query(0),
        "ts_rewrite" => Kind::Rewrite,
        "crosstab" => Kind::Crosstab,
        "dblink" | "dblink_exec" | "dblink_open" | "dblink_send_query" => Kind::Dblink,
        "table_to_xml"
        | "table_to_xml_and_xmlschema"
        | "get_raw_page"
        | "dblink_build_sql_insert"
        | "dblink_build_sql_update"
        | "dblink_build_sql_delete" => Kind::Table,
        "schema_to_xml"
        | "schema_to_xml_and_xmlschema"
        | "database_to_xml"
        | "database_to_xml_and_xmlschema"
        | "pg_logical_slot_get_changes"
        | "pg_logical_slot_peek_changes"
        | "pg_logical_slot_get_binary_changes"
        | "pg_logical_slot_peek_binary_changes"
        | "bt_page_items"
        | "connectby" => Kind::Opaque,
        _ => return None,
    })
}

/// True when a call of `function` (a name from `sql.functions`) may run SQL or read a table
/// given in its arguments.
pub(super) fn runs_text(function: &str) -> bool {
    kind(function).is_some()
}

/// What the calls of one parsed statement run and read.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct TextSql {
    /// SQL texts run by the calls, in tree order.
    pub sql: Vec<String>,
    /// Tables read by name: the name's parts (`[schema.]rel`).
    pub tables: Vec<Vec<String>>,
    /// A call's SQL or table could not be read: the statement's facts are unknown.
    pub unknown: bool,
}

/// One argument of a call.
#[derive(Debug, PartialEq, Eq)]
enum Arg {
    /// A string constant (casts looked through).
    Text(String),
    /// A boolean constant.
    Bool,
    /// `NULL`: a call that runs its argument does nothing with it.
    Null,
    /// Anything else: another constant, a parameter, a column, an expression.
    Other,
}

/// The SQL run and the tables read by the calls in `tree` that take them from arguments.
pub(super) fn text_sql(tree: &protobuf::ParseResult) -> TextSql {
    let mut found = TextSql::default();
    match serde_json::to_value(tree) {
        Ok(json) => walk(&json, &mut found),
        Err(_) => found.unknown = true,
    }
    found
}

fn walk(v: &Value, found: &mut TextSql) {
    match v {
        Value::Object(m) => {
            if let Some(call) = m.get("FuncCall") {
                on_call(call, found);
            }
            for child in m.values() {
                walk(child, found);
            }
        }
        Value::Array(a) => {
            for child in a {
                walk(child, found);
            }
        }
        _ => {}
    }
}

/// One serialised `FuncCall`.
fn on_call(call: &Value, found: &mut TextSql) {
    let name = call
        .get("funcname")
        .and_then(Value::as_array)
        .and_then(|parts| parts.last())
        .and_then(|p| p.pointer("/node/String/sval"))
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase);
    let Some(kind) = name.as_deref().and_then(kind) else {
        return;
    };
    let raw: &[Value] = call
        .get("args")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    // Named arguments (`query => …`) would need the function's parameter names.
    if raw
        .iter()
        .any(|a| a.pointer("/node/NamedArgExpr").is_some())
    {
        found.unknown = true;
        return;
    }
    let args: Vec<Arg> = raw.iter().map(arg).collect();
    match kind {
        Kind::Query(n) => run(args.get(n), found),
        Kind::Rewrite => {
            if args.len() == 2 {
                run(args.get(1), found);
            }
        }
        Kind::Crosstab => {
            run(args.first(), found);
            match args.get(1) {
                // crosstab(text, integer): the number of value columns.
                Some(Arg::Other) if is_integer(raw.get(1)) => {}
                second => run(second, found),
            }
        }
        Kind::Dblink => {
            let end = match args.last() {
                Some(Arg::Bool) => args.len() - 1,
                _ => args.len(),
            };
            run(end.checked_sub(1).and_then(|i| args.get(i)), found);
        }
        Kind::Table => match args.first() {
            Some(Arg::Text(name)) => match qualified_name(name) {
                Some(parts) => found.tables.push(parts),
                None => found.unknown = true,
            },
            Some(Arg::Null) | None => {}
            Some(_) => found.unknown = true,
        },
        Kind::Opaque => found.unknown = true,
    }
}

/// An argument that the call runs as SQL.
fn run(arg: Option<&Arg>, found: &mut TextSql) {
    match arg {
        Some(Arg::Text(sql)) => found.sql.push(sql.clone()),
        // No argument there: no such function, the server refuses the call.
        Some(Arg::Null) | None => {}
        Some(_) => found.unknown = true,
    }
}

/// Reads one serialised argument node, looking through casts.
fn arg(v: &Value) -> Arg {
    let mut node = v.get("node");
    while let Some(cast) = node.and_then(|n| n.get("TypeCast")) {
        node = cast.get("arg").and_then(|a| a.get("node"));
    }
    let Some(c) = node.and_then(|n| n.get("AConst")) else {
        return Arg::Other;
    };
    if c.get("isnull").and_then(Value::as_bool) == Some(true) {
        return Arg::Null;
    }
    let val = c.get("val");
    if let Some(s) = val
        .and_then(|v| v.pointer("/Sval/sval"))
        .and_then(Value::as_str)
    {
        return Arg::Text(s.to_string());
    }
    if val.and_then(|v| v.get("Boolval")).is_some() {
        return Arg::Bool;
    }
    Arg::Other
}

/// True when the serialised argument is an integer constant (casts looked through).
fn is_integer(v: Option<&Value>) -> bool {
    let mut node = v.and_then(|v| v.get("node"));
    while let Some(cast) = node.and_then(|n| n.get("TypeCast")) {
        node = cast.get("arg").and_then(|a| a.get("node"));
    }
    node.and_then(|n| n.pointer("/AConst/val/Ival")).is_some()
}

/// The parts of a table name as `regclass` input reads it (`schema.rel`, `"Mixed Case"`),
/// unquoted parts lower-cased; `None` for anything else (an OID, an empty part, stray text).
fn qualified_name(text: &str) -> Option<Vec<String>> {
    let bytes = text.as_bytes();
    let mut parts = Vec::new();
    let mut i = 0;
    loop {
        while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        let mut part = String::new();
        match bytes.get(i) {
            Some(b'"') => {
                i += 1;
                loop {
                    let rest = text.get(i..)?;
                    let q = rest.find('"')?;
                    part.push_str(&rest[..q]);
                    i += q + 1;
                    if bytes.get(i) == Some(&b'"') {
                        part.push('"');
                        i += 1;
                    } else {
                        break;
                    }
                }
            }
            Some(&b) if b.is_ascii_alphabetic() || b == b'_' || b >= 0x80 => {
                let start = i;
                while bytes.get(i).is_some_and(|&b| {
                    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
                }) {
                    i += 1;
                }
                part = text.get(start..i)?.to_ascii_lowercase();
            }
            _ => return None,
        }
        if part.is_empty() {
            return None;
        }
        parts.push(part);
        while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        match bytes.get(i) {
            None => break,
            Some(b'.') if parts.len() < 3 => i += 1,
            _ => return None,
        }
    }
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(sql: &str) -> TextSql {
        text_sql(&pg_query::parse(sql).unwrap().protobuf)
    }

    fn sql(texts: &[&str]) -> TextSql {
        TextSql {
            sql: texts.iter().map(|s| s.to_string()).collect(),
            ..TextSql::default()
        }
    }

    #[test]
    fn query_arguments_are_found() {
        assert_eq!(
            of("SELECT query_to_xml('SELECT * FROM secrets', true, true, '')"),
            sql(&["SELECT * FROM secrets"])
        );
        assert_eq!(
            of("SELECT pg_catalog.query_to_xmlschema($$DELETE FROM t$$::text, true, false, '')"),
            sql(&["DELETE FROM t"])
        );
        assert_eq!(
            of("SELECT * FROM ts_stat('SELECT v FROM docs')"),
            sql(&["SELECT v FROM docs"])
        );
        assert_eq!(
            of("SELECT ts_rewrite('a'::tsquery, 'SELECT t, s FROM aliases')"),
            sql(&["SELECT t, s FROM aliases"])
        );
        assert_eq!(
            of("SELECT ts_rewrite('a & b'::tsquery, 'a', 'c')"),
            TextSql::default()
        );
        assert_eq!(
            of("SELECT * FROM crosstab('SELECT a FROM s', 'SELECT b FROM c') AS x(a int)"),
            sql(&["SELECT a FROM s", "SELECT b FROM c"])
        );
        assert_eq!(
            of("SELECT * FROM crosstab('SELECT a FROM s', 3) AS x(a int)"),
            sql(&["SELECT a FROM s"])
        );
        // Nested calls are all found; a NULL query runs nothing.
        assert_eq!(
            of("SELECT length(query_to_xml('SELECT 1', true, true, '')::text), ts_stat(NULL)"),
            sql(&["SELECT 1"])
        );
    }

    #[test]
    fn dblink_sql_is_the_last_argument_before_a_boolean() {
        for (q, want) in [
            ("SELECT dblink_exec('DELETE FROM t')", "DELETE FROM t"),
            (
                "SELECT dblink_exec('DELETE FROM t', false)",
                "DELETE FROM t",
            ),
            (
                "SELECT dblink_exec('dbname=prod', 'DELETE FROM t')",
                "DELETE FROM t",
            ),
            (
                "SELECT dblink_exec('conn', 'DELETE FROM t', true)",
                "DELETE FROM t",
            ),
            (
                "SELECT * FROM dblink('conn', 'SELECT 1') AS x(a int)",
                "SELECT 1",
            ),
            ("SELECT dblink_open('conn', 'cur', 'SELECT 2')", "SELECT 2"),
            ("SELECT dblink_send_query('conn', 'SELECT 3')", "SELECT 3"),
        ] {
            assert_eq!(of(q), sql(&[want]), "{q}");
        }
    }

    #[test]
    fn tables_named_in_arguments_are_read() {
        let t = |parts: &[&str]| TextSql {
            tables: vec![parts.iter().map(|s| s.to_string()).collect()],
            ..TextSql::default()
        };
        assert_eq!(
            of("SELECT table_to_xml('Secrets', true, false, '')"),
            t(&["secrets"])
        );
        assert_eq!(
            of("SELECT table_to_xml('app.\"Odd\"\"Name\"'::regclass, true, false, '')"),
            t(&["app", "Odd\"Name"])
        );
        assert_eq!(
            of("SELECT get_raw_page(' db . public . t ', 0)"),
            t(&["db", "public", "t"])
        );
        assert_eq!(
            of("SELECT dblink_build_sql_insert('secrets', '1', 1, '{1}', '{1}')"),
            t(&["secrets"])
        );
    }

    #[test]
    fn what_cannot_be_read_is_unknown() {
        for q in [
            "SELECT query_to_xml(q, true, true, '') FROM queries",
            "SELECT query_to_xml('SELECT ' || 1, true, true, '')",
            "SELECT query_to_xml($1, true, true, '')",
            "SELECT query_to_xml(query => 'SELECT 1', nulls => true, tableforest => true, targetns => '')",
            "SELECT dblink_exec('conn', sql) FROM jobs",
            "SELECT dblink_exec('conn', 'DELETE FROM t', flag) FROM jobs",
            "SELECT * FROM crosstab('SELECT 1', c) AS x(a int)",
            "SELECT table_to_xml(c.oid, true, false, '') FROM pg_class c",
            "SELECT table_to_xml('16384', true, false, '')",
            "SELECT table_to_xml(16384, true, false, '')",
            "SELECT table_to_xml('t; x', true, false, '')",
            "SELECT table_to_xml('a.b.c.d', true, false, '')",
            "SELECT table_to_xml('\"unterminated', true, false, '')",
            "SELECT schema_to_xml('public', true, false, '')",
            "SELECT database_to_xml(true, false, '')",
            "SELECT data FROM pg_logical_slot_peek_changes('s', NULL, NULL)",
            "SELECT * FROM bt_page_items('secrets_pkey', 1)",
            "SELECT * FROM connectby('tree', 'id', 'parent', '1', 0) AS t(a int, b int, c int)",
        ] {
            assert!(of(q).unknown, "{q}");
        }
    }

    proptest::proptest! {
        #[test]
        fn qualified_names_read_back_and_never_panic(
            parts in proptest::collection::vec("[a-zA-Z_][a-zA-Z0-9_$]{0,8}|\"([^\"]|\"\"){1,8}\"", 1..4),
            junk in "(?s).{0,40}",
        ) {
            let text = parts.join(" . ");
            let want: Vec<String> = parts
                .iter()
                .map(|p| match p.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
                    Some(quoted) => quoted.replace("\"\"", "\""),
                    None => p.to_ascii_lowercase(),
                })
                .collect();
            proptest::prop_assert_eq!(qualified_name(&text), Some(want));
            let _ = qualified_name(&junk);
        }
    }

    #[test]
    fn other_calls_are_ignored() {
        assert_eq!(
            of("SELECT length('SELECT * FROM secrets'), xmlparse(content '<a/>'), table_to_xmlschema('t', true, false, '')"),
            TextSql::default()
        );
        assert!(!runs_text("length"));
        assert!(runs_text("query_to_xml"));
    }
}
