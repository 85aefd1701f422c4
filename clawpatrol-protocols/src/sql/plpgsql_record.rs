//! A gap in libpg_query's PL/pgSQL output: a variable whose declared type libpg_query takes
//! for `record` becomes a `PLpgSQL_rec`, whose JSON leaves out the default expression. So
//! `DECLARE r record := ROW(pg_read_file('/etc/passwd'))` would show no inner statement.
//! libpg_query takes any type name that is a prefix of `RECORD` (any case: `rec`, `re`, `r`)
//! for `record`. Each such variable's declaration is looked up in the body text; when it has
//! a default, or cannot be found, the `DO` block is unparseable (fail closed).

use serde_json::Value;

use super::split::{
    escape_string_at, is_ident_byte, skip_block_comment, skip_dollar, skip_escape_string,
    skip_line_comment, skip_quoted,
};

/// The names of the record variables the body declares.
pub(super) fn record_variables(json: &Value, out: &mut Vec<String>) {
    match json {
        Value::Object(m) => {
            for (k, v) in m {
                if k == "PLpgSQL_rec" && v.get("lineno").is_some() {
                    let name = v.get("refname").and_then(Value::as_str).unwrap_or("");
                    out.push(name.to_string());
                }
                record_variables(v, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| record_variables(v, out)),
        _ => {}
    }
}

/// True when a record variable named `names` may hide a default: one is declared with a
/// default (`name [CONSTANT] <prefix of RECORD>` then `:=`, `=`, `DEFAULT`, `NOT` (`NOT NULL`
/// needs a default) or `COLLATE`), or one's declaration is not found.
pub(super) fn record_default_hidden(body: &str, names: &[String]) -> bool {
    let words = words(body);
    names.iter().any(|name| {
        let mut found = false;
        for (k, &(start, end)) in words.iter().enumerate() {
            if !body[start..end].eq_ignore_ascii_case(name) {
                continue;
            }
            let mut next = k + 1;
            if words
                .get(next)
                .is_some_and(|&(s, e)| body[s..e].eq_ignore_ascii_case("constant"))
            {
                next += 1;
            }
            let Some(&(s, e)) = words.get(next) else {
                continue;
            };
            let typ = &body[s..e];
            if typ.is_empty() || typ.len() > 6 || !"record".starts_with(&typ.to_ascii_lowercase()) {
                continue;
            }
            // The words must be adjacent (only whitespace and comments between them).
            if !only_gaps(body, end, s) {
                continue;
            }
            found = true;
            if default_follows(body.as_bytes(), e) {
                return true;
            }
        }
        !found
    })
}

/// Byte ranges of the words (unquoted identifiers and keywords) of `body`, outside strings,
/// quoted names, comments and dollar quotes; other tokens end a run of words.
fn words(body: &str) -> Vec<(usize, usize)> {
    let bytes = body.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let before = i;
        match bytes[i] {
            b'\'' if escape_string_at(bytes, i) => i = skip_escape_string(bytes, i),
            b'\'' => i = skip_quoted(bytes, i, b'\''),
            b'"' => i = skip_quoted(bytes, i, b'"'),
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = skip_line_comment(bytes, i);
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = skip_block_comment(bytes, i);
                continue;
            }
            b'$' => i = skip_dollar(bytes, i),
            b if is_ident_byte(b) => {
                while i < bytes.len() && (is_ident_byte(bytes[i]) || bytes[i] == b'$') {
                    i += 1;
                }
                out.push((before, i));
                continue;
            }
            b if b.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            _ => i += 1,
        }
        // Any other token: an empty marker keeps unrelated words from looking adjacent.
        out.push((before, before));
    }
    out
}

/// True when `body[from..to]` holds only whitespace and comments.
fn only_gaps(body: &str, from: usize, to: usize) -> bool {
    let bytes = body.as_bytes();
    let mut i = from;
    while i < to {
        match (bytes[i], bytes.get(i + 1)) {
            (b, _) if b.is_ascii_whitespace() => i += 1,
            (b'-', Some(b'-')) => i = skip_line_comment(bytes, i),
            (b'/', Some(b'*')) => i = skip_block_comment(bytes, i),
            _ => return false,
        }
    }
    true
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

    fn hidden(body: &str, name: &str) -> bool {
        record_default_hidden(body, &[name.to_string()])
    }

    #[test]
    fn record_defaults_are_found() {
        for (body, name) in [
            (
                "DECLARE r record := ROW(pg_read_file('/etc/passwd')); BEGIN END",
                "r",
            ),
            ("DECLARE r RECORD = ROW(1); BEGIN END", "r"),
            ("DECLARE r record DEFAULT ROW(1); BEGIN END", "r"),
            ("DECLARE r record /* c */ := ROW(1); BEGIN END", "r"),
            ("DECLARE r CONSTANT record := ROW(1); BEGIN END", "r"),
            ("DECLARE r record NOT NULL := ROW(1); BEGIN END", "r"),
            (
                "DECLARE r record\n  -- default below\n  := ROW(1); BEGIN END",
                "r",
            ),
            (
                "DECLARE a int; BEGIN DECLARE r record := ROW(1); BEGIN END; END",
                "r",
            ),
            ("DECLARE x re := ROW(1); BEGIN END", "x"),
            ("DECLARE x REC := ROW(1); BEGIN END", "x"),
            ("DECLARE X r := ROW(1); BEGIN END", "x"),
            ("DECLARE x /* c */ recor := ROW(1); BEGIN END", "x"),
            // Not found: fail closed.
            ("DECLARE \"X\" record := ROW(1); BEGIN END", "X"),
        ] {
            assert!(hidden(body, name), "{body}");
        }
        for (body, name) in [
            (
                "DECLARE r record; BEGIN FOR r IN SELECT 1 LOOP END LOOP; END",
                "r",
            ),
            (
                "DECLARE r record; x text := 'r record := 1'; BEGIN END",
                "r",
            ),
            (
                "DECLARE r record; BEGIN IF r::record = r THEN NULL; END IF; END",
                "r",
            ),
            ("DECLARE r record; -- r record := 1\nBEGIN END", "r"),
            (
                "DECLARE r record; BEGIN PERFORM $q$ r record := 1 $q$; END",
                "r",
            ),
            ("DECLARE r record; BEGIN r := ROW(1); END", "r"),
            ("DECLARE r rec; BEGIN SELECT 1 INTO r; END", "r"),
        ] {
            assert!(!hidden(body, name), "{body}");
        }
    }
}
