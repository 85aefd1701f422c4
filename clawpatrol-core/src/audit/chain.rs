//! The tamper-evident hash chain over audit rows (DESIGN §7).
//!
//! Every row carries `hash = hex(SHA-256(preimage))` and the previous row's hash in `prev_hash`
//! (empty for the first row). The preimage is, byte for byte:
//!
//! ```text
//! "clawpatrol-audit-v1\n" || prev_hash || "\n" || canonical JSON array of the fields
//! ```
//!
//! The array holds every field of [`AuditRecord`] except `id`, `prev_hash` and `hash`, in this
//! order: `action_id, ts_ns, mode, family, agent_ip, profile, host, method, path, status,
//! bytes_in, bytes_out, ms, action, reason, req_sha, resp_sha, req_body, resp_body,
//! req_headers, resp_headers, extra, endpoint, rule, credential, approver, approver_type,
//! approver_by`. Canonical JSON: no whitespace; `None` is `null`; integers in decimal; object
//! keys sorted by their UTF-8 bytes; strings quoted with `"` and `\` escaped as `\"` and `\\`,
//! `\b \f \n \r \t` as those escapes, other control characters below U+0020 as `\u00XX`
//! (lower-case hex), every other character as itself (UTF-8); other numbers as `serde_json`
//! prints them. The row id is not hashed: links between rows are the hashes themselves.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use super::record::AuditRecord;

/// Version tag that starts every preimage; a new canonical form gets a new tag.
const DOMAIN: &str = "clawpatrol-audit-v1\n";

/// A break in the audit chain: which row, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// The row's stored hash does not match its content.
    #[error("row {id} was modified: its hash does not match its content")]
    Modified {
        /// The row id.
        id: i64,
    },
    /// The first row does not start the chain.
    #[error("row {id} does not start the chain: the rows before it were deleted")]
    Headless {
        /// The row id.
        id: i64,
    },
    /// The row does not link to the row before it.
    #[error(
        "row {id} does not link to row {prev_id}: a row between them was deleted or the rows were reordered"
    )]
    Unlinked {
        /// The row id.
        id: i64,
        /// The id of the row before it.
        prev_id: i64,
    },
    /// Fewer rows than the stored head records: rows were removed from the end.
    #[error(
        "the chain ends at {} after {rows} rows but the stored head records {head_rows} rows: rows were deleted from the end",
        last_row(.last_id)
    )]
    Truncated {
        /// The last row found, if any.
        last_id: Option<i64>,
        /// Rows found.
        rows: u64,
        /// Rows the head records.
        head_rows: u64,
    },
    /// The last row or the row count disagrees with the stored head in another way.
    #[error(
        "the chain ends at {} after {rows} rows but the stored head records {head_rows} rows ending in hash `{head_hash}`",
        last_row(.last_id)
    )]
    HeadMismatch {
        /// The last row found, if any.
        last_id: Option<i64>,
        /// Rows found.
        rows: u64,
        /// Rows the head records.
        head_rows: u64,
        /// The hash the head records.
        head_hash: String,
    },
}

fn last_row(id: &Option<i64>) -> String {
    match id {
        Some(id) => format!("row {id}"),
        None => "the start (no rows)".to_string(),
    }
}

/// The canonical JSON texts of a record's structured fields: what the hash covers, and valid
/// JSON that a store can keep as the columns' text, so each is serialised once per row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonFields {
    /// `req_headers` as a canonical JSON object.
    pub req_headers: String,
    /// `resp_headers` as a canonical JSON object.
    pub resp_headers: String,
    /// `extra` in canonical JSON.
    pub extra: String,
}

impl JsonFields {
    /// The canonical texts of `rec`'s structured fields.
    pub fn of(rec: &AuditRecord) -> JsonFields {
        let mut extra = String::with_capacity(256);
        canonical(&rec.extra, &mut extra);
        JsonFields {
            req_headers: map_text(&rec.req_headers),
            resp_headers: map_text(&rec.resp_headers),
            extra,
        }
    }
}

/// A string map as a canonical JSON object.
fn map_text(m: &std::collections::BTreeMap<String, String>) -> String {
    // BTreeMap<String, _> iterates in byte order of the keys, the canonical order.
    let mut out = String::with_capacity(2 + m.len() * 32);
    out.push('{');
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        quote(k, &mut out);
        out.push(':');
        quote(v, &mut out);
    }
    out.push('}');
    out
}

/// The hex SHA-256 of `rec`'s content prefixed by `prev_hash` (the canonical form above).
pub fn content_hash(rec: &AuditRecord, prev_hash: &str) -> String {
    content_hash_with(rec, prev_hash, &JsonFields::of(rec))
}

