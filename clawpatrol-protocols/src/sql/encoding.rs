//! Which client encodings the gateway can read, and which statements may switch the session
//! to another one.
//!
//! The gateway reads statements as UTF-8. The server reads them in the session's
//! `client_encoding`. In the client-only encodings (SJIS, BIG5, GBK, UHC, GB18030, JOHAB, …)
//! the second byte of a character can be an ASCII byte such as `\`: the UTF-8 text
//! `E'Ё\' ; DROP TABLE t; --'` is one SELECT to the gateway and a SELECT plus a DROP to a
//! server reading SJIS. Sessions therefore stay in UTF-8 (or SQL_ASCII over a UTF-8 or
//! SQL_ASCII database, which the server reads byte for byte as UTF-8).

use pg_query::protobuf::node::Node as N;
use pg_query::protobuf::{self, VariableSetKind};
use serde_json::Value;

use super::postgres::parse;

/// Why a statement that could not be checked is refused.
const UNREAD: &str = "the statement could not be read to check that it keeps client_encoding UTF8";

/// An encoding name as the server compares it: alphanumerics only, lower-cased
/// (`UTF-8`, `utf_8` and `Utf8` are the same name).
fn clean(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// True when the server reads text sent in `client_encoding` exactly as the gateway reads it
/// (UTF-8), on a database whose encoding is `server_encoding`.
pub fn postgres_encoding_readable(client_encoding: &str, server_encoding: &str) -> bool {
    match clean(client_encoding).as_str() {
        "utf8" | "unicode" => true,
        // No conversion: the server reads the bytes in the database encoding.
        "sqlascii" => matches!(
            clean(server_encoding).as_str(),
            "utf8" | "unicode" | "sqlascii"
        ),
        _ => false,
    }
}

/// Why running `statement` (one statement, or the expression of a PL/pgSQL body) may leave
/// the session in a client encoding the gateway cannot read; `None` when it cannot.
///
/// Caught: `SET [SESSION|LOCAL] client_encoding` and `SET NAMES` to a value other than
/// UTF-8 (`DEFAULT` and `RESET` return to the session's start value, which the gateway
/// checked), and any `set_config` call unless its setting name is a constant other than
/// `client_encoding` or its value a constant UTF-8 name. A text that does not parse is
/// refused (fail closed).
pub fn postgres_encoding_change(statement: &str, server_encoding: &str) -> Option<String> {
    let tree = match parse(statement) {
        Some((tree, _)) => tree,
        None => match parse(&format!("SELECT {statement}")) {
            Some((tree, _)) => tree,
            None => return Some(UNREAD.to_string()),
        },
    };
    for raw in &tree.stmts {
        if let Some(N::VariableSetStmt(s)) = raw.stmt.as_ref().and_then(|n| n.node.as_ref()) {
            if let Some(why) = set_statement(s, server_encoding) {
                return Some(why);
            }
        }
    }
    let json = match serde_json::to_value(&tree) {
        Ok(v) => v,
        Err(_) => return Some(UNREAD.to_string()),
    };
    set_config_calls(&json, server_encoding)
}

/// A top-level `SET`/`RESET` of `client_encoding`.
fn set_statement(s: &protobuf::VariableSetStmt, server_encoding: &str) -> Option<String> {
    if !s.name.eq_ignore_ascii_case("client_encoding") {
        return None;
    }
    match VariableSetKind::try_from(s.kind) {
        Ok(VariableSetKind::VarSetDefault | VariableSetKind::VarReset) => None,
        Ok(VariableSetKind::VarSetValue) => match s.args.as_slice() {
            [arg] => match arg.node.as_ref().and_then(string_constant) {
                Some(v) if postgres_encoding_readable(&v, server_encoding) => None,
                Some(v) => Some(unreadable(&v)),
                None => Some(unreadable("a value that is not a constant")),
            },
            _ => Some(unreadable("a value that is not a constant")),
        },
        _ => Some(unreadable("a value that is not a constant")),
    }
}

/// The string of a constant node (`'x'` or a bare word, which the parser makes a string).
fn string_constant(n: &N) -> Option<String> {
    match n {
        N::AConst(c) => match &c.val {
            Some(protobuf::a_const::Val::Sval(s)) => Some(s.sval.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// Walks the serialised tree for `set_config` calls that may change `client_encoding`.
fn set_config_calls(v: &Value, server_encoding: &str) -> Option<String> {
    match v {
        Value::Object(m) => {
            if let Some(call) = m.get("FuncCall") {
                if let Some(why) = set_config_call(call, server_encoding) {
                    return Some(why);
                }
            }
            m.values()
                .find_map(|child| set_config_calls(child, server_encoding))
        }
        Value::Array(a) => a
            .iter()
            .find_map(|child| set_config_calls(child, server_encoding)),
        _ => None,
    }
}

/// One serialised `FuncCall`: `None` unless it is a `set_config` that may change the
/// client encoding.
fn set_config_call(call: &Value, server_encoding: &str) -> Option<String> {
    let node = |v: &Value, kind: &str| v.get("node").and_then(|n| n.get(kind)).cloned();
    let name_part = call
        .get("funcname")
        .and_then(Value::as_array)
        .and_then(|parts| parts.last())
        .and_then(|p| node(p, "String"))
        .and_then(|s| s.get("sval").and_then(Value::as_str).map(str::to_string));
    if !name_part.is_some_and(|n| n.eq_ignore_ascii_case("set_config")) {
        return None;
    }
    let args = call.get("args").and_then(Value::as_array);
    let arg = |i: usize| {
        args.and_then(|a| a.get(i))
            .and_then(|a| node(a, "AConst"))
            .and_then(|c| {
                c.get("val")
                    .and_then(|v| v.get("Sval"))
                    .and_then(|s| s.get("sval"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
    };
    match arg(0) {
        Some(name) if !name.eq_ignore_ascii_case("client_encoding") => None,
        Some(_) => match arg(1) {
            Some(v) if postgres_encoding_readable(&v, server_encoding) => None,
            Some(v) => Some(unreadable(&v)),
            None => Some(unreadable("a value that is not a constant")),
        },
        None => Some(
            "set_config with a setting name that is not a constant may change client_encoding, \
             which the gateway must keep readable (UTF8)"
                .into(),
        ),
    }
}

fn unreadable(value: &str) -> String {
    format!(
        "client_encoding cannot be set to {value} through the gateway: it reads statements as \
         UTF-8, so the session must stay in UTF8"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_encodings() {
        for e in ["UTF8", "utf-8", "Unicode", "UTF_8"] {
            assert!(postgres_encoding_readable(e, "LATIN1"), "{e}");
        }
        assert!(postgres_encoding_readable("SQL_ASCII", "UTF8"));
        assert!(postgres_encoding_readable("sql-ascii", "SQL_ASCII"));
        assert!(!postgres_encoding_readable("SQL_ASCII", "EUC_JP"));
        for e in [
            "SJIS",
            "Shift_JIS",
            "MSKANJI",
            "WIN932",
            "BIG5",
            "GBK",
            "WIN936",
            "UHC",
            "GB18030",
            "JOHAB",
            "SHIFT_JIS_2004",
            "LATIN1",
            "EUC_JP",
            "",
            "auto",
        ] {
            assert!(!postgres_encoding_readable(e, "UTF8"), "{e}");
        }
    }

    #[test]
    fn set_statements() {
        let changes = |s: &str| postgres_encoding_change(s, "UTF8");
        for s in [
            "SET client_encoding TO 'SJIS'",
            "SET client_encoding = sjis",
            "set CLIENT_ENCODING to 'big5'",
            r#"SET "client_encoding" TO 'GBK'"#,
            r#"SET U&"client\005fencoding" TO 'GBK'"#,
            "SET SESSION client_encoding TO 'UHC'",
            "SET LOCAL client_encoding TO 'GB18030'",
            "SET NAMES 'JOHAB'",
            "SET NAMES win932",
            "SET client_encoding TO E'\\x53JIS'",
            "SET client_encoding = 6",
        ] {
            let why = changes(s).unwrap_or_else(|| panic!("{s} allowed"));
            assert!(why.contains("client_encoding"), "{why}");
        }
        for s in [
            "SET client_encoding TO 'UTF8'",
            "SET NAMES 'utf-8'",
            "SET client_encoding TO DEFAULT",
            "RESET client_encoding",
            "RESET ALL",
            "SET search_path TO 'sjis'",
            "SET datestyle = 'ISO, MDY'",
            "SHOW client_encoding",
            "ALTER ROLE app SET client_encoding = 'SJIS'",
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql SET client_encoding = 'SJIS' AS 'SELECT 1'",
            "SELECT current_setting('client_encoding')",
        ] {
            assert_eq!(changes(s), None, "{s}");
        }
        assert_eq!(
            postgres_encoding_change("SET client_encoding TO 'SQL_ASCII'", "UTF8"),
            None
        );
        assert!(postgres_encoding_change("SET client_encoding TO 'SQL_ASCII'", "EUC_KR").is_some());
    }

    #[test]
    fn set_config_calls() {
        let changes = |s: &str| postgres_encoding_change(s, "UTF8");
        for s in [
            "SELECT set_config('client_encoding', 'SJIS', false)",
            "SELECT pg_catalog.set_config('CLIENT_ENCODING', 'BIG5', true)",
            "SELECT set_config(name, 'SJIS', false) FROM settings",
            "SELECT set_config('client_encoding', v, false) FROM settings",
            "SELECT set_config(setting_name => 'client_encoding', new_value => 'SJIS', is_local => false)",
            "SELECT 1 WHERE set_config('client_' || 'encoding', 'GBK', false) IS NOT NULL",
            "SELECT * FROM (SELECT SET_CONFIG('client_encoding', 'UHC', false)) s",
            // The expression of a PL/pgSQL assignment, as a DO body's shadow statement holds it.
            "set_config('client_encoding', 'SJIS', false)",
        ] {
            assert!(changes(s).is_some(), "{s} allowed");
        }
        for s in [
            "SELECT set_config('client_encoding', 'UTF8', false)",
            "SELECT set_config('search_path', 'public', false)",
            "SELECT set_config('application_name', v, false) FROM t",
            "SELECT now()",
        ] {
            assert_eq!(changes(s), None, "{s}");
        }
        assert!(changes("SELECT set_config(").is_some());
    }
}
