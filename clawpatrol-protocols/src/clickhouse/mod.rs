//! ClickHouse SQL facts with `sqlparser`'s ClickHouse dialect (reference §3.4–3.5).
//!
//! Before parsing, everything from the first whitespace-preceded `SETTINGS ` to the end, or a
//! trailing `FORMAT <name>`, is stripped (case-insensitive); the statement keeps the original
//! text. A parse error or zero statements is unparseable. Multi-statement text: the verb of
//! the first statement, tables and functions unioned.
//!
//! # Deviations from the original's parser (AfterShip `clickhouse-sql-parser`)
//!
//! | input | original | here |
//! |---|---|---|
//! | `SYSTEM …`, `CHECK TABLE …` | verbs `system`, `check` | sqlparser refuses them: unparseable (fail closed) |
//! | statements outside the verb table (e.g. `KILL`, `ATTACH`) | first CamelCase word of the Go AST type | the explicit table below, `""` when absent |
//! | `REVOKE` | AST-type word | `revoke` |
//! | `DESCRIBE t` / `DESC t` | `describe` | `describe` (`EXPLAIN` form: `explain`) |
//! | `WITH … SELECT` | `select` | `select` (sqlparser folds WITH into the query) |
//! | table functions (`numbers(10)`, `remote(…)`) | tables in some positions | functions, never tables |
//! | CTE names referenced in FROM | tables | not tables (removed when unqualified) |
//! | ClickHouse-only syntax sqlparser lacks (`ARRAY JOIN` variants, `LIMIT BY`, dictionary DDL …) | parsed | may be unparseable (fail closed) |
//! | `ALTER TABLE t DELETE/UPDATE …`, `KILL QUERY …` | `alter`, `kill` | unparseable (fail closed) |
//! | `ARRAY JOIN arr` | `arr` is a column | `arr` is reported as a table (over-reports, never hides) |
//! | `COPY`, `DROP a, b`, `GRANT … ON t`, `OPTIMIZE TABLE t` targets | tables | tables (added per statement: the visitor misses them) |

pub mod native;

use std::collections::HashSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    CopySource, DescribeAlias, Expr, GrantObjects, ObjectName, ObjectType, Query, Statement,
    TableFactor, Use, Visit, Visitor,
};
use sqlparser::dialect::ClickHouseDialect;
use sqlparser::parser::Parser;

use crate::sql::SqlStatement;

/// Analyses one ClickHouse query text into the facts of one statement.
pub fn analyze_clickhouse(text: &str) -> SqlStatement {
    let stripped = strip_settings_and_format(text);
    let statements = match Parser::parse_sql(&ClickHouseDialect {}, stripped) {
        Ok(s) if !s.is_empty() => s,
        _ => return SqlStatement::unparseable(text, false),
    };
    let mut names = Names::default();
    for s in &statements {
        let _ = s.visit(&mut names);
        statement_tables(s, &mut names);
    }
    let verb = statements.first().map_or("", clickhouse_verb);
    names.finish(text, verb)
}

/// The database a `USE db` text moves the session to (the first statement), if it is one.
pub fn use_database(text: &str) -> Option<String> {
    let stripped = strip_settings_and_format(text);
    let statements = Parser::parse_sql(&ClickHouseDialect {}, stripped).ok()?;
    match statements.first()? {
        Statement::Use(Use::Object(name) | Use::Database(name) | Use::Schema(name)) => {
            Some(render(name))
        }
        _ => None,
    }
}

/// The session database after a query was allowed and forwarded: `USE db` moves it, any
/// other query keeps `current`.
pub fn database_after(current: &str, allowed_text: &str) -> String {
    use_database(allowed_text).unwrap_or_else(|| current.to_string())
}

