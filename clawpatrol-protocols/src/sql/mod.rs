//! SQL facts (`sql.verb`, `sql.tables`, `sql.functions`, reference §3.3–3.5).
//!
//! Postgres text is split into statements ([`split_postgres`]), each piece is parsed with
//! `pg_query` (libpg_query, the PostgreSQL 17 grammar) and analysed: the verb from an explicit
//! node-type table ([`postgres_verb`]), tables and functions from a complete walk of the parse
//! tree, and shadow statements for data-modifying CTEs, `DO` bodies and SQL that functions
//! run from their arguments (`query_to_xml('…')`). A piece the parser
//! refuses is `unparseable`, which makes the parser-derived facts unknown (fail closed).

mod conforming;
mod database;
mod encoding;
mod plpgsql_record;
mod postgres;
mod qualified;
mod shape;
mod split;
mod summary;
mod text_sql;
mod verb;
mod walk;

pub use database::postgres_database;
pub use encoding::{postgres_encoding_change, postgres_encoding_readable};
pub use postgres::{analyze_postgres, analyze_postgres_full};
pub use shape::{postgres_integer_literals, postgres_shape, PostgresCache, MAX_SHAPED, MAX_SHAPES};
pub use split::split_postgres;
pub use verb::{postgres_verb, POSTGRES_VERBS};

pub(crate) use walk::Refs;

/// The facts of one SQL statement, as the parser derives them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SqlStatement {
    /// The statement text (a piece of the payload, or a CTE name for a CTE shadow).
    pub statement: String,
    /// The verb, lower-cased; `""` when the verb table does not name the statement.
    pub verb: String,
    /// Referenced tables: sorted, unique.
    pub tables: Vec<String>,
    /// Called functions, lower-cased: sorted, unique.
    pub functions: Vec<String>,
    /// The parser refused the statement; verb, tables and functions are then empty.
    pub unparseable: bool,
    /// An inner statement (data-modifying CTE, statement of a `DO` body) of the one before.
    pub shadow: bool,
}

impl SqlStatement {
    /// An unparseable statement.
    pub(crate) fn unparseable(statement: &str, shadow: bool) -> SqlStatement {
        SqlStatement {
            statement: statement.to_string(),
            unparseable: true,
            shadow,
            ..SqlStatement::default()
        }
    }

    /// A parsed statement with sorted, de-duplicated names.
    pub(crate) fn parsed(statement: &str, verb: &str, refs: Refs, shadow: bool) -> SqlStatement {
        let Refs {
            mut tables,
            mut functions,
        } = refs;
        tables.sort_unstable();
        tables.dedup();
        functions.sort_unstable();
        functions.dedup();
        SqlStatement {
            statement: statement.to_string(),
            verb: verb.to_string(),
            tables,
            functions,
            unparseable: false,
            shadow,
        }
    }
}