/// [`content_hash`] with the structured fields already serialised (`json` must be
/// [`JsonFields::of`]`(rec)`).
pub fn content_hash_with(rec: &AuditRecord, prev_hash: &str, json: &JsonFields) -> String {
    let mut pre = String::with_capacity(
        DOMAIN.len() + prev_hash.len() + 512 + json.extra.len() + rec.path.len(),
    );
    pre.push_str(DOMAIN);
    pre.push_str(prev_hash);
    pre.push('\n');
    write_fields(rec, json, &mut pre);
    hex_lower(&Sha256::digest(pre.as_bytes()))
}

/// Lower-case hex of `bytes`, written straight into a string of the final size.
fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Links `rec` after a row whose hash is `prev_hash`: sets `prev_hash` and `hash`.
pub fn seal(rec: &mut AuditRecord, prev_hash: &str) {
    seal_with(rec, prev_hash, &JsonFields::of(rec));
}

/// [`seal`] with the structured fields already serialised (`json` must be
/// [`JsonFields::of`]`(rec)`).
pub fn seal_with(rec: &mut AuditRecord, prev_hash: &str, json: &JsonFields) {
    rec.hash = content_hash_with(rec, prev_hash, json);
    rec.prev_hash = prev_hash.to_string();
}

/// Checks rows in id order, one at a time (for stores that stream rows).
#[derive(Debug, Clone, Default)]
pub struct ChainVerifier {
    prev_hash: String,
    prev_id: Option<i64>,
    rows: u64,
}

impl ChainVerifier {
    /// A verifier expecting the first row of the chain.
    pub fn new() -> ChainVerifier {
        ChainVerifier::default()
    }

    /// Checks the next row: its content against its hash, and its link to the previous row.
    pub fn push(&mut self, rec: &AuditRecord) -> Result<(), ChainError> {
        if content_hash(rec, &rec.prev_hash) != rec.hash {
            return Err(ChainError::Modified { id: rec.id });
        }
        if rec.prev_hash != self.prev_hash {
            return Err(match self.prev_id {
                Some(prev_id) => ChainError::Unlinked {
                    id: rec.id,
                    prev_id,
                },
                None => ChainError::Headless { id: rec.id },
            });
        }
        self.prev_hash.clone_from(&rec.hash);
        self.prev_id = Some(rec.id);
        self.rows += 1;
        Ok(())
    }

    /// Compares the end of the chain with the stored head `(hash, count)`; returns the row count.
    pub fn finish(self, expected_head: Option<(&str, u64)>) -> Result<u64, ChainError> {
        let Some((head_hash, head_rows)) = expected_head else {
            return Ok(self.rows);
        };
        if head_rows == self.rows && head_hash == self.prev_hash {
            return Ok(self.rows);
        }
        if self.rows < head_rows {
            return Err(ChainError::Truncated {
                last_id: self.prev_id,
                rows: self.rows,
                head_rows,
            });
        }
        Err(ChainError::HeadMismatch {
            last_id: self.prev_id,
            rows: self.rows,
            head_rows,
            head_hash: head_hash.to_string(),
        })
    }
}

/// Verifies rows given in id order; `expected_head` is the stored `(hash, count)` of the chain's
/// end. Returns the number of rows.
pub fn verify_chain<'a>(
    rows: impl Iterator<Item = &'a AuditRecord>,
    expected_head: Option<(&str, u64)>,
) -> Result<u64, ChainError> {
    let mut v = ChainVerifier::new();
    for rec in rows {
        v.push(rec)?;
    }
    v.finish(expected_head)
}

#[cfg(test)]
fn opt(s: &Option<String>) -> serde_json::Value {
    match s {
        Some(s) => serde_json::Value::String(s.clone()),
        None => serde_json::Value::Null,
    }
}

#[cfg(test)]
fn map(m: &std::collections::BTreeMap<String, String>) -> serde_json::Value {
    serde_json::Value::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
    )
}

