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
                let end = skip_string(bytes, i, plain || escape_prefix(bytes, i));
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
            b'"' => i = skip_doubled(bytes, i, b'"'),
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = bytes[i..]
                    .iter()
                    .position(|&b| b == b'\n' || b == b'\r')
                    .map_or(bytes.len(), |p| i + p + 1);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = skip_block_comment(bytes, i),
            b'$' => i = skip_dollar(bytes, i),
            b if is_word(b) => {
                while i < bytes.len() && (is_word(bytes[i]) || bytes[i] == b'$') {
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

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// True when the quote at `i` has a one-letter string prefix of its own (`E'`, `B'`, `X'`,
/// `U&'`): those strings read the same under either setting. `N'…'` is a plain string.
fn prefixed(bytes: &[u8], i: usize) -> bool {
    let standalone = |at: usize| at == 0 || !(is_word(bytes[at - 1]) || bytes[at - 1] == b'$');
    match i.checked_sub(1).map(|p| bytes[p]) {
        Some(b'e' | b'E' | b'b' | b'B' | b'x' | b'X') => standalone(i - 1),
        Some(b'&') => i >= 2 && matches!(bytes[i - 2], b'u' | b'U') && standalone(i - 2),
        _ => false,
    }
}

/// True when the quote at `i` opens an `E'…'` string.
fn escape_prefix(bytes: &[u8], i: usize) -> bool {
    i >= 1
        && matches!(bytes[i - 1], b'e' | b'E')
        && !(i >= 2 && (is_word(bytes[i - 2]) || bytes[i - 2] == b'$'))
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

fn skip_doubled(bytes: &[u8], i: usize, quote: u8) -> usize {
    let mut j = i + 1;
    while j < bytes.len() {
        if bytes[j] == quote {
            if bytes.get(j + 1) == Some(&quote) {
                j += 2;
                continue;
            }
            return j + 1;
        }
        j += 1;
    }
    bytes.len()
}

fn skip_block_comment(bytes: &[u8], i: usize) -> usize {
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
                return j;
            }
        } else {
            j += 1;
        }
    }
    bytes.len()
}

/// Index after a dollar quote opened at `i`, or `i + 1` when `$` does not open one.
fn skip_dollar(bytes: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    while j < bytes.len() && is_word(bytes[j]) {
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
