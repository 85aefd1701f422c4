//! Statement shapes: a Postgres text with its plain integer literals (up to nine digits)
//! blanked out. Two texts of the same shape differ only in the values of integer constants,
//! all lexed as the same 32-bit integer token, so they parse to the same tree but for those
//! values, and a value never changes a statement's verb, tables or functions.
//! [`PostgresCache`] therefore reuses one analysis for all of them (an agent's
//! `… WHERE id = 42` is parsed once, not once per id). The one thing a value can change is
//! whether the grammar accepts the text at all (`float(0)` is refused, `float(5)` is not):
//! such a text gets the facts of its shape, which are the facts of its tree.
//!
//! The scanner vouches for a text only where its reading cannot differ from the server's:
//! it gives up (no shape, so no reuse) on any backslash (escape strings), any `$` that is not
//! a `$n` parameter (dollar quotes, `$` in identifiers) and texts over [`MAX_SHAPED`] bytes.
//! Digits inside strings, quoted identifiers and comments stay as they are, and so do digit
//! runs that touch a letter, `_`, `.` or `$` (`t1`, `1.5`, `1e3`, `0x1f`, `1_000`, `$1`) or
//! may be a signed exponent (`1e-5`).

use std::collections::HashMap;
use std::ops::Range;

use super::postgres::analyze_postgres;
use super::split::{closed_block_comment, closed_quoted, skip_line_comment, split_postgres};
use super::SqlStatement;

/// The longest text the scanner shapes, in bytes; longer texts are analysed every time.
pub const MAX_SHAPED: usize = 2048;
/// The most shapes a [`PostgresCache`] remembers; when full it starts over.
pub const MAX_SHAPES: usize = 512;

/// The longest digit run blanked out: nine digits always fit the grammar's 32-bit integer
/// token, so every blanked literal is the same kind of token whatever its value.
const MAX_DIGITS: usize = 9;
/// What a digit run is replaced with in a shape.
const BLANK: &str = "0";