/// The hashed fields, in the documented order, as a JSON value (the reference form that
/// [`write_fields`] must reproduce byte for byte).
#[cfg(test)]
fn fields(r: &AuditRecord) -> serde_json::Value {
    use serde_json::Value as V;
    let s = |s: &str| V::String(s.to_string());
    V::Array(vec![
        s(&r.action_id),
        V::from(r.ts_ns),
        s(&r.mode),
        s(&r.family),
        s(&r.agent_ip),
        opt(&r.profile),
        s(&r.host),
        s(&r.method),
        s(&r.path),
        s(&r.status),
        V::from(r.bytes_in),
        V::from(r.bytes_out),
        V::from(r.ms),
        s(&r.action),
        s(&r.reason),
        s(&r.req_sha),
        s(&r.resp_sha),
        s(&r.req_body),
        s(&r.resp_body),
        map(&r.req_headers),
        map(&r.resp_headers),
        r.extra.clone(),
        opt(&r.endpoint),
        opt(&r.rule),
        opt(&r.credential),
        opt(&r.approver),
        opt(&r.approver_type),
        opt(&r.approver_by),
    ])
}

/// Writes the canonical JSON array of the hashed fields straight from the record and its
/// serialised structured fields (the same bytes as `canonical(&fields(rec))`, without
/// building and cloning a JSON value).
fn write_fields(r: &AuditRecord, json: &JsonFields, out: &mut String) {
    let opt = |s: &Option<String>, out: &mut String| match s {
        Some(s) => quote(s, out),
        None => out.push_str("null"),
    };
    out.push('[');
    quote(&r.action_id, out);
    let _ = write!(out, ",{},", r.ts_ns);
    for s in [&r.mode, &r.family, &r.agent_ip] {
        quote(s, out);
        out.push(',');
    }
    opt(&r.profile, out);
    for s in [&r.host, &r.method, &r.path, &r.status] {
        out.push(',');
        quote(s, out);
    }
    let _ = write!(out, ",{},{},{}", r.bytes_in, r.bytes_out, r.ms);
    for s in [
        &r.action,
        &r.reason,
        &r.req_sha,
        &r.resp_sha,
        &r.req_body,
        &r.resp_body,
    ] {
        out.push(',');
        quote(s, out);
    }
    for text in [&json.req_headers, &json.resp_headers, &json.extra] {
        out.push(',');
        out.push_str(text);
    }
    for o in [
        &r.endpoint,
        &r.rule,
        &r.credential,
        &r.approver,
        &r.approver_type,
        &r.approver_by,
    ] {
        out.push(',');
        opt(o, out);
    }
    out.push(']');
}

/// Writes the canonical JSON form of `v` (see the module docs).
fn canonical(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value as V;
    match v {
        V::Null => out.push_str("null"),
        V::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        V::Number(n) => {
            let _ = write!(out, "{n}");
        }
        V::String(s) => quote(s, out),
        V::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        V::Object(m) => {
            // serde_json's map is a BTreeMap, whose order is the keys' byte order, unless some
            // crate in the build turns on `preserve_order`: only then are entries sorted here.
            if m.keys().is_sorted_by(|a, b| a.as_bytes() <= b.as_bytes()) {
                object(m.iter(), out);
            } else {
                let mut entries: Vec<(&String, &serde_json::Value)> = m.iter().collect();
                entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                object(entries.into_iter(), out);
            }
        }
    }
}

/// Writes a JSON object from entries already in canonical key order.
fn object<'a>(
    entries: impl Iterator<Item = (&'a String, &'a serde_json::Value)>,
    out: &mut String,
) {
    out.push('{');
    for (i, (k, item)) in entries.enumerate() {
        if i > 0 {
            out.push(',');
        }
        quote(k, out);
        out.push(':');
        canonical(item, out);
    }
    out.push('}');
}

