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

use super::split::{skip_block_comment, skip_line_comment};

/// The longest identifier the server keeps, in bytes (`NAMEDATALEN - 1`).
pub(super) const MAX_IDENTIFIER: usize = 63;

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
    /// `cron.schedule([job_name,] schedule, command)`: pg_cron runs the last argument later.
    CronSchedule,
    /// `cron.alter_job(job_id, schedule, command, database, username, active)`: a new
    /// command; a new database or user moves the job where the facts cannot follow.
    CronAlter,
    /// `cron.schedule_in_database(job_name, schedule, command, database, …)`: the command
    /// runs in another database, perhaps as another user, where the facts cannot follow.
    CronInDatabase,
    /// Reads tables it does not name (a whole schema or database, the changes decoded from
    /// the WAL, an index's entries, the blocks a WAL record holds), runs SQL on other hosts
    /// or as another user given in arrays or arguments (Citus's `master_run_on_worker`,
    /// `execute_command_on_remote_nodes_as_user`), or splices its text arguments into SQL
    /// unquoted (`connectby`, `xpath_table`, Citus's `run_command_on_shards` family).
    Opaque,
}

impl Kind {
    /// Whether a call with a single argument (`x.f` and `(expr).f` call `f(x)`) may run SQL
    /// or read a table: pg_cron's functions need two or more.
    fn runs_alone(self) -> bool {
        !matches!(
            self,
            Kind::CronSchedule | Kind::CronAlter | Kind::CronInDatabase
        )
    }
}

/// The schema pg_cron keeps its functions in (the extension cannot be moved).
const CRON_SCHEMA: &str = "cron";

/// The kind of a function, by the last part of its (lower-case) name and, when the call is
/// qualified, the part before it. `None` for the qualifier means any schema: an unqualified
/// call finds whatever `search_path` holds, and extensions other than pg_cron can be
/// installed in any schema.
fn kind(qualifier: Option<&str>, name: &str) -> Option<Kind> {
    let cron = qualifier.is_none_or(|q| q == CRON_SCHEMA);
    Some(match name {
        "query_to_xml"
        | "query_to_xmlschema"
        | "query_to_xml_and_xmlschema"
        | "ts_stat"
        | "crosstab2"
        | "crosstab3"
        | "crosstab4"
        // pg_background runs its first argument in a background worker.
        | "pg_background_launch"
        | "pg_background_launch_v2"
        | "pg_background_submit_v2"
        // Citus runs the command on the nodes of the cluster.
        | "run_command_on_workers"
        | "run_command_on_all_nodes"
        | "run_command_on_coordinator"
        | "citus_run_local_command" => Kind::Query(0),
        "schedule" if cron => Kind::CronSchedule,
        "alter_job" if cron => Kind::CronAlter,
        "schedule_in_database" if cron => Kind::CronInDatabase,
        "ts_rewrite" => Kind::Rewrite,
        "crosstab" => Kind::Crosstab,
        "dblink" | "dblink_exec" | "dblink_open" | "dblink_send_query" => Kind::Dblink,
        "table_to_xml"
        | "table_to_xml_and_xmlschema"
        | "get_raw_page"
        | "dblink_build_sql_insert"
        | "dblink_build_sql_update"
        | "dblink_build_sql_delete"
        | "heap_force_kill"
        | "heap_force_freeze" => Kind::Table,
        "schema_to_xml"
        | "schema_to_xml_and_xmlschema"
        | "database_to_xml"
        | "database_to_xml_and_xmlschema"
        | "pg_logical_slot_get_changes"
        | "pg_logical_slot_peek_changes"
        | "pg_logical_slot_get_binary_changes"
        | "pg_logical_slot_peek_binary_changes"
        | "bt_page_items"
        | "pg_get_wal_block_info"
        | "xpath_table"
        | "connectby"
        | "run_command_on_shards"
        | "run_command_on_placements"
        | "run_command_on_colocated_placements"
        | "master_run_on_worker"
        | "execute_command_on_remote_nodes_as_user" => Kind::Opaque,
        _ => return None,
    })
}

