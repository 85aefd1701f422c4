//! The fast path of Postgres analysis: libpg_query's C-side summary instead of the full
//! protobuf parse tree, for the plain DML statements that make up most agent traffic.
//!
//! `pg_query::parse` serialises the whole tree to protobuf in C, decodes it in Rust and walks
//! it twice (once inside the binding); for a 200-character SELECT that is ~90 µs. The summary
//! walks the raw tree in C and returns only names (~10 µs). It is taken only where its facts
//! equal the full walk's, which the differential tests and the `sql_postgres` fuzz target
//! check: SELECT/INSERT/UPDATE/DELETE without any CTE (CTEs carry shadow statements and
//! summary drops CTE-named relations) and without MERGE or any utility statement (whose
//! targets summary does not see) and without a call that runs SQL or reads a table given in
//! its arguments (`query_to_xml('…')`, see `text_sql.rs`). Everything else, and any parse
//! error, takes the full path.

use super::qualified::column_functions;
use super::text_sql::{may_have_indirection, runs_text};
use super::walk::Refs;
use super::SqlStatement;

/// The verb of a summary statement type the fast path answers for; `None` for any other.
fn fast_verb(statement_type: &str) -> Option<&'static str> {
    match statement_type {
        "SelectStmt" => Some("select"),
        "InsertStmt" => Some("insert"),
        "UpdateStmt" => Some("update"),
        "DeleteStmt" => Some("delete"),
        _ => None,
    }
}

/// Facts of one piece from libpg_query's summary, or `None` when the piece needs the full
/// parse-tree walk (not plain DML, has a CTE, or does not parse).
pub(crate) fn summarize(piece: &str) -> Option<SqlStatement> {
    // The summary cannot tell one statement with a sub-SELECT from two statements. A piece
    // holds two only where the splitter read a `;` differently from the server's lexer, and
    // then it contains a `;`: such pieces take the full path, which refuses them.
    if piece.contains(';') {
        return None;
    }
    // The summary does not see calls in attribute notation on an expression, `(expr).func`
    // (see `text_sql.rs`).
    if may_have_indirection(piece) {
        return None;
    }
    // A panic inside the binding must not take the proxy down; the full path decides then.
    let summary = std::panic::catch_unwind(|| pg_query::summary(piece, -1))
        .ok()?
        .ok()?;
    let pb = &summary.protobuf;
    if !pb.cte_names.is_empty() {
        return None;
    }
    // Statement types are in walk order, the top-level statement first; every nested one
    // (sub-SELECTs, INSERT … SELECT) must be plain DML too.
    let mut verb = None;
    for t in &pb.statement_types {
        let v = fast_verb(t)?;
        verb.get_or_insert(v);
    }
    let verb = verb?;
    let mut refs = Refs::default();
    for t in &pb.tables {
        refs.add_table(&t.schema_name, &t.table_name);
    }
    for f in &pb.functions {
        // `name` is the dotted name list; it is longer than the last part exactly when the
        // call is qualified (identifiers are never empty).
        refs.add_function_names(&f.name, &f.function_name);
    }
    // `x.name` may call `name(x)`: the last part of every qualified column reference is
    // listed, as the full walk does (see `qualified.rs`).
    let pairs: Vec<(String, String)> = pb
        .tables
        .iter()
        .map(|t| (t.schema_name.clone(), t.table_name.clone()))
        .collect();
    let modifies = matches!(verb, "insert" | "update");
    for name in column_functions(piece, &pairs, modifies)? {
        refs.add_function(std::slice::from_ref(&name));
    }
    // A call that runs SQL from its arguments has shadow statements (see `text_sql.rs`).
    if refs.functions.iter().any(|f| runs_text(f)) {
        return None;
    }
    Some(SqlStatement::parsed(piece, verb, refs, false))
}
