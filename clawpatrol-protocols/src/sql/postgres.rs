//! Postgres statement analysis with `pg_query` (libpg_query, the PostgreSQL 17 grammar).

use pg_query::protobuf::node::Node as N;
use pg_query::protobuf::{self, ObjectType};
use serde_json::Value;

use super::conforming::nonconforming_reading;
use super::plpgsql_record::{record_default_hidden, record_variables};
use super::split::split_postgres;
use super::summary::summarize;
use super::text_sql::{may_have_indirection, runs_text, text_sql};
use super::verb::postgres_verb;
use super::walk::{collect, Refs};
use super::SqlStatement;

/// How deep `DO` bodies may nest inside `DO` bodies before analysis gives up (fail closed).
const MAX_DO_DEPTH: usize = 4;

/// Analyses a Postgres query text: one [`SqlStatement`] per piece, each followed by its
/// shadow statements, in evaluation order. Empty (or whitespace-only) text gives no statement.
///
/// Plain DML pieces take libpg_query's summary (see `summary.rs`); the rest the full walk.
///
/// A text whose plain string literals hold a backslash is also analysed as the server reads
/// it with `standard_conforming_strings = off` (see `conforming.rs`); when the two readings
/// give different statements or facts, every piece is unparseable (fail closed).
pub fn analyze_postgres(text: &str) -> Vec<SqlStatement> {
    either_reading(text, analyze_fast)
}

/// [`analyze_postgres`] through the full parse-tree walk only: the reference the fast path
/// is tested against (tests, fuzzing, benchmarks).
pub fn analyze_postgres_full(text: &str) -> Vec<SqlStatement> {
    either_reading(text, |t| {
        let mut out = Vec::new();
        analyze_text(t, 0, false, &mut out);
        out
    })
}

fn analyze_fast(text: &str) -> Vec<SqlStatement> {
    let mut out = Vec::new();
    for piece in split_postgres(text) {
        match summarize(piece) {
            Some(statement) => out.push(statement),
            None => analyze_piece(piece, piece, 0, false, &mut out),
        }
    }
    out
}

/// `analyze(text)`, when the server reads the text the same way whatever its
/// `standard_conforming_strings`; otherwise every piece, unparseable.
fn either_reading(text: &str, analyze: impl Fn(&str) -> Vec<SqlStatement>) -> Vec<SqlStatement> {
    let out = analyze(text);
    let Some(other) = nonconforming_reading(text) else {
        return out;
    };
    let theirs = analyze(&other);
    if same_facts(&out, &theirs) {
        return out;
    }
    split_postgres(text)
        .into_iter()
        .map(|piece| SqlStatement::unparseable(piece, false))
        .collect()
}

/// True when two analyses give the same statements with the same facts (their texts may
/// differ).
fn same_facts(a: &[SqlStatement], b: &[SqlStatement]) -> bool {
    let facts = |s: &SqlStatement| {
        (
            s.verb.clone(),
            s.tables.clone(),
            s.functions.clone(),
            s.unparseable,
            s.shadow,
        )
    };
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| facts(x) == facts(y))
}

/// Analyses SQL that a statement runs from a string (`EXECUTE '…'` in a `DO` body,
/// `query_to_xml('…')`) as shadow statements. The string is read like a statement text:
/// where `standard_conforming_strings = off` would read it differently, it is unparseable.
fn analyze_inner(sql: &str, depth: usize, out: &mut Vec<SqlStatement>) {
    let mut ours = Vec::new();
    analyze_text(sql, depth, true, &mut ours);
    if let Some(other) = nonconforming_reading(sql) {
        let mut theirs = Vec::new();
        analyze_text(&other, depth, true, &mut theirs);
        if !same_facts(&ours, &theirs) {
            out.push(SqlStatement::unparseable(sql, true));
            return;
        }
    }
    out.extend(ours);
}

fn analyze_text(text: &str, depth: usize, shadow: bool, out: &mut Vec<SqlStatement>) {
    for piece in split_postgres(text) {
        analyze_piece(piece, piece, depth, shadow, out);
    }
}