/// The byte ranges of the integer literals [`postgres_shape`] blanks out, in order; `None`
/// when the text is not shaped (see the module docs).
pub fn postgres_integer_literals(text: &str) -> Option<Vec<Range<usize>>> {
    if text.len() > MAX_SHAPED || text.contains('\\') {
        return None;
    }
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' => i = closed_quoted(bytes, i, bytes[i])?,
            b'-' if bytes.get(i + 1) == Some(&b'-') => i = skip_line_comment(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = closed_block_comment(bytes, i)?,
            b'$' => {
                // Only a `$n` parameter: not after a word character, digits up to a non-word.
                if i > 0 && sticks(bytes[i - 1]) {
                    return None;
                }
                let end = digits_end(bytes, i + 1);
                if end == i + 1 || bytes.get(end).is_some_and(|&b| sticks(b)) {
                    return None;
                }
                i = end;
            }
            b'0'..=b'9' => {
                let end = digits_end(bytes, i);
                let before = i.checked_sub(1).map(|p| bytes[p]);
                let free = end - i <= MAX_DIGITS
                    && !before.is_some_and(sticks)
                    && !exponent(bytes, i)
                    && !bytes.get(end).is_some_and(|&b| sticks(b));
                if free {
                    spans.push(i..end);
                }
                i = end;
            }
            b if is_word(b) => {
                // A whole word (identifier or keyword): digits inside it are part of it.
                while i < bytes.len() && (is_word(bytes[i]) || bytes[i].is_ascii_digit()) {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    Some(spans)
}

/// The shape of `text`: its integer literals replaced by `0`; `None` when not shaped.
pub fn postgres_shape(text: &str) -> Option<String> {
    let spans = postgres_integer_literals(text)?;
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for s in spans {
        out.push_str(&text[last..s.start]);
        out.push_str(BLANK);
        last = s.end;
    }
    out.push_str(&text[last..]);
    Some(out)
}

/// Bytes that glue onto a digit run, making it part of a larger token.
fn sticks(b: u8) -> bool {
    is_word(b) || b.is_ascii_digit() || b == b'.' || b == b'$'
}

/// True when the digits at `i` may be the signed exponent of a number (`1e-5`, `2.E+3`).
fn exponent(bytes: &[u8], i: usize) -> bool {
    i >= 2 && matches!(bytes[i - 1], b'+' | b'-') && matches!(bytes[i - 2], b'e' | b'E')
}

/// Identifier bytes other than digits (non-ASCII bytes are identifier characters).
fn is_word(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn digits_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    i
}

/// The facts of an analysed single-statement shape.
#[derive(Debug, Clone)]
struct Shaped {
    verb: String,
    tables: Vec<String>,
    functions: Vec<String>,
}

/// [`analyze_postgres`] with reuse: the analysis of a single parsed statement without shadow
/// statements is remembered by the text's shape (at most [`MAX_SHAPES`]), and a later text
/// of the same shape gets the same facts without being parsed again. Everything else (more
/// than one statement, shadows, unparseable text, texts the scanner does not shape) is
/// analysed every time. The result equals `analyze_postgres(text)`, except for a text whose
/// integer value makes the grammar refuse it (see the module docs).
#[derive(Debug, Default)]
pub struct PostgresCache {
    shapes: HashMap<String, Shaped>,
    hits: u64,
    misses: u64,
}

impl PostgresCache {
    /// An empty cache.
    pub fn new() -> PostgresCache {
        PostgresCache::default()
    }

    /// The statements of `text`, as [`analyze_postgres`] gives them.
    pub fn analyze(&mut self, text: &str) -> Vec<SqlStatement> {
        let Some(shape) = postgres_shape(text) else {
            return analyze_postgres(text);
        };
        if let Some(s) = self.shapes.get(&shape) {
            // The shape fixes the split: the text is one piece, as when it was analysed.
            if let [piece] = split_postgres(text)[..] {
                self.hits += 1;
                return vec![SqlStatement {
                    statement: piece.to_string(),
                    verb: s.verb.clone(),
                    tables: s.tables.clone(),
                    functions: s.functions.clone(),
                    unparseable: false,
                    shadow: false,
                }];
            }
        }
        self.misses += 1;
        let out = analyze_postgres(text);
        if let [s] = &out[..] {
            if !s.unparseable && !s.shadow {
                if self.shapes.len() >= MAX_SHAPES {
                    self.shapes.clear();
                }
                self.shapes.insert(
                    shape,
                    Shaped {
                        verb: s.verb.clone(),
                        tables: s.tables.clone(),
                        functions: s.functions.clone(),
                    },
                );
            }
        }
        out
    }

    /// Texts answered from a remembered shape so far.
    pub fn hits(&self) -> u64 {
        self.hits
    }

    /// Texts analysed (not answered from a shape) so far, shaped texts only.
    pub fn misses(&self) -> u64 {
        self.misses
    }

    /// Shapes remembered now.
    pub fn len(&self) -> usize {
        self.shapes.len()
    }

    /// True when no shape is remembered.
    pub fn is_empty(&self) -> bool {
        self.shapes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(t: &str) -> Option<String> {
        postgres_shape(t)
    }

    #[test]
    fn blanks_free_integer_literals_only() {
        assert_eq!(
            shape("SELECT abalance FROM pgbench_accounts WHERE aid = 12345;").as_deref(),
            Some("SELECT abalance FROM pgbench_accounts WHERE aid = 0;")
        );
        assert_eq!(
            shape("select a from t1 where b in (1,22, 333) limit 5").as_deref(),
            Some("select a from t1 where b in (0,0, 0) limit 0")
        );
        // Digits glued to other characters are parts of larger tokens.
        for kept in [
            "select 1234567890",
            "select 1e-5",
            "select 2.E+3",
            "select 1.5",
            "select .5",
            "select 5.",
            "select 1e3",
            "select 0x1f",
            "select 1_000",
            "select x1",
            "select é1",
            "select 1é",
        ] {
            assert_eq!(shape(kept).as_deref(), Some(kept), "{kept}");
        }
        // Strings, quoted identifiers and comments keep their digits.
        let kept = "select 'a 1 ''2'' 3', \"c 4\" -- 5\n/* 6 /* 7 */ 8 */ from t";
        assert_eq!(shape(kept).as_deref(), Some(kept));
        assert_eq!(
            shape("select 1 -- x\r2").as_deref(),
            Some("select 0 -- x\r0")
        );
        // Parameters stay.
        assert_eq!(shape("select $1 + 2").as_deref(), Some("select $1 + 0"));
    }

    #[test]
    fn refuses_what_it_cannot_read_like_the_server() {
        for t in [
            r"select E'a\' 1'",
            "select $$ 1 $$",
            "select $x$ 1 $x$",
            "select a$1 from t",
            "select $1a",
            "select $",
            "select 'unterminated 1",
            "select \"unterminated 1",
            "select /* unterminated 1",
        ] {
            assert_eq!(shape(t), None, "{t}");
        }
        assert_eq!(shape(&format!("select {}", "1".repeat(MAX_SHAPED))), None);
    }

    #[test]
    fn cache_reuses_one_analysis_per_shape() {
        let mut c = PostgresCache::new();
        for id in [1, 22, 333, 4444] {
            let text = format!("SELECT abalance FROM pgbench_accounts WHERE aid = {id};");
            assert_eq!(c.analyze(&text), analyze_postgres(&text));
        }
        assert_eq!((c.misses(), c.hits(), c.len()), (1, 3, 1));
    }

    #[test]
    fn cache_never_reuses_multi_statement_shadowed_or_unparseable_text() {
        let mut c = PostgresCache::new();
        for text in [
            "select 1; drop table t",
            "with d as (delete from t where id = 1 returning *) select * from d",
            "select from where 1",
            "do 'begin perform 1; end'",
        ] {
            let first = c.analyze(text);
            assert_eq!(first, analyze_postgres(text));
            assert_eq!(c.analyze(text), first);
        }
        assert_eq!(c.hits(), 0);
        assert!(c.is_empty());
    }

    #[test]
    fn cache_starts_over_when_full() {
        let mut c = PostgresCache::new();
        for n in 0..=MAX_SHAPES {
            c.analyze(&format!("select a{n} from t"));
        }
        assert_eq!(c.len(), 1);
    }
}