/// The verb of a parsed ClickHouse statement (explicit table; `""` when absent).
pub fn clickhouse_verb(s: &Statement) -> &'static str {
    match s {
        Statement::Query(_) => "select",
        Statement::Insert(_) => "insert",
        Statement::Update(_) => "update",
        Statement::Delete(_) => "delete",
        Statement::Drop { .. }
        | Statement::DropFunction(_)
        | Statement::DropDomain(_)
        | Statement::DropProcedure { .. }
        | Statement::DropPolicy(_)
        | Statement::DropTrigger(_)
        | Statement::DropExtension(_) => "drop",
        Statement::Use(_) => "use",
        Statement::Set(_) => "set",
        Statement::OptimizeTable { .. } => "optimize",
        Statement::RenameTable(_) => "rename",
        Statement::Explain { .. } => "explain",
        Statement::ExplainTable { describe_alias, .. } => match describe_alias {
            DescribeAlias::Explain => "explain",
            DescribeAlias::Describe | DescribeAlias::Desc => "describe",
        },
        Statement::ShowFunctions { .. }
        | Statement::ShowVariable { .. }
        | Statement::ShowStatus { .. }
        | Statement::ShowVariables { .. }
        | Statement::ShowCreate { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowCatalogs { .. }
        | Statement::ShowDatabases { .. }
        | Statement::ShowProcessList { .. }
        | Statement::ShowSchemas { .. }
        | Statement::ShowCharset(_)
        | Statement::ShowObjects(_)
        | Statement::ShowTables { .. }
        | Statement::ShowViews { .. }
        | Statement::ShowCollation { .. } => "show",
        Statement::Grant(_) => "grant",
        Statement::Revoke(_) => "revoke",
        Statement::AlterTable(_)
        | Statement::AlterView { .. }
        | Statement::AlterIndex { .. }
        | Statement::AlterRole { .. }
        | Statement::AlterUser(_)
        | Statement::AlterSchema(_)
        | Statement::AlterFunction(_)
        | Statement::AlterPolicy(_) => "alter",
        Statement::CreateTable(_)
        | Statement::CreateView(_)
        | Statement::CreateDatabase { .. }
        | Statement::CreateSchema { .. }
        | Statement::CreateIndex(_)
        | Statement::CreateFunction(_)
        | Statement::CreateRole(_)
        | Statement::CreateUser(_)
        | Statement::CreatePolicy(_)
        | Statement::CreateSequence { .. }
        | Statement::CreateTrigger(_)
        | Statement::CreateType { .. } => "create",
        Statement::Truncate(_) => "truncate",
        Statement::Kill { .. } => "kill",
        Statement::Copy { .. } => "copy",
        Statement::Analyze(_) => "analyze",
        Statement::StartTransaction { .. } => "begin",
        Statement::Commit { .. } => "commit",
        Statement::Rollback { .. } => "rollback",
        Statement::Comment { .. } => "comment",
        Statement::Call(_) => "call",
        _ => "",
    }
}

/// Every verb [`clickhouse_verb`] can produce (besides `""`), sorted: a rule comparing
/// `sql.verb` with anything else can never match on ClickHouse.
pub const CLICKHOUSE_VERBS: &[&str] = &[
    "alter", "analyze", "begin", "call", "comment", "commit", "copy", "create", "delete",
    "describe", "drop", "explain", "grant", "insert", "kill", "optimize", "rename", "revoke",
    "rollback", "select", "set", "show", "truncate", "update", "use",
];

#[cfg(test)]
mod vocabulary_tests {
    use super::CLICKHOUSE_VERBS;

    /// Each string literal the verb table returns is listed (read from this file's source).
    #[test]
    fn every_verb_of_the_table_is_listed() {
        let src = include_str!("mod.rs");
        let start = src.find("pub fn clickhouse_verb").unwrap_or(0);
        let end = src[start..].find("\n}\n").map_or(src.len(), |e| start + e);
        for line in src[start..end].lines().filter(|l| l.contains("=> \"")) {
            let verb = line
                .split("=> \"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("");
            assert!(
                verb.is_empty() || CLICKHOUSE_VERBS.contains(&verb),
                "{verb} missing"
            );
        }
    }
}

/// Strips a whitespace-preceded `SETTINGS …` tail, else a trailing `FORMAT <name>`.
pub fn strip_settings_and_format(text: &str) -> &str {
    let lower = text.to_ascii_lowercase();
    let b = lower.as_bytes();
    let mut from = 0;
    while let Some(p) = lower[from..].find("settings") {
        let at = from + p;
        from = at + "settings".len();
        let before = at > 0 && b[at - 1].is_ascii_whitespace();
        let after = b.get(from).is_some_and(u8::is_ascii_whitespace);
        if before && after {
            return &text[..at];
        }
    }
    // Trailing `FORMAT <name>` (an optional `;` after it).
    let trimmed = lower.trim_end().trim_end_matches(';').trim_end();
    let name_start = trimmed
        .char_indices()
        .rev()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
        .map_or(0, |(i, c)| i + c.len_utf8());
    if name_start == trimmed.len() || name_start == 0 {
        return text;
    }
    let head = &trimmed[..name_start];
    if !head.ends_with(|c: char| c.is_ascii_whitespace()) {
        return text;
    }
    let head = head.trim_end();
    if let Some(kw) = head.strip_suffix("format") {
        if kw.ends_with(|c: char| c.is_ascii_whitespace()) {
            return &text[..kw.len()];
        }
    }
    text
}

/// `db.table` (last two parts) or `table`, lower-cased.
fn render(name: &ObjectName) -> String {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| match p.as_ident() {
            Some(i) => i.value.clone(),
            None => p.to_string(),
        })
        .collect();
    let start = parts.len().saturating_sub(2);
    parts[start..].join(".").to_lowercase()
}