/// Parses `text`, retrying once with `COLLATE default` quoted; returns the parsed tree and
/// the text that parsed.
pub(super) fn parse(text: &str) -> Option<(protobuf::ParseResult, std::borrow::Cow<'_, str>)> {
    if let Some(tree) = parse_once(text) {
        return Some((tree, std::borrow::Cow::Borrowed(text)));
    }
    let rewritten = rewrite_collate_default(text)?;
    let tree = parse_once(&rewritten)?;
    Some((tree, std::borrow::Cow::Owned(rewritten)))
}

fn parse_once(text: &str) -> Option<protobuf::ParseResult> {
    // A panic inside the parser binding must not take the proxy down: treat it as a refusal.
    std::panic::catch_unwind(|| pg_query::parse(text))
        .ok()?
        .ok()
        .map(|r| r.protobuf)
}

/// Analyses one piece: pushes its statement and then its shadows.
fn analyze_piece(
    statement: &str,
    text: &str,
    depth: usize,
    shadow: bool,
    out: &mut Vec<SqlStatement>,
) {
    let Some((tree, parsed_text)) = parse(text) else {
        out.push(SqlStatement::unparseable(statement, shadow));
        return;
    };
    if tree.stmts.len() > 1 {
        // The splitter left two statements in one piece: it read the text differently from
        // the server's lexer, so nothing it derived can be trusted (fail closed).
        out.push(SqlStatement::unparseable(statement, shadow));
        return;
    }
    let nodes: Vec<&N> = tree
        .stmts
        .iter()
        .filter_map(|s| s.stmt.as_ref().and_then(|n| n.node.as_ref()))
        .collect();
    let mut refs = Refs::default();
    let mut shadows = Vec::new();
    for node in &nodes {
        collect(*node, &mut refs);
        special_tables(node, &mut refs);
        cte_shadows(node, statement, &mut shadows);
        if let N::DoStmt(d) = node {
            if do_reads_alike(d) {
                do_shadows(d, statement, &parsed_text, depth, &mut shadows);
            } else {
                shadows.push(SqlStatement::unparseable(statement, true));
            }
        }
    }
    let inner = if refs.functions.iter().any(|f| runs_text(f)) || may_have_indirection(&parsed_text)
    {
        text_shadows(&tree, statement, depth, &mut refs)
    } else {
        Vec::new()
    };
    let verb = nodes.first().map_or("", |n| postgres_verb(n));
    out.push(SqlStatement::parsed(statement, verb, refs, shadow));
    out.extend(shadows);
    out.extend(inner);
}

/// The SQL that calls such as `query_to_xml('…')` run becomes shadow statements, whose
/// tables and functions (and those of tables named as arguments) also count for the
/// statement; a call whose SQL or table cannot be read adds an unparseable shadow.
fn text_shadows(
    tree: &protobuf::ParseResult,
    statement: &str,
    depth: usize,
    refs: &mut Refs,
) -> Vec<SqlStatement> {
    let found = text_sql(tree);
    for parts in &found.tables {
        refs.add_table_parts(parts);
    }
    for f in &found.functions {
        refs.add_function(std::slice::from_ref(f));
    }
    let mut inner = Vec::new();
    for sql in &found.sql {
        if depth < MAX_DO_DEPTH {
            analyze_inner(sql, depth + 1, &mut inner);
        } else {
            inner.push(SqlStatement::unparseable(sql, true));
        }
    }
    for s in &inner {
        refs.tables.extend(s.tables.iter().cloned());
        refs.functions.extend(s.functions.iter().cloned());
    }
    if found.unknown {
        inner.push(SqlStatement::unparseable(statement, true));
    }
    inner
}

fn is_table_shaped(objtype: i32) -> bool {
    matches!(
        ObjectType::try_from(objtype),
        Ok(ObjectType::ObjectTable
            | ObjectType::ObjectView
            | ObjectType::ObjectMatview
            | ObjectType::ObjectSequence
            | ObjectType::ObjectForeignTable)
    )
}

/// The names the tree walk cannot see: DROP and COMMENT ON name their objects with string
/// lists, which count only for table-shaped object types.
fn special_tables(node: &N, refs: &mut Refs) {
    match node {
        N::DropStmt(d) if is_table_shaped(d.remove_type) => {
            for obj in &d.objects {
                refs.add_table_parts(&name_parts(obj));
            }
        }
        N::CommentStmt(c) if is_table_shaped(c.objtype) => {
            if let Some(obj) = &c.object {
                refs.add_table_parts(&name_parts(obj));
            }
        }
        _ => {}
    }
}

