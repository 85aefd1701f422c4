//! Qualified column references (`u.id`) for the summary fast path.
//!
//! `x.name` calls `name(x)` when `x` has no column `name` (attribute notation), so the full
//! walk lists the last part of every qualified column reference as a function (`walk.rs`).
//! libpg_query's summary does not report column references, so the fast path reads them
//! from the text: each dotted name that is not followed by `(` (a call) and is not one of the
//! summary's tables in a table position is a column reference. Anything this lexer cannot
//! classify with certainty (a name after `::`, `AS`, `COLLATE`, `OF`, a table name seen
//! twice, a typed literal `s.t 'x'`, an INSERT or UPDATE target list, escape strings, dollar
//! quotes, Unicode escapes, over-long identifiers) sends the text to the full walk instead.

use super::split::{closed_block_comment, closed_quoted, is_ident_byte, skip_line_comment};
use super::text_sql::MAX_IDENTIFIER;

/// One token of the text, as far as this reader needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// An identifier or keyword: unquoted ones lower-cased.
    Word {
        text: String,
        quoted: bool,
    },
    Dot,
    LParen,
    /// `::`
    Cast,
    /// Anything else (operators, commas, literals, numbers, parameters).
    Other(u8),
}

/// The tokens of `text`, or `None` when it holds something read only by the full parser.
fn tokens(text: &str) -> Option<Vec<Token>> {
    if text.contains('\\') {
        return None;
    }
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => i += 1,
            b'-' if bytes.get(i + 1) == Some(&b'-') => i = skip_line_comment(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = closed_block_comment(bytes, i)?,
            b'\'' => {
                i = closed_quoted(bytes, i, b'\'')?;
                out.push(Token::Other(b'\''));
            }
            b'"' => {
                let end = closed_quoted(bytes, i, b'"')?;
                let inner = text.get(i + 1..end - 1)?.replace("\"\"", "\"");
                if inner.is_empty() || inner.len() > MAX_IDENTIFIER {
                    return None;
                }
                out.push(Token::Word {
                    text: inner,
                    quoted: true,
                });
                i = end;
            }
            b'$' => {
                // Only `$n` parameters; dollar quotes take the full walk.
                let mut j = i + 1;
                while bytes.get(j).is_some_and(u8::is_ascii_digit) {
                    j += 1;
                }
                if j == i + 1 || bytes.get(j).is_some_and(|&c| is_word_byte(c)) {
                    return None;
                }
                out.push(Token::Other(b'$'));
                i = j;
            }
            b'0'..=b'9' => {
                // Numbers (`1.5e3`, `0x1f`) never hold a name.
                while bytes.get(i).is_some_and(|&c| is_word_byte(c) || c == b'.') {
                    i += 1;
                }
                out.push(Token::Other(b'0'));
            }
            b'.' => {
                if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
                    return None;
                }
                out.push(Token::Dot);
                i += 1;
            }
            b'(' => {
                out.push(Token::LParen);
                i += 1;
            }
            b':' if bytes.get(i + 1) == Some(&b':') => {
                out.push(Token::Cast);
                i += 2;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let start = i;
                while bytes.get(i).is_some_and(|&c| is_word_byte(c)) {
                    i += 1;
                }
                // `U&'…'` / `U&"…"`: Unicode escapes.
                if bytes.get(i) == Some(&b'&') {
                    return None;
                }
                let word = text.get(start..i)?;
                // `E'…'`, `B'…'`, `X'…'`, `N'…'`: one literal, not a name and a string.
                if bytes.get(i) == Some(&b'\'')
                    && matches!(
                        word.as_bytes(),
                        [b'e' | b'E' | b'b' | b'B' | b'x' | b'X' | b'n' | b'N']
                    )
                {
                    i = closed_quoted(bytes, i, b'\'')?;
                    out.push(Token::Other(b'\''));
                    continue;
                }
                if word.len() > MAX_IDENTIFIER {
                    return None;
                }
                out.push(Token::Word {
                    text: word.to_ascii_lowercase(),
                    quoted: false,
                });
            }
            other => {
                out.push(Token::Other(other));
                i += 1;
            }
        }
    }
    Some(out)
}

/// A byte of an unquoted identifier (`$` allowed after the first).
fn is_word_byte(c: u8) -> bool {
    is_ident_byte(c) || c == b'$'
}

/// True when `t` is the unquoted keyword `kw`.
fn is_keyword(t: Option<&Token>, kw: &[&str]) -> bool {
    matches!(t, Some(Token::Word { text, quoted: false }) if kw.contains(&text.as_str()))
}