/// True when a call of `function` (a name from `sql.functions`) may run SQL or read a table
/// given in its arguments, whatever schema it is called in.
pub(super) fn runs_text(function: &str) -> bool {
    kind(None, function).is_some()
}

/// True when a one-argument call of `function` (attribute notation) may run SQL or read a
/// table.
fn runs_alone(function: &str) -> bool {
    kind(None, function).is_some_and(Kind::runs_alone)
}

/// What the calls of one parsed statement run and read.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct TextSql {
    /// SQL texts run by the calls, in tree order.
    pub sql: Vec<String>,
    /// Tables read by name: the name's parts (`[schema.]rel`).
    pub tables: Vec<Vec<String>>,
    /// Functions called in attribute notation (`(expr).func`), which the tree walk does not
    /// see as calls.
    pub functions: Vec<String>,
    /// A call's SQL or table could not be read: the statement's facts are unknown.
    pub unknown: bool,
}

/// One argument of a call.
#[derive(Debug, PartialEq, Eq)]
enum Arg {
    /// A string constant, seen through casts that keep every character.
    Text(String),
    /// A boolean constant.
    Bool,
    /// An integer constant.
    Int,
    /// `NULL`: a call that runs its argument does nothing with it.
    Null,
    /// Anything else: another constant, a parameter, a column, an expression, a cast that
    /// may cut or change the text.
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
            // `CallStmt` holds its call without the `FuncCall` wrapper.
            for call in [m.get("FuncCall"), m.get("funccall")].into_iter().flatten() {
                let parts = call.get("funcname").and_then(Value::as_array);
                if let Some(name) = parts.and_then(|p| p.last()).and_then(name_part) {
                    let qualifier = parts
                        .and_then(|p| p.len().checked_sub(2).and_then(|i| p.get(i)))
                        .and_then(name_part);
                    let args: Vec<&Value> = call
                        .get("args")
                        .and_then(Value::as_array)
                        .map_or_else(Vec::new, |a| a.iter().collect());
                    on_call(qualifier, name, &args, found);
                }
            }
            if let Some(ind) = m.get("AIndirection") {
                on_indirection(ind, found);
            }
            // `x.name` may call `name(x)`, with a computed argument.
            if let Some(fields) = m
                .get("ColumnRef")
                .and_then(|c| c.get("fields"))
                .and_then(Value::as_array)
            {
                if let [_, .., last] = fields.as_slice() {
                    if let Some(name) = name_part(last) {
                        if runs_alone(&name.to_ascii_lowercase()) {
                            found.unknown = true;
                        }
                    }
                }
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

/// The text of one part of a serialised name list.
fn name_part(part: &Value) -> Option<&str> {
    part.pointer("/node/String/sval").and_then(Value::as_str)
}

/// `(expr).name`, `$1.name`: each name may call a function of one argument (attribute
/// notation), the first on `expr`, the next on the result of the one before.
fn on_indirection(ind: &Value, found: &mut TextSql) {
    let parts = ind.get("indirection").and_then(Value::as_array);
    let Some(arg) = ind.get("arg") else {
        return;
    };
    for (i, part) in parts.into_iter().flatten().enumerate() {
        let Some(name) = name_part(part) else {
            continue;
        };
        found.functions.push(name.to_ascii_lowercase());
        if i == 0 {
            on_call(None, name, &[arg], found);
        } else if runs_alone(&name.to_ascii_lowercase()) {
            // Its argument is computed (a field, a subscript, another call).
            found.unknown = true;
        }
    }
}

/// One call of `name` (in schema `qualifier`, when the call names one) with the serialised
/// argument nodes `raw`.
fn on_call(qualifier: Option<&str>, name: &str, raw: &[&Value], found: &mut TextSql) {
    let qualifier = qualifier.map(str::to_ascii_lowercase);
    let Some(kind) = kind(qualifier.as_deref(), &name.to_ascii_lowercase()) else {
        return;
    };
    let in_cron = qualifier.as_deref() == Some(CRON_SCHEMA);
    // Named arguments (`query => …`) would need the function's parameter names.
    if raw
        .iter()
        .any(|a| a.pointer("/node/NamedArgExpr").is_some())
    {
        found.unknown = true;
        return;
    }
    let table = kind == Kind::Table;
    let args: Vec<Arg> = raw.iter().map(|a| arg(a, table)).collect();
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
                Some(Arg::Int) => {}
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
        // The command is the last of two or three arguments: `(schedule, command)` or
        // `(job_name, schedule, command)`. No released pg_cron has another form, so the
        // server refuses other calls of `cron.schedule`; an unqualified one is then not
        // pg_cron's.
        Kind::CronSchedule => match args.len() {
            2 | 3 => run(args.last(), found),
            _ if in_cron => found.unknown = true,
            _ => {}
        },
        // A command is analysed as if the job ran here; a database or user (or anything
        // past the command) fails closed.
        Kind::CronAlter => match args.len() {
            0..=2 => {}
            3 => run(args.get(2), found),
            _ => found.unknown = true,
        },
        Kind::CronInDatabase => {
            if args.len() > 1 || in_cron {
                found.unknown = true;
            }
        }
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

/// Reads one serialised argument node. A string is seen through casts to `pg_catalog.text`,
/// `varchar` without a length, `pg_catalog.unknown` and (for a table name, `table`)
/// `pg_catalog.regclass`; any other cast may cut or change it (`varchar(7)`, `char`, `name`,
/// a domain that `search_path` finds first), so the argument is then unknown.
fn arg(v: &Value, table: bool) -> Arg {
    let mut node = v.get("node");
    let (mut to_text, mut to_int) = (false, false);
    while let Some(cast) = node.and_then(|n| n.get("TypeCast")) {
        match cast.get("type_name").and_then(plain_type).as_deref() {
            Some("text" | "varchar" | "unknown") => to_text = true,
            Some("regclass") if table => to_text = true,
            Some("int2" | "int4" | "int8") => to_int = true,
            _ => return Arg::Other,
        }
        node = cast.get("arg").and_then(|a| a.get("node"));
    }
    let Some(c) = node.and_then(|n| n.get("AConst")) else {
        return Arg::Other;
    };
    if c.get("isnull").and_then(Value::as_bool) == Some(true) {
        return Arg::Null;
    }
    let val = c.get("val");
    // A constant cast to another kind is not the constant it was (`3::text` is SQL text).
    match val {
        Some(v) if !to_int => {
            if let Some(s) = v.pointer("/Sval/sval").and_then(Value::as_str) {
                return Arg::Text(s.to_string());
            }
            if v.get("Boolval").is_some() && !to_text {
                return Arg::Bool;
            }
            if v.get("Ival").is_some() && !to_text {
                return Arg::Int;
            }
            Arg::Other
        }
        Some(v) if !to_text && v.get("Ival").is_some() => Arg::Int,
        _ => Arg::Other,
    }
}

/// The name of a serialised `TypeName` without modifiers or array bounds, qualified with
/// `pg_catalog` (as the grammar writes `varchar`; `text` and `regclass` must be written so).
fn plain_type(t: &Value) -> Option<String> {
    let empty = |k: &str| t.get(k).and_then(Value::as_array).is_none_or(Vec::is_empty);
    if !empty("typmods") || !empty("array_bounds") {
        return None;
    }
    if t.get("setof").and_then(Value::as_bool) == Some(true)
        || t.get("pct_type").and_then(Value::as_bool) == Some(true)
    {
        return None;
    }
    let names: Vec<&str> = t
        .get("names")
        .and_then(Value::as_array)?
        .iter()
        .map(|n| n.pointer("/node/String/sval").and_then(Value::as_str))
        .collect::<Option<_>>()?;
    // An unqualified name follows `search_path`, where a domain could shadow it.
    match names.as_slice() {
        ["pg_catalog", name] => Some(name.to_string()),
        _ => None,
    }
}

/// True when `text` may hold attribute notation on an expression: a `.` after a `)`, a `]`
/// or a `$n` parameter (whitespace and comments between). Strings are not skipped, so a
/// text can be flagged without holding one, never the other way round.
pub(super) fn may_have_indirection(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let after = match bytes[i] {
            b')' | b']' => i + 1,
            b'$' if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let mut j = i + 1;
                while bytes.get(j).is_some_and(u8::is_ascii_digit) {
                    j += 1;
                }
                j
            }
            _ => {
                i += 1;
                continue;
            }
        };
        if bytes.get(skip_space(bytes, after)) == Some(&b'.') {
            return true;
        }
        i += 1;
    }
    false
}

/// The index after whitespace and comments (nested `/* */`, `--` to the end of the line).
fn skip_space(bytes: &[u8], mut i: usize) -> usize {
    loop {
        match bytes.get(i) {
            Some(b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) => i += 1,
            Some(b'-') if bytes.get(i + 1) == Some(&b'-') => i = skip_line_comment(bytes, i),
            Some(b'/') if bytes.get(i + 1) == Some(&b'*') => i = skip_block_comment(bytes, i),
            _ => return i,
        }
    }
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
        // The server cuts identifiers to NAMEDATALEN - 1 bytes, on a character boundary.
        if part.len() > MAX_IDENTIFIER {
            let mut end = MAX_IDENTIFIER;
            while !part.is_char_boundary(end) {
                end -= 1;
            }
            part.truncate(end);
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
            of("SELECT pg_catalog.query_to_xmlschema($$DELETE FROM t$$::pg_catalog.text, true, false, '')"),
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
    fn extension_commands_are_found() {
        for (q, want) in [
            (
                "SELECT pg_background_launch('DELETE FROM t')",
                "DELETE FROM t",
            ),
            (
                "SELECT * FROM public.pg_background_launch_v2('VACUUM t', 65536)",
                "VACUUM t",
            ),
            (
                "SELECT pg_background_submit_v2('DROP TABLE t')",
                "DROP TABLE t",
            ),
            (
                "SELECT run_command_on_workers('DROP TABLE t')",
                "DROP TABLE t",
            ),
            (
                "SELECT run_command_on_all_nodes('DELETE FROM t', true)",
                "DELETE FROM t",
            ),
            (
                "SELECT cron.schedule('* * * * *', 'DELETE FROM t')",
                "DELETE FROM t",
            ),
            (
                "SELECT cron.schedule('purge', '0 * * * *', 'DELETE FROM t')",
                "DELETE FROM t",
            ),
            // `search_path` may hold `cron`.
            ("SELECT schedule('@daily', 'TRUNCATE t')", "TRUNCATE t"),
            (
                "SELECT cron.alter_job(7, NULL, 'DROP TABLE t')",
                "DROP TABLE t",
            ),
            (
                "SELECT citus_run_local_command('DROP TABLE t')",
                "DROP TABLE t",
            ),
        ] {
            assert_eq!(of(q), sql(&[want]), "{q}");
        }
        // No command: nothing runs; another schema's `schedule` is not pg_cron's.
        assert_eq!(
            of("SELECT cron.alter_job(7, '@hourly')"),
            TextSql::default()
        );
        assert_eq!(of("SELECT app.schedule('tomorrow')"), TextSql::default());
        assert_eq!(
            of("SELECT app.schedule('a', 'b', 'c', 'd')"),
            TextSql::default()
        );
        assert_eq!(
            of("SELECT schedule('a', 'b', 'c', 'd')"),
            TextSql::default()
        );
        // pg_cron's functions take two or more arguments: `x.schedule` is a column (or a
        // one-argument function that is not pg_cron's).
        for q in [
            "SELECT e.schedule FROM events e WHERE e.schedule IS NOT NULL",
            "SELECT j.schedule, j.command, (j).alter_job FROM cron.job j",
            "SELECT ('x'::text).schedule_in_database",
        ] {
            assert_eq!(of(q).sql, Vec::<String>::new(), "{q}");
            assert!(!of(q).unknown, "{q}");
        }
        // Another database or user, spliced shard names, raw WAL blocks: unknown.
        for q in [
            "SELECT cron.schedule_in_database('j', '@daily', 'DELETE FROM t', 'other')",
            "SELECT cron.alter_job(7, NULL, 'DELETE FROM t', 'other')",
            "SELECT cron.schedule('* * * * *', cmd) FROM jobs",
            "SELECT cron.schedule('a', 'b', 'c', 'd')",
            "SELECT schedule_in_database('j', '@daily', 'SELECT 1', 'db')",
            "SELECT master_run_on_worker('{h}', '{5432}', '{\"DROP TABLE t\"}', false)",
            "SELECT citus_internal.execute_command_on_remote_nodes_as_user('DROP TABLE t', 'u')",
            "SELECT run_command_on_shards('t', $$DELETE FROM %s$$)",
            "SELECT run_command_on_colocated_placements('a', 'b', 'SELECT 1')",
            "SELECT * FROM pg_get_wal_block_info('0/0', '0/FFFFFF', true)",
        ] {
            assert!(of(q).unknown, "{q}");
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
            of("SELECT table_to_xml('app.\"Odd\"\"Name\"'::pg_catalog.regclass, true, false, '')"),
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
    fn attribute_notation_calls_are_found() {
        let found =
            of("SELECT ('SELECT s FROM secrets'::varchar).ts_stat, (x).\"Pg_Read_File\" FROM t");
        assert_eq!(found.sql, vec!["SELECT s FROM secrets"]);
        assert_eq!(found.functions, vec!["ts_stat", "pg_read_file"]);
        assert!(!found.unknown);
        assert!(of("SELECT (q).dblink_exec FROM jobs").unknown);
        assert!(of("SELECT ('x'::text).lower.ts_stat").unknown);
        assert_eq!(of("SELECT $1.crosstab2").functions, vec!["crosstab2"]);
    }

    #[test]
    fn casts_that_may_change_the_text_are_not_looked_through() {
        assert_eq!(
            of("SELECT query_to_xml('SELECT 1'::pg_catalog.varchar, true, true, '')"),
            sql(&["SELECT 1"])
        );
        for q in [
            "SELECT query_to_xml('SELECT * FROM secrets_public'::varchar(21), true, true, '')",
            "SELECT query_to_xml('SELECT 1'::char(8), true, true, '')",
            "SELECT ts_stat('SELECT 1'::name)",
            "SELECT query_to_xml('SELECT 1'::myschema.text, true, true, '')",
            // Unqualified, `text` and `regclass` follow `search_path` (a domain can cut).
            "SELECT query_to_xml('SELECT 1'::text, true, true, '')",
            "SELECT table_to_xml('t'::regclass, true, false, '')",
            // `x.name` may call name(x).
            "SELECT s.ts_stat FROM unnest(ARRAY['SELECT 1']) s",
            "SELECT query_to_xml('SELECT 1'::text[], true, true, '')",
            "SELECT query_to_xml('SELECT 1'::regclass::text, true, true, '')",
            "SELECT table_to_xml('secrets_x'::varchar(7), true, false, '')",
            "SELECT * FROM crosstab('SELECT 1', 3::text) AS x(a int)",
            "SELECT * FROM crosstab('SELECT 1', '3'::int) AS x(a int)",
        ] {
            assert!(of(q).unknown, "{q}");
        }
        assert!(!of("SELECT * FROM crosstab('SELECT 1', 3::bigint) AS x(a int)").unknown);
    }

    #[test]
    fn identifiers_are_cut_like_the_server_cuts_them() {
        let long = "a".repeat(66);
        assert_eq!(qualified_name(&long), Some(vec!["a".repeat(63)]));
        // On a character boundary: byte 63 would split the 32nd two-byte character.
        let cut = qualified_name(&"é".repeat(40)).unwrap();
        assert_eq!(cut[0], "é".repeat(31));
    }

    #[test]
    fn indirection_is_flagged_through_spaces_and_comments() {
        for text in [
            "SELECT (x).f",
            "SELECT (x) /* a /* nested */ comment */ . f",
            "SELECT (x) -- c\n.f",
            "SELECT a[1].f FROM t",
            "SELECT $12 .f",
        ] {
            assert!(may_have_indirection(text), "{text}");
        }
        for text in [
            "SELECT t.a FROM s.t WHERE f(x) = 1.5",
            "SELECT $1, (x)",
            "SELECT (x) /* .",
        ] {
            assert!(!may_have_indirection(text), "{text}");
        }
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