/// The string parts of a `List` of `String` nodes (or of a lone `String` node).
fn name_parts(node: &protobuf::Node) -> Vec<String> {
    match &node.node {
        Some(N::List(l)) => l
            .items
            .iter()
            .filter_map(|i| match &i.node {
                Some(N::String(s)) => Some(s.sval.clone()),
                _ => None,
            })
            .collect(),
        Some(N::String(s)) => vec![s.sval.clone()],
        _ => Vec::new(),
    }
}

fn with_clause(node: &N) -> Option<&protobuf::WithClause> {
    match node {
        N::SelectStmt(s) => s.with_clause.as_ref(),
        N::InsertStmt(s) => s.with_clause.as_ref(),
        N::UpdateStmt(s) => s.with_clause.as_ref(),
        N::DeleteStmt(s) => s.with_clause.as_ref(),
        N::MergeStmt(s) => s.with_clause.as_ref(),
        _ => None,
    }
}

fn inner(node: &Option<Box<protobuf::Node>>) -> Option<&N> {
    node.as_ref().and_then(|n| n.node.as_ref())
}

/// A statement that wraps another: the wrapped one, and whether it runs (now, or for
/// `PREPARE` at each `EXECUTE`; `EXPLAIN` only with `ANALYZE`).
fn wrapped(node: &N) -> Option<(&N, bool)> {
    match node {
        N::ExplainStmt(e) => inner(&e.query).map(|q| (q, explain_runs(e))),
        N::PrepareStmt(p) => inner(&p.query).map(|q| (q, true)),
        N::CopyStmt(c) => inner(&c.query).map(|q| (q, true)),
        N::CreateTableAsStmt(c) => inner(&c.query).map(|q| (q, true)),
        N::DeclareCursorStmt(d) => inner(&d.query).map(|q| (q, true)),
        _ => None,
    }
}

/// True when an `EXPLAIN` names the `ANALYZE` option (whatever its value: fail closed).
fn explain_runs(e: &protobuf::ExplainStmt) -> bool {
    e.options.iter().any(
        |o| matches!(&o.node, Some(N::DefElem(d)) if d.defname.eq_ignore_ascii_case("analyze")),
    )
}

/// Each data-modifying CTE becomes a shadow statement (statement = the CTE name). A
/// statement wrapped by `EXPLAIN ANALYZE`, `PREPARE`, `COPY (…)`, `CREATE TABLE … AS` or
/// `DECLARE` that writes or runs a prepared statement (`INSERT`, `UPDATE`, `DELETE`,
/// `MERGE`, `EXECUTE`) becomes one too (statement = the whole `statement`), so the rules on
/// that verb see it; wrapped statements are looked through for CTEs either way.
fn cte_shadows(node: &N, statement: &str, out: &mut Vec<SqlStatement>) {
    if let Some((q, runs)) = wrapped(node) {
        let writes = matches!(
            q,
            N::InsertStmt(_)
                | N::UpdateStmt(_)
                | N::DeleteStmt(_)
                | N::MergeStmt(_)
                | N::ExecuteStmt(_)
        );
        if runs && writes {
            let mut refs = Refs::default();
            collect(q, &mut refs);
            out.push(SqlStatement::parsed(
                statement,
                postgres_verb(q),
                refs,
                true,
            ));
        }
        cte_shadows(q, statement, out);
        return;
    }
    let Some(with) = with_clause(node) else {
        return;
    };
    for cte in &with.ctes {
        let Some(N::CommonTableExpr(c)) = &cte.node else {
            continue;
        };
        let Some(q) = inner(&c.ctequery) else {
            continue;
        };
        let verb = match q {
            N::InsertStmt(_) | N::UpdateStmt(_) | N::DeleteStmt(_) | N::MergeStmt(_) => {
                postgres_verb(q)
            }
            _ => continue,
        };
        let mut refs = Refs::default();
        collect(q, &mut refs);
        out.push(SqlStatement::parsed(&c.ctename, verb, refs, true));
        cte_shadows(q, statement, out);
    }
}

/// One SQL expression found in a PL/pgSQL body.
struct PlExpr {
    query: String,
    mode: i64,
    dynamic: bool,
}

