//! Statement splitting of a Postgres query text (reference §3.3).
//!
//! The text is split on `;` at parenthesis depth 0 that is not inside a `'…'` string (with
//! `''` escapes), an `E'…'` escape string (with `\` escapes too), a `"…"` identifier (with
//! `""`), a `$tag$…$tag$` dollar quote (unterminated ⇒ the rest of the input), a `-- …` line
//! comment (ended by LF or CR, as the server's lexer ends it) or a nested `/* … */` comment. Pieces are
//! trimmed and empty pieces dropped; when none remain the whole trimmed text is one piece.

/// Splits `text` into trimmed statement pieces, in order; borrowed from `text`.
pub fn split_postgres(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut depth: usize = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' if escape_string_at(bytes, i) => i = skip_escape_string(bytes, i),
            b'\'' => i = skip_quoted(bytes, i, b'\''),
            b'"' => i = skip_quoted(bytes, i, b'"'),
            b'-' if bytes.get(i + 1) == Some(&b'-') => i = skip_line_comment(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = skip_block_comment(bytes, i),
            b'$' => i = skip_dollar(bytes, i),
            b'(' => {
                depth += 1;
                i += 1;
            }
            b')' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b';' if depth == 0 => {
                push_piece(&mut pieces, &text[start..i]);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    push_piece(&mut pieces, &text[start..]);
    if pieces.is_empty() {
        let whole = text.trim();
        if !whole.is_empty() {
            pieces.push(whole);
        }
    }
    pieces
}

fn push_piece<'a>(pieces: &mut Vec<&'a str>, piece: &'a str) {
    let piece = piece.trim();
    if !piece.is_empty() {
        pieces.push(piece);
    }
}

/// Index after a quoted run opened by `quote` at `i`; a doubled quote is an escape;
/// unterminated ⇒ end of input.
pub(super) fn skip_quoted(bytes: &[u8], i: usize, quote: u8) -> usize {
    closed_quoted(bytes, i, quote).unwrap_or(bytes.len())
}

/// [`skip_quoted`], `None` when the run is not closed.
pub(super) fn closed_quoted(bytes: &[u8], i: usize, quote: u8) -> Option<usize> {
    let mut j = i + 1;
    while j < bytes.len() {
        if bytes[j] == quote {
            if bytes.get(j + 1) == Some(&quote) {
                j += 2;
                continue;
            }
            return Some(j + 1);
        }
        j += 1;
    }
    None
}

/// Index after the `-- …` comment at `i`: the server's lexer ends it at LF or CR.
pub(super) fn skip_line_comment(bytes: &[u8], i: usize) -> usize {
    bytes[i..]
        .iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .map_or(bytes.len(), |p| i + p + 1)
}

/// True when the quote at `i` opens an escape string: `E'…'` (either case), the `E` not
/// part of a longer word.
pub(super) fn escape_string_at(bytes: &[u8], i: usize) -> bool {
    i >= 1
        && matches!(bytes[i - 1], b'e' | b'E')
        && !(i >= 2 && (is_ident_byte(bytes[i - 2]) || bytes[i - 2] == b'$'))
}

/// Index after the escape string whose quote is at `i`: a backslash escapes the next byte,
/// and a doubled quote is a quote.
pub(super) fn skip_escape_string(bytes: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    while j < bytes.len() {
        match bytes[j] {
            b'\\' => j += 2,
            b'\'' if bytes.get(j + 1) == Some(&b'\'') => j += 2,
            b'\'' => return j + 1,
            _ => j += 1,
        }
    }
    bytes.len()
}

/// Index after a (nested) block comment opened at `i`; unterminated ⇒ end of input.
pub(super) fn skip_block_comment(bytes: &[u8], i: usize) -> usize {
    closed_block_comment(bytes, i).unwrap_or(bytes.len())
}

/// [`skip_block_comment`], `None` when the comment is not closed.
pub(super) fn closed_block_comment(bytes: &[u8], i: usize) -> Option<usize> {
    let mut nest = 0usize;
    let mut j = i;
    while j < bytes.len() {
        if bytes[j] == b'/' && bytes.get(j + 1) == Some(&b'*') {
            nest += 1;
            j += 2;
        } else if bytes[j] == b'*' && bytes.get(j + 1) == Some(&b'/') {
            nest -= 1;
            j += 2;
            if nest == 0 {
                return Some(j);
            }
        } else {
            j += 1;
        }
    }
    None
}

pub(super) fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// Index after a dollar quote opened at `i`, or `i + 1` when `$` does not open one
/// (a `$1` parameter, or a `$` inside an identifier such as `a$b`).
pub(super) fn skip_dollar(bytes: &[u8], i: usize) -> usize {
    if i > 0 && (is_ident_byte(bytes[i - 1]) || bytes[i - 1] == b'$') {
        return i + 1;
    }
    let mut j = i + 1;
    while j < bytes.len() && is_ident_byte(bytes[j]) {
        j += 1;
    }
    let tag_ok = bytes.get(j) == Some(&b'$') && !bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
    if !tag_ok {
        return i + 1;
    }
    let tag = &bytes[i..=j];
    let body = j + 1;
    bytes[body..]
        .windows(tag.len())
        .position(|w| w == tag)
        .map_or(bytes.len(), |p| body + p + tag.len())
}

#[cfg(test)]
mod tests {
    use super::split_postgres as split;

    #[test]
    fn splits_on_top_level_semicolons() {
        assert_eq!(split("select 1; select 2;"), vec!["select 1", "select 2"]);
        assert_eq!(split("  select 1  "), vec!["select 1"]);
        assert_eq!(split(""), Vec::<&str>::new());
        assert_eq!(split("   "), Vec::<&str>::new());
        assert_eq!(split(";;"), vec![";;"]);
        assert_eq!(split(" ; ; select 1"), vec!["select 1"]);
    }

    #[test]
    fn respects_quotes_comments_and_parens() {
        assert_eq!(split("select 'a;''b'; x"), vec!["select 'a;''b'", "x"]);
        assert_eq!(
            split(r#"select "a;""b"; x"#),
            vec![r#"select "a;""b""#, "x"]
        );
        assert_eq!(split("select 1 -- a;b\n; x"), vec!["select 1 -- a;b", "x"]);
        assert_eq!(
            split("select /* a /* ; */ ; */ 1; x"),
            vec!["select /* a /* ; */ ; */ 1", "x"]
        );
        assert_eq!(split("create rule r as on insert to t do (insert into a values (1); insert into b values (2)); x").len(), 2);
        assert_eq!(split("select $$a;b$$; x"), vec!["select $$a;b$$", "x"]);
        assert_eq!(
            split("select $t$a;$$;b$t$; x"),
            vec!["select $t$a;$$;b$t$", "x"]
        );
        assert_eq!(split("select $t$a; x"), vec!["select $t$a; x"]);
        assert_eq!(
            split("select $1; select a$b; x"),
            vec!["select $1", "select a$b", "x"]
        );
        assert_eq!(
            split("select 'unterminated; x"),
            vec!["select 'unterminated; x"]
        );
        assert_eq!(
            split("select /* unterminated; x"),
            vec!["select /* unterminated; x"]
        );
        assert_eq!(split("select (1; 2); x"), vec!["select (1; 2)", "x"]);
        // The server ends a line comment at CR too.
        assert_eq!(
            split("select 1 --\r; delete from t"),
            vec!["select 1 --", "delete from t"]
        );
        // A backslash escapes the quote in an escape string (and only there).
        assert_eq!(
            split(r"select E'\'(' ; drop table u"),
            vec![r"select E'\'('", "drop table u"]
        );
        assert_eq!(split(r"select e'a\\'; x"), vec![r"select e'a\\'", "x"]);
        assert_eq!(split(r"select 'a\'; x"), vec![r"select 'a\'", "x"]);
        assert_eq!(
            split(r"select name'\'; x'; y"),
            vec![r"select name'\'", r"x'; y"]
        );
        assert_eq!(split("select 1); x"), vec!["select 1)", "x"]);
    }
}
