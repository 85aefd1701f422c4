//! A gap in libpg_query's PL/pgSQL output: a variable declared `record` becomes a
//! `PLpgSQL_rec`, whose JSON leaves out the default expression. So
//! `DECLARE r record := ROW(pg_read_file('/etc/passwd'))` would show no inner statement.
//! Such a declaration is found in the body text instead, and the `DO` block is then
//! unparseable (fail closed).

use serde_json::Value;

use super::split::{
    escape_string_at, is_ident_byte, skip_block_comment, skip_dollar, skip_escape_string,
    skip_line_comment, skip_quoted,
};

/// True when the parsed function holds a `record` variable declared by the body.
pub(super) fn has_record_variable(json: &Value) -> bool {
    match json {
        Value::Object(m) => m.iter().any(|(k, v)| {
            (k == "PLpgSQL_rec" && v.get("lineno").is_some()) || has_record_variable(v)
        }),
        Value::Array(a) => a.iter().any(has_record_variable),
        _ => false,
    }
}

/// True when the PL/pgSQL `body` may declare a `record` variable with a default: the word
/// `record` (outside strings, quoted names, comments; not after `::`) followed by `:=`,
/// `=`, `DEFAULT`, `NOT` (`NOT NULL` needs a default) or `COLLATE`.
pub(super) fn record_default_in(body: &str) -> bool {
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' if escape_string_at(bytes, i) => i = skip_escape_string(bytes, i),
            b'\'' => i = skip_quoted(bytes, i, b'\''),
            b'"' => i = skip_quoted(bytes, i, b'"'),
            b'-' if bytes.get(i + 1) == Some(&b'-') => i = skip_line_comment(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = skip_block_comment(bytes, i),
            b'$' => i = skip_dollar(bytes, i),
            b if is_ident_byte(b) => {
                let start = i;
                while i < bytes.len() && (is_ident_byte(bytes[i]) || bytes[i] == b'$') {
                    i += 1;
                }
                let word = &bytes[start..i];
                if word.eq_ignore_ascii_case(b"record")
                    && !after_cast(bytes, start)
                    && default_follows(bytes, i)
                {
                    return true;
                }
            }
            _ => i += 1,
        }
    }
    false
}

/// True when `::` (whitespace allowed) comes just before `at`.
fn after_cast(bytes: &[u8], at: usize) -> bool {
    let before = bytes[..at].trim_ascii_end();
    before.ends_with(b"::")
}

/// True when what follows `at` (after whitespace and comments) starts a default.
fn default_follows(bytes: &[u8], mut at: usize) -> bool {
    loop {
        while at < bytes.len() && bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        match (bytes.get(at), bytes.get(at + 1)) {
            (Some(b'-'), Some(b'-')) => at = skip_line_comment(bytes, at),
            (Some(b'/'), Some(b'*')) => at = skip_block_comment(bytes, at),
            _ => break,
        }
    }
    let rest = &bytes[at..];
    if rest.starts_with(b":=") || rest.starts_with(b"=") {
        return true;
    }
    let end = rest
        .iter()
        .position(|b| !is_ident_byte(*b))
        .unwrap_or(rest.len());
    let word = &rest[..end];
    [&b"default"[..], b"not", b"collate"]
        .iter()
        .any(|k| word.eq_ignore_ascii_case(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_defaults_are_found() {
        for body in [
            "DECLARE r record := ROW(pg_read_file('/etc/passwd')); BEGIN END",
            "DECLARE r RECORD = ROW(1); BEGIN END",
            "DECLARE r record DEFAULT ROW(1); BEGIN END",
            "DECLARE r record /* c */ := ROW(1); BEGIN END",
            "DECLARE r CONSTANT record := ROW(1); BEGIN END",
            "DECLARE r record NOT NULL := ROW(1); BEGIN END",
            "DECLARE r record\n  -- default below\n  := ROW(1); BEGIN END",
            "DECLARE a int; BEGIN DECLARE r record := ROW(1); BEGIN END; END",
        ] {
            assert!(record_default_in(body), "{body}");
        }
        for body in [
            "DECLARE r record; BEGIN FOR r IN SELECT 1 LOOP END LOOP; END",
            "DECLARE x text := 'r record := 1'; BEGIN END",
            "DECLARE \"record\" int := 1; BEGIN END",
            "DECLARE r record; BEGIN IF r::record = r THEN NULL; END IF; END",
            "DECLARE r record; -- r record := 1\nBEGIN END",
            "DECLARE records int := 1; BEGIN END",
            "DECLARE r record; BEGIN PERFORM $q$ r record := 1 $q$; END",
        ] {
            assert!(!record_default_in(body), "{body}");
        }
    }
}