/// The statements inside a `DO` body become shadow statements; a body that cannot be
/// analysed yields one unparseable shadow (fail closed).
fn do_shadows(
    d: &protobuf::DoStmt,
    statement: &str,
    parsed_text: &str,
    depth: usize,
    out: &mut Vec<SqlStatement>,
) {
    let mut language = None;
    for arg in &d.args {
        if let Some(N::DefElem(e)) = &arg.node {
            if e.defname == "language" {
                language = inner(&e.arg).and_then(|a| match a {
                    N::String(s) => Some(s.sval.clone()),
                    _ => None,
                });
            }
        }
    }
    let plpgsql = language.is_none_or(|l| l.eq_ignore_ascii_case("plpgsql"));
    let json = if plpgsql && depth < MAX_DO_DEPTH {
        std::panic::catch_unwind(|| pg_query::parse_plpgsql(parsed_text))
            .ok()
            .and_then(Result::ok)
    } else {
        None
    };
    let Some(json) = json else {
        out.push(SqlStatement::unparseable(statement, true));
        return;
    };
    let mut records = Vec::new();
    record_variables(&json, &mut records);
    if !records.is_empty() && do_body(d).is_none_or(|b| record_default_hidden(b, &records)) {
        // libpg_query's JSON drops a record variable's default expression.
        out.push(SqlStatement::unparseable(statement, true));
        return;
    }
    let mut exprs = Vec::new();
    plpgsql_exprs(&json, "", "", &mut exprs);
    for e in exprs {
        analyze_plpgsql_expr(&e, depth + 1, out);
    }
}

/// False when the server may read the `DO` body differently with
/// `standard_conforming_strings = off`: a plain string in it holds a backslash. PL/pgSQL
/// splits the body into statements with the setting as it is when the block starts and
/// lexes each expression when it first runs, with the setting then (a `SET` in the body can
/// change it in between), so no single reading of the body can be trusted.
fn do_reads_alike(d: &protobuf::DoStmt) -> bool {
    do_body(d).and_then(nonconforming_reading).is_none()
}

/// The body (`AS` argument) of a `DO` statement.
fn do_body(d: &protobuf::DoStmt) -> Option<&str> {
    d.args.iter().find_map(|arg| match &arg.node {
        Some(N::DefElem(e)) if e.defname == "as" => match inner(&e.arg) {
            Some(N::String(s)) => Some(s.sval.as_str()),
            _ => None,
        },
        _ => None,
    })
}

/// Collects every `PLpgSQL_expr` of a parsed PL/pgSQL function, in body order.
fn plpgsql_exprs(v: &Value, stmt: &str, field: &str, out: &mut Vec<PlExpr>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if k == "PLpgSQL_expr" {
                    let query = child.get("query").and_then(Value::as_str).unwrap_or("");
                    let mode = child.get("parseMode").and_then(Value::as_i64).unwrap_or(0);
                    let dynamic = field == "dynquery"
                        || (field == "query"
                            && matches!(stmt, "PLpgSQL_stmt_dynexecute" | "PLpgSQL_stmt_dynfors"));
                    out.push(PlExpr {
                        query: query.to_string(),
                        mode,
                        dynamic,
                    });
                } else if k.starts_with("PLpgSQL_stmt_") {
                    plpgsql_exprs(child, k, "", out);
                } else {
                    plpgsql_exprs(child, stmt, k, out);
                }
            }
        }
        Value::Array(a) => {
            for child in a {
                plpgsql_exprs(child, stmt, field, out);
            }
        }
        _ => {}
    }
}

/// `parseMode` of a full SQL statement (`RAW_PARSE_DEFAULT`).
const MODE_STATEMENT: i64 = 0;
/// `parseMode` of a PL/pgSQL expression (`RAW_PARSE_PLPGSQL_EXPR`).
const MODE_EXPR: i64 = 2;