fn quote(s: &str, out: &mut String) {
    out.reserve(s.len() + 2);
    out.push('"');
    // Runs of bytes that need no escape are copied whole; every escaped byte is ASCII, so
    // the run boundaries are char boundaries.
    let bytes = s.as_bytes();
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            0x0c => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[run..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(escape);
        }
        run = i + 1;
    }
    out.push_str(&s[run..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quote_escapes_like_serde_json() {
        let mut s = String::new();
        for c in (0u32..0x80)
            .chain([0xe9, 0x2028, 0x1f600])
            .filter_map(char::from_u32)
        {
            s.push(c);
            s.push('é');
        }
        let mut out = String::new();
        quote(&s, &mut out);
        assert_eq!(out, serde_json::to_string(&s).unwrap());
    }

    #[test]
    fn hex_lower_matches_the_hex_crate() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(hex_lower(&bytes), hex::encode(&bytes));
        assert_eq!(hex_lower(&[]), "");
    }

    proptest::proptest! {
        #[test]
        fn quote_matches_serde_json_on_any_string(
            s in "(?s)[\\x00-\\x7f\"\\\\é\u{2028}\u{1f600}]{0,80}"
        ) {
            let mut out = String::new();
            quote(&s, &mut out);
            proptest::prop_assert_eq!(out, serde_json::to_string(&s).unwrap());
        }
    }

    #[test]
    fn direct_serialisation_matches_the_value_form() {
        let mut r = rec(7);
        r.profile = Some("dev\"x".into());
        r.req_headers.insert("B".into(), "2\n".into());
        r.req_headers.insert("A".into(), "1".into());
        r.resp_headers.insert("é".into(), "\u{1}".into());
        r.extra = json!({"z": [1, {"b": null, "a": true}], "a": "\t"});
        r.rule = Some("rule".into());
        let mut direct = String::new();
        write_fields(&r, &JsonFields::of(&r), &mut direct);
        let mut via_value = String::new();
        canonical(&fields(&r), &mut via_value);
        assert_eq!(direct, via_value);
    }

    #[test]
    fn json_fields_are_valid_json_of_the_record_s_values() {
        let mut r = rec(3);
        r.resp_headers.insert("é\"".into(), "\u{1}\n".into());
        r.extra = json!({"z": [1, {"b": null, "a": true}], "a": "\t\\", "n": -2.5});
        let json = JsonFields::of(&r);
        let back: serde_json::Value = serde_json::from_str(&json.extra).unwrap();
        assert_eq!(back, r.extra);
        let req: std::collections::BTreeMap<String, String> =
            serde_json::from_str(&json.req_headers).unwrap();
        assert_eq!(req, r.req_headers);
        let resp: std::collections::BTreeMap<String, String> =
            serde_json::from_str(&json.resp_headers).unwrap();
        assert_eq!(resp, r.resp_headers);
        assert_eq!(json.extra, serde_json::to_string(&r.extra).unwrap());
        assert_eq!(content_hash_with(&r, "p", &json), content_hash(&r, "p"));
    }

    fn rec(n: i64) -> AuditRecord {
        AuditRecord {
            id: n,
            action_id: format!("0190-{n}"),
            ts_ns: 1_700_000_000_000_000_000 + n,
            mode: "mitm".into(),
            family: "http".into(),
            agent_ip: "127.0.0.1".into(),
            host: "api.github.com".into(),
            method: "GET".into(),
            path: format!("/repos/{n}"),
            status: "200".into(),
            action: "allow".into(),
            req_headers: [("Authorization".to_string(), "***".to_string())].into(),
            extra: json!({"action": {"host": "api.github.com", "http": {"method": "GET"}}, "z": 1, "a": [1.5, null]}),
            endpoint: Some("https.github".into()),
            rule: Some("github-reads".into()),
            ..Default::default()
        }
    }

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut prev = String::new();
        (1..=n)
            .map(|i| {
                let mut r = rec(i);
                seal(&mut r, &prev);
                prev.clone_from(&r.hash);
                r
            })
            .collect()
    }

    fn head(rows: &[AuditRecord]) -> (String, u64) {
        (
            rows.last().map(|r| r.hash.clone()).unwrap_or_default(),
            rows.len() as u64,
        )
    }

    #[test]
    fn an_intact_chain_verifies() {
        let rows = chain(5);
        let (h, n) = head(&rows);
        assert_eq!(verify_chain(rows.iter(), Some((&h, n))), Ok(5));
        assert_eq!(verify_chain(rows.iter(), None), Ok(5));
        assert_eq!(verify_chain([].iter(), Some(("", 0))), Ok(0));
        assert_eq!(rows[0].prev_hash, "");
        assert_eq!(rows[1].prev_hash, rows[0].hash);
        assert_eq!(rows[0].hash.len(), 64);
    }

    #[test]
    fn the_hash_covers_every_field_but_the_chain_columns() {
        let base = rec(1);
        let h = content_hash(&base, "");
        assert_ne!(
            h,
            content_hash(&base, "00"),
            "prev_hash is part of the preimage"
        );
        let mut id = base.clone();
        id.id = 99;
        id.hash = "x".into();
        assert_eq!(content_hash(&id, ""), h, "id and hash are not hashed");
        let edits: Vec<fn(&mut AuditRecord)> = vec![
            |r| r.action_id.push('x'),
            |r| r.ts_ns += 1,
            |r| r.mode.push('x'),
            |r| r.family.push('x'),
            |r| r.agent_ip.push('x'),
            |r| r.profile = Some(String::new()),
            |r| r.host.push('x'),
            |r| r.method.push('x'),
            |r| r.path.push('x'),
            |r| r.status.push('x'),
            |r| r.bytes_in += 1,
            |r| r.bytes_out += 1,
            |r| r.ms += 1,
            |r| r.action.push('x'),
            |r| r.reason.push('x'),
            |r| r.req_sha.push('x'),
            |r| r.resp_sha.push('x'),
            |r| r.req_body.push('x'),
            |r| r.resp_body.push('x'),
            |r| {
                r.req_headers.insert("Authorization".into(), "real".into());
            },
            |r| {
                r.resp_headers.insert("A".into(), String::new());
            },
            |r| r.extra["z"] = json!(2),
            |r| r.endpoint = None,
            |r| r.rule = None,
            |r| r.credential = Some("pat".into()),
            |r| r.approver = Some(String::new()),
            |r| r.approver_type = Some(String::new()),
            |r| r.approver_by = Some(String::new()),
        ];
        for (i, edit) in edits.iter().enumerate() {
            let mut r = base.clone();
            edit(&mut r);
            assert_ne!(
                content_hash(&r, ""),
                h,
                "edit {i} is not covered by the hash"
            );
        }
    }

    #[test]
    fn object_key_order_does_not_matter() {
        let mut a = rec(1);
        let mut b = rec(1);
        a.extra = serde_json::from_str(r#"{"b":1,"a":{"y":"\u0001","x":2}}"#).unwrap();
        b.extra = serde_json::from_str(r#"{"a":{"x":2,"y":"\u0001"},"b":1}"#).unwrap();
        assert_eq!(content_hash(&a, "p"), content_hash(&b, "p"));
        let mut s = String::new();
        canonical(&a.extra, &mut s);
        assert_eq!(s, r#"{"a":{"x":2,"y":"\u0001"},"b":1}"#);
    }

    #[test]
    fn an_edited_row_breaks_the_chain_at_that_row() {
        let mut rows = chain(4);
        let (h, n) = head(&rows);
        rows[2].reason = "nothing to see".into();
        assert_eq!(
            verify_chain(rows.iter(), Some((&h, n))),
            Err(ChainError::Modified { id: 3 })
        );
    }

    #[test]
    fn a_resealed_edit_breaks_the_next_link() {
        let mut rows = chain(4);
        let (h, n) = head(&rows);
        rows[1].action = "deny".into();
        let prev = rows[0].hash.clone();
        seal(&mut rows[1], &prev);
        assert_eq!(
            verify_chain(rows.iter(), Some((&h, n))),
            Err(ChainError::Unlinked { id: 3, prev_id: 2 })
        );
    }

    #[test]
    fn a_deleted_middle_row_is_detected() {
        let mut rows = chain(5);
        let (h, n) = head(&rows);
        rows.remove(2);
        let err = verify_chain(rows.iter(), Some((&h, n))).unwrap_err();
        assert_eq!(err, ChainError::Unlinked { id: 4, prev_id: 2 });
        assert!(err.to_string().starts_with("row 4 does not link to row 2"));
    }

    #[test]
    fn a_deleted_first_row_is_detected() {
        let mut rows = chain(3);
        let (h, n) = head(&rows);
        rows.remove(0);
        assert_eq!(
            verify_chain(rows.iter(), Some((&h, n))),
            Err(ChainError::Headless { id: 2 })
        );
    }

    #[test]
    fn reordered_rows_are_detected() {
        let mut rows = chain(3);
        let (h, n) = head(&rows);
        rows.swap(1, 2);
        assert_eq!(
            verify_chain(rows.iter(), Some((&h, n))),
            Err(ChainError::Unlinked { id: 3, prev_id: 1 })
        );
    }

    #[test]
    fn a_deleted_last_row_is_detected_through_the_head() {
        let mut rows = chain(3);
        let (h, n) = head(&rows);
        rows.pop();
        let err = verify_chain(rows.iter(), Some((&h, n))).unwrap_err();
        assert_eq!(
            err,
            ChainError::Truncated {
                last_id: Some(2),
                rows: 2,
                head_rows: 3
            }
        );
        assert!(err.to_string().contains("row 2 after 2 rows"), "{err}");
        assert_eq!(verify_chain(rows.iter(), None), Ok(2), "no head: no check");
        let err = verify_chain([].iter(), Some((&h, n))).unwrap_err();
        assert!(err.to_string().contains("no rows"), "{err}");
    }

    #[test]
    fn a_forged_head_or_extra_rows_are_detected() {
        let rows = chain(3);
        let (h, _) = head(&rows);
        assert!(matches!(
            verify_chain(rows.iter(), Some((&h, 2))),
            Err(ChainError::HeadMismatch { rows: 3, .. })
        ));
        assert!(matches!(
            verify_chain(rows.iter(), Some(("beef", 3))),
            Err(ChainError::HeadMismatch { .. })
        ));
    }
}