#[derive(Default)]
struct Names {
    tables: Vec<String>,
    functions: Vec<String>,
    ctes: HashSet<String>,
    /// A table-function name whose `visit_relation` call is next and must be skipped.
    skip_relation: Option<ObjectName>,
}

impl Names {
    fn finish(mut self, text: &str, verb: &str) -> SqlStatement {
        let ctes = std::mem::take(&mut self.ctes);
        self.tables.retain(|t| !ctes.contains(t));
        self.tables.sort_unstable();
        self.tables.dedup();
        self.functions.sort_unstable();
        self.functions.dedup();
        SqlStatement {
            statement: text.to_string(),
            verb: verb.to_string(),
            tables: self.tables,
            functions: self.functions,
            unparseable: false,
            shadow: false,
        }
    }
}

impl Visitor for Names {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.ctes.insert(cte.alias.name.value.to_lowercase());
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, tf: &TableFactor) -> ControlFlow<()> {
        match tf {
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            } => {
                self.functions.push(render_function(name));
                self.skip_relation = Some(name.clone());
            }
            TableFactor::Function { name, .. } => self.functions.push(render_function(name)),
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        if self.skip_relation.as_ref() == Some(relation) {
            self.skip_relation = None;
        } else {
            self.tables.push(render(relation));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = expr {
            self.functions.push(render_function(&f.name));
        }
        ControlFlow::Continue(())
    }
}

fn render_function(name: &ObjectName) -> String {
    name.0
        .iter()
        .map(|p| match p.as_ident() {
            Some(i) => i.value.clone(),
            None => p.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
        .to_lowercase()
}

/// Targets the visitor does not report as relations.
fn statement_tables(s: &Statement, names: &mut Names) {
    match s {
        Statement::Copy {
            source: CopySource::Table { table_name, .. },
            ..
        } => names.tables.push(render(table_name)),
        Statement::Drop {
            object_type:
                ObjectType::Table
                | ObjectType::View
                | ObjectType::MaterializedView
                | ObjectType::Sequence,
            names: dropped,
            ..
        } => names.tables.extend(dropped.iter().map(render)),
        Statement::Grant(g) => grant_tables(g.objects.as_ref(), names),
        Statement::Revoke(r) => grant_tables(r.objects.as_ref(), names),
        Statement::OptimizeTable { name, .. } => names.tables.push(render(name)),
        Statement::RenameTable(r) => {
            for t in r {
                names.tables.push(render(&t.old_name));
                names.tables.push(render(&t.new_name));
            }
        }
        _ => {}
    }
}

fn grant_tables(objects: Option<&GrantObjects>, names: &mut Names) {
    if let Some(GrantObjects::Tables(t) | GrantObjects::Views(t) | GrantObjects::Sequences(t)) =
        objects
    {
        names.tables.extend(t.iter().map(render));
    }
}

#[cfg(test)]
mod tests {
    use super::strip_settings_and_format as strip;

    #[test]
    fn strips_settings_and_format() {
        assert_eq!(strip("SELECT 1 SETTINGS max_threads=1"), "SELECT 1 ");
        assert_eq!(strip("select 1\nsettings a=1 format JSON"), "select 1\n");
        assert_eq!(
            strip("SELECT * FROM t FORMAT JSONEachRow"),
            "SELECT * FROM t "
        );
        assert_eq!(strip("SELECT * FROM t format TSV;"), "SELECT * FROM t ");
        assert_eq!(strip("SELECT format FROM t"), "SELECT format FROM t");
        // As the original: a column named `settings` cuts the text too (it then fails closed).
        assert_eq!(strip("SELECT settings FROM t"), "SELECT ");
        assert_eq!(
            strip("SELECT t.settings FROM t"),
            "SELECT t.settings FROM t"
        );
        assert_eq!(strip("SELECT 1"), "SELECT 1");
        assert_eq!(strip("JSON"), "JSON");
        assert_eq!(
            strip("select 1 format\u{1e94b}x"),
            "select 1 format\u{1e94b}x"
        );
        assert_eq!(strip("\u{1e94b}"), "\u{1e94b}");
    }
}