/// The last part of every qualified column reference in `piece` (a plain DML statement the
/// summary read, with `tables` as `(schema, table)` pairs; `modifies` when it is an INSERT or
/// UPDATE), or `None` when the text must take the full walk.
pub(super) fn column_functions(
    piece: &str,
    tables: &[(String, String)],
    modifies: bool,
) -> Option<Vec<String>> {
    if !piece.contains('.') {
        return Some(Vec::new());
    }
    let toks = tokens(piece)?;
    let mut out = Vec::new();
    let mut table_chains: Vec<Vec<String>> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let Some(Token::Word { .. }) = toks.get(i) else {
            i += 1;
            continue;
        };
        // A maximal chain `a.b[.c…]` starting at i.
        let mut parts = Vec::new();
        let mut j = i;
        while let Some(Token::Word { text, .. }) = toks.get(j) {
            parts.push(text.clone());
            if toks.get(j + 1) == Some(&Token::Dot) {
                match toks.get(j + 2) {
                    Some(Token::Word { .. }) => j += 2,
                    // `t.*` and other forms: no name after the dot.
                    _ => {
                        j += 1;
                        break;
                    }
                }
            } else {
                break;
            }
        }
        let next = j + 1;
        if parts.len() < 2 {
            // A lone word, or `x.*`: nothing to list.
            i = next;
            continue;
        }
        let before = i.checked_sub(1).and_then(|k| toks.get(k));
        if toks.get(next) == Some(&Token::LParen) {
            // A call of a qualified function: the summary lists it.
            i = next;
            continue;
        }
        let [.., schema, table] = parts.as_slice() else {
            return None;
        };
        let is_table = tables.iter().any(|(s, t)| s == schema && t == table);
        let table_position = is_keyword(
            before,
            &["from", "join", "into", "update", "only", "table", "using"],
        ) || before == Some(&Token::Other(b','));
        if is_table && table_position {
            if table_chains.contains(&parts) {
                return None;
            }
            table_chains.push(parts);
            i = next;
            continue;
        }
        // `s.t 'x'` is a typed literal: `s.t` names a type there.
        if is_table
            || toks.get(next) == Some(&Token::Other(b'\''))
            || before == Some(&Token::Cast)
            || is_keyword(
                before,
                &[
                    "from", "join", "into", "update", "only", "table", "using", "as", "collate",
                    "of", "set",
                ],
            )
            || modifies
        {
            return None;
        }
        out.push(table.clone());
        i = next;
    }
    // A table name that also appears as a column reference elsewhere is ambiguous.
    for chain in &table_chains {
        let n = toks
            .windows(3)
            .filter(|w| {
                matches!((&w[0], &w[1], &w[2]),
                    (Token::Word { text: a, .. }, Token::Dot, Token::Word { text: b, .. })
                        if chain.len() >= 2 && a == &chain[chain.len() - 2] && b == &chain[chain.len() - 1])
            })
            .count();
        if n > 1 {
            return None;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(s, t)| (s.to_string(), t.to_string()))
            .collect()
    }

    #[test]
    fn column_references_are_listed_and_tables_skipped() {
        let tables = t(&[("public", "users"), ("", "orders")]);
        assert_eq!(
            column_functions(
                "SELECT u.id, \"U\".\"Email\", o.* FROM public.users u JOIN orders o ON o.user_id = u.id AND pg_catalog.now() > o.ts",
                &tables,
                false
            ),
            Some(vec![
                "id".to_string(),
                "Email".to_string(),
                "user_id".to_string(),
                "id".to_string(),
                "ts".to_string()
            ])
        );
        assert_eq!(
            column_functions(
                "SELECT 1.5, 'a.b', \"x.y\" -- c.d\n /* e.f */ FROM t",
                &[],
                false
            ),
            Some(vec![])
        );
    }

    #[test]
    fn unclear_texts_take_the_full_walk() {
        let tables = t(&[("s", "t")]);
        for text in [
            "SELECT x::pg_catalog.int4 FROM t",
            "SELECT CAST(x AS s.ty) FROM t",
            "SELECT x COLLATE pg_catalog.\"C\" FROM t",
            "SELECT x FROM s.t FOR UPDATE OF s.t",
            "SELECT s.t FROM s.t",
            "SELECT extract(year FROM s.t) FROM s.t",
            "UPDATE t SET c = u.x FROM u",
            "SELECT $$a.b$$ FROM t",
            "SELECT E'\\'', a.b FROM t",
            "SELECT U&\"a\", a.b FROM t",
            "SELECT x.y FROM s.unknown",
            // A typed literal names a type (found by the sql_postgres fuzz target).
            "SELECT s.mytype '1' FROM t",
            // With a prefixed string too (found by the fuzz target).
            "SELECT w(7, s.mytype e'x') FROM t",
        ] {
            let got = column_functions(text, &tables, text.starts_with("UPDATE"));
            assert_eq!(got, None, "{text}");
        }
    }
}
