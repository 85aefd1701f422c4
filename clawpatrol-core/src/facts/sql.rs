//! SQL statement facts (`sql.*`, reference §2.3 and §3.3–3.5).

use serde::{Deserialize, Serialize};

/// The facts of one SQL statement.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlFacts {
    /// The raw statement text, as sent.
    #[serde(default)]
    pub statement: String,
    /// The statement verb, lower-cased.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub verb: String,
    /// Referenced tables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<String>,
    /// Called functions, lower-cased.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub functions: Vec<String>,
    /// The session database.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub database: String,
}

impl SqlFacts {
    /// Normalises case rules (verb and functions are lower-cased).
    pub fn normalized(mut self) -> SqlFacts {
        self.verb.make_ascii_lowercase();
        for f in &mut self.functions {
            f.make_ascii_lowercase();
        }
        self
    }
}
