//! Backslashes in plain string literals: what the server runs depends on the session's
//! `standard_conforming_strings`, which the gateway cannot know for sure (an agent can turn
//! it off at login or with `SET`, and it stays off for every later statement).
//!
//! With the setting on (the default, and how libpg_query parses), `'a\'` is a complete
//! string; with it off, the backslash escapes the quote and the string goes on, so the
//! statements that follow are read differently. [`nonconforming_reading`] rewrites a text
//! into the form the server reads with the setting off (each plain string that holds a
//! backslash becomes an `E'…'` string, which escapes the same way under either setting);
//! the analysis compares both readings and fails closed when they differ.

use super::split::{
    escape_string_at, is_ident_byte, skip_block_comment, skip_dollar, skip_line_comment,
    skip_quoted,
};

/// The text as the server reads it with `standard_conforming_strings = off`, written so that
/// a parser with the setting on reads it the same way; `None` when no plain string literal
/// holds a backslash (both readings are then the same text).
pub(crate) fn nonconforming_reading(text: &str) -> Option<String> {
    if !text.contains('\\') {
        return None;
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 8);
    let mut copied = 0;
    let mut changed = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => {
                let plain = !prefixed(bytes, i);
                let end = skip_string(bytes, i, plain || escape_string_at(bytes, i));
                if plain && bytes[i..end].contains(&b'\\') {
                    out.push_str(&text[copied..i]);
                    // ` E'…'`: the space keeps the `E` off a preceding word (`N'…'`,
                    // `date '…'`), where it would join the identifier.
                    out.push_str(" E");
                    copied = i;
                    changed = true;
                }
                i = end;
            }
            b'"' => i = skip_quoted(bytes, i, b'"'),
            b'-' if bytes.get(i + 1) == Some(&b'-') => i = skip_line_comment(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = skip_block_comment(bytes, i),
            b'$' => i = skip_dollar(bytes, i),
            b if is_ident_byte(b) => {
                while i < bytes.len() && (is_ident_byte(bytes[i]) || bytes[i] == b'$') {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    if !changed {
        return None;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

/// True when the quote at `i` has a one-letter string prefix of its own (`E'`, `B'`, `X'`,
/// `U&'`): those strings read the same under either setting. `N'…'` is a plain string.
fn prefixed(bytes: &[u8], i: usize) -> bool {
    let standalone =
        |at: usize| at == 0 || !(is_ident_byte(bytes[at - 1]) || bytes[at - 1] == b'$');
    match i.checked_sub(1).map(|p| bytes[p]) {
        Some(b'e' | b'E' | b'b' | b'B' | b'x' | b'X') => standalone(i - 1),
        Some(b'&') => i >= 2 && matches!(bytes[i - 2], b'u' | b'U') && standalone(i - 2),
        _ => false,
    }
}

/// Index after the string whose quote is at `i`; `backslash`: a backslash escapes the next
/// byte. A doubled quote is a quote. Unterminated ⇒ end of input.
fn skip_string(bytes: &[u8], i: usize, backslash: bool) -> usize {
    let mut j = i + 1;
    while j < bytes.len() {
        match bytes[j] {
            b'\\' if backslash => j += 2,
            b'\'' if bytes.get(j + 1) == Some(&b'\'') => j += 2,
            b'\'' => return j + 1,
            _ => j += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::nonconforming_reading as read;

    #[test]
    fn plain_strings_with_backslashes_become_escape_strings() {
        assert_eq!(read("select 1"), None);
        assert_eq!(read(r"select E'a\'b'"), None);
        assert_eq!(read(r"select $$a\'$$, 'b'"), None);
        assert_eq!(read("select 'a' -- \\"), None);
        assert_eq!(
            read(r"select 'x\'' ; drop table u; --'").as_deref(),
            Some(r"select  E'x\'' ; drop table u; --'")
        );
        assert_eq!(
            read(r"select N'a\\', 'b'").as_deref(),
            Some(r"select N E'a\\', 'b'")
        );
        assert_eq!(
            read(r"select date'2020\'").as_deref(),
            Some(r"select date E'2020\'")
        );
    }
}