fn analyze_plpgsql_expr(e: &PlExpr, depth: usize, out: &mut Vec<SqlStatement>) {
    let q = e.query.trim();
    if q.is_empty() {
        return;
    }
    if e.mode == MODE_STATEMENT && !e.dynamic {
        let mut tmp = Vec::new();
        analyze_text(q, depth, true, &mut tmp);
        let keep_first = tmp
            .first()
            .is_some_and(|s| s.unparseable || !s.verb.is_empty());
        out.extend(
            tmp.into_iter()
                .enumerate()
                .filter_map(|(i, s)| (i > 0 || keep_first).then_some(s)),
        );
        return;
    }
    // An expression (condition, assignment, EXECUTE argument): analyse it as `SELECT <expr>`.
    let expr = if e.mode > MODE_EXPR {
        match q
            .find(":=")
            .map(|i| i + 2)
            .or_else(|| q.find('=').map(|i| i + 1))
        {
            Some(i) => q[i..].trim(),
            None => {
                out.push(SqlStatement::unparseable(q, true));
                return;
            }
        }
    } else {
        q
    };
    let select = format!("SELECT {expr}");
    if e.dynamic {
        match string_constant(&select) {
            Some(sql) => analyze_inner(&sql, depth, out),
            // Dynamic SQL built at run time cannot be inspected: fail closed.
            None => out.push(SqlStatement::unparseable(q, true)),
        }
        return;
    }
    let mut tmp = Vec::new();
    analyze_piece(q, &select, depth, true, &mut tmp);
    if let Some(first) = tmp.first_mut() {
        // The wrapping SELECT is ours, not the body's.
        first.verb.clear();
    }
    let keep_first = tmp
        .first()
        .is_some_and(|s| s.unparseable || !s.tables.is_empty() || !s.functions.is_empty());
    out.extend(
        tmp.into_iter()
            .enumerate()
            .filter_map(|(i, s)| (i > 0 || keep_first).then_some(s)),
    );
}

/// The value of `SELECT '<string>'`, when the text is exactly that.
fn string_constant(select: &str) -> Option<String> {
    let tree = parse_once(select)?;
    let [raw] = tree.stmts.as_slice() else {
        return None;
    };
    let Some(N::SelectStmt(s)) = raw.stmt.as_ref().and_then(|n| n.node.as_ref()) else {
        return None;
    };
    let [target] = s.target_list.as_slice() else {
        return None;
    };
    let Some(N::ResTarget(t)) = &target.node else {
        return None;
    };
    match inner(&t.val) {
        Some(N::AConst(c)) => match &c.val {
            Some(protobuf::a_const::Val::Sval(s)) => Some(s.sval.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// Rewrites `COLLATE [schema.]default` to `COLLATE [schema.]"default"` (psql `\d` output);
/// `None` when there is nothing to rewrite.
pub(crate) fn rewrite_collate_default(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let mut out = String::with_capacity(text.len() + 8);
    let mut copied = 0;
    let mut changed = false;
    let mut from = 0;
    while let Some(p) = lower[from..].find("collate") {
        let at = from + p;
        from = at + "collate".len();
        if at > 0 && is_word(bytes[at - 1]) || bytes.get(from).is_some_and(|&b| is_word(b)) {
            continue;
        }
        let mut i = skip_ws(bytes, from);
        // Optional `schema.` qualifier (unquoted or quoted).
        let name_start = i;
        if bytes.get(i) == Some(&b'"') {
            i = bytes[i + 1..]
                .iter()
                .position(|&b| b == b'"')
                .map_or(bytes.len(), |q| i + 1 + q + 1);
        } else {
            while bytes.get(i).is_some_and(|&b| is_word(b)) {
                i += 1;
            }
        }
        let j = skip_ws(bytes, i);
        let target = if bytes.get(j) == Some(&b'.') {
            skip_ws(bytes, j + 1)
        } else {
            name_start
        };
        let end = target + "default".len();
        if lower.get(target..end) == Some("default") && !bytes.get(end).is_some_and(|&b| is_word(b))
        {
            out.push_str(&text[copied..target]);
            out.push_str("\"default\"");
            copied = end;
            changed = true;
            from = end;
        }
    }
    if !changed {
        return None;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_piece_that_parses_to_two_statements_fails_closed() {
        // The splitter never hands over such a piece on its own; if it misread the text it
        // would, and neither path may then report the first statement's verb for both.
        let mut out = Vec::new();
        analyze_piece(
            "select 1; drop table t",
            "select 1; drop table t",
            0,
            false,
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert!(out[0].unparseable);
        assert!(summarize("select 1; delete from t").is_none());
        assert!(summarize("select 1").is_some());
    }
}
