//! Redaction of what the audit log stores (reference §4.5).
//!
//! Headers whose name matches `(?i)auth|token|secret|key|password|cookie` are stored as `***`;
//! every other text has each occurrence of a known secret replaced by `[REDACTED credential]`.
//! Occurrences of all secrets are found first (overlapping ones included) and every maximal
//! overlapping run becomes one marker, so no byte of any occurrence survives whichever secret
//! is longer. Empty secrets are ignored.

use std::collections::BTreeMap;

use memchr::memmem;

use crate::facts::http::canonical_header_key;
use crate::facts::{Action, Facts, HttpFacts};

/// The text that replaces a secret.
pub const REDACTED: &str = "[REDACTED credential]";
/// The value stored for a header whose name looks sensitive.
pub const MASKED: &str = "***";
/// Appended to a body sample when the body was longer than the sample.
pub const BODY_TRUNCATED: &str = "\n[clawpatrol:body-truncated]";
/// How many raw bytes a binary body sample shows (as hex).
const BINARY_SAMPLE: usize = 64;
/// A body cut in the middle of a secret hides a trailing partial secret this long or longer.
const MIN_PARTIAL: usize = 4;
/// Texts shorter than this are searched without a prebuilt searcher.
const SHORT_TEXT: usize = 256;

/// True when a header of this name is stored as `***` (`(?i)auth|token|secret|key|password|cookie`).
pub fn is_sensitive_header(name: &str) -> bool {
    let lower = name.to_lowercase();
    ["auth", "token", "secret", "key", "password", "cookie"]
        .iter()
        .any(|w| lower.contains(w))
}

/// The audit header map: canonical names, sensitive ones `***`, secrets replaced in the others,
/// multi-values joined with `, ` in order.
pub fn redact_headers(
    headers: &[(String, Vec<u8>)],
    secrets: &[String],
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let key = canonical_header_key(name);
        let value = if is_sensitive_header(&key) {
            MASKED.to_string()
        } else {
            lossy(redact_bytes(value, secrets))
        };
        match out.get_mut(&key) {
            Some(joined) if is_sensitive_header(&key) => *joined = MASKED.to_string(),
            Some(joined) => {
                joined.push_str(", ");
                joined.push_str(&value);
            }
            None => {
                out.insert(key, value);
            }
        }
    }
    out
}

/// `text` with every secret occurrence replaced by `[REDACTED credential]`.
pub fn redact_text(text: &str, secrets: &[String]) -> String {
    // Occurrences of valid UTF-8 secrets start and end on character boundaries, so the result
    // is valid UTF-8; `lossy` only guards the type conversion.
    lossy(redact_bytes(text.as_bytes(), secrets))
}

/// `bytes` with every secret occurrence replaced by `[REDACTED credential]`.
pub fn redact_bytes(bytes: &[u8], secrets: &[String]) -> Vec<u8> {
    replace_spans(bytes, spans(bytes, secrets, false))
}

/// The stored sample of a body of `total_len` bytes whose first bytes are `body`: at most `cap`
/// bytes, redacted; printable UTF-8 as text, otherwise `binary:<hex of the first 64 bytes>`;
/// `\n[clawpatrol:body-truncated]` appended when the body was longer than `cap`.
pub fn body_sample(body: &[u8], total_len: u64, cap: usize, secrets: &[String]) -> String {
    let sample = &body[..body.len().min(cap)];
    let total = total_len.max(body.len() as u64);
    let cut = total > sample.len() as u64;
    let redacted = replace_spans(sample, spans(sample, secrets, cut));
    let mut out = match printable(&redacted, cut) {
        Some(text) => text.to_string(),
        None => format!(
            "binary:{}",
            hex::encode(&redacted[..redacted.len().min(BINARY_SAMPLE)])
        ),
    };
    if total > cap as u64 {
        out.push_str(BODY_TRUNCATED);
    }
    out
}

/// Redacts an action in place: sensitive header values become `***`; secrets are replaced in
/// every other text field (headers, path, query, body, k8s, SQL and SSH fields).
pub fn redact_action(action: &mut Action, secrets: &[String]) {
    let text = |s: &mut String| *s = redact_text(s, secrets);
    match &mut action.facts {
        Facts::Http(h) => *h = redact_http(h, secrets),
        Facts::K8s { http, k8s } => {
            *http = redact_http(http, secrets);
            if let Some(k) = k8s {
                text(&mut k.resource);
                text(&mut k.namespace);
                text(&mut k.name);
                k.params = redact_map(&k.params, secrets);
            }
        }
        Facts::Sql(s) => {
            text(&mut s.statement);
            text(&mut s.database);
            s.tables.iter_mut().for_each(text);
            s.functions.iter_mut().for_each(text);
        }
        Facts::Ssh(s) => {
            text(&mut s.command);
            text(&mut s.subsystem);
            text(&mut s.forward_host);
            text(&mut s.user);
            text(&mut s.stdin);
        }
    }
}

fn redact_http(h: &HttpFacts, secrets: &[String]) -> HttpFacts {
    let headers = h
        .headers()
        .iter()
        .map(|(k, vs)| {
            let vs = if is_sensitive_header(k) {
                vec![MASKED.to_string()]
            } else {
                vs.iter().map(|v| redact_text(v, secrets)).collect()
            };
            (k.clone(), vs)
        })
        .collect();
    let query = h
        .query()
        .iter()
        .map(|(k, vs)| {
            (
                redact_text(k, secrets),
                vs.iter().map(|v| redact_text(v, secrets)).collect(),
            )
        })
        .collect();
    HttpFacts::new(
        h.method(),
        &redact_text(h.path(), secrets),
        query,
        headers,
        redact_bytes(h.body(), secrets),
    )
}

fn redact_map(m: &BTreeMap<String, String>, secrets: &[String]) -> BTreeMap<String, String> {
    m.iter()
        .map(|(k, v)| (redact_text(k, secrets), redact_text(v, secrets)))
        .collect()
}

fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Byte ranges of every occurrence of every non-empty secret, overlapping ones included; with
/// `partial_tail`, also a trailing proper prefix (≥ `MIN_PARTIAL` bytes) of a secret, which a
/// cut body may end with.
fn spans(bytes: &[u8], secrets: &[String], partial_tail: bool) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for s in secrets
        .iter()
        .map(String::as_bytes)
        .filter(|s| !s.is_empty())
    {
        if bytes.len() >= s.len() {
            // Short texts (most audit fields) skip building a searcher per call.
            let finder = (bytes.len() >= SHORT_TEXT).then(|| memmem::Finder::new(s));
            let find = |hay: &[u8]| match &finder {
                Some(f) => f.find(hay),
                None => memmem::find(hay, s),
            };
            let mut from = 0;
            while let Some(pos) = find(&bytes[from..]) {
                out.push((from + pos, from + pos + s.len()));
                from += pos + 1;
            }
        }
        if partial_tail {
            if let Some(k) = (MIN_PARTIAL..s.len())
                .rev()
                .find(|&k| bytes.ends_with(&s[..k]))
            {
                out.push((bytes.len() - k, bytes.len()));
            }
        }
    }
    out
}

/// Replaces each maximal run of overlapping spans with one `REDACTED` marker.
fn replace_spans(bytes: &[u8], mut spans: Vec<(usize, usize)>) -> Vec<u8> {
    if spans.is_empty() {
        return bytes.to_vec();
    }
    spans.sort_unstable();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    let mut i = 0;
    while i < spans.len() {
        let (start, mut end) = spans[i];
        i += 1;
        while i < spans.len() && spans[i].0 < end {
            end = end.max(spans[i].1);
            i += 1;
        }
        out.extend_from_slice(&bytes[at..start]);
        out.extend_from_slice(REDACTED.as_bytes());
        at = end;
    }
    out.extend_from_slice(&bytes[at..]);
    out
}

/// The sample as text when it is printable UTF-8 (a cut sample may end inside a character,
/// which is dropped).
fn printable(bytes: &[u8], cut: bool) -> Option<&str> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) if cut && e.error_len().is_none() => {
            std::str::from_utf8(&bytes[..e.valid_up_to()]).ok()?
        }
        Err(_) => return None,
    };
    text.chars()
        .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
        .then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secrets(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn sensitive_header_names() {
        for n in [
            "Authorization",
            "Proxy-Authorization",
            "X-Api-Key",
            "Cookie",
            "Set-Cookie",
            "X-Auth-Token",
            "X-Secret",
            "X-Password",
            "apikey",
        ] {
            assert!(is_sensitive_header(n), "{n}");
        }
        for n in ["Content-Type", "Accept", "User-Agent", "X-Request-Id"] {
            assert!(!is_sensitive_header(n), "{n}");
        }
    }

    #[test]
    fn headers_are_masked_redacted_and_joined() {
        let s = secrets(&["ghp_realtoken123"]);
        let h = vec![
            (
                "authorization".to_string(),
                b"Bearer ghp_realtoken123".to_vec(),
            ),
            ("x-forwarded-for".to_string(), b"1.2.3.4".to_vec()),
            ("X-Forwarded-For".to_string(), b"5.6.7.8".to_vec()),
            ("x-echo".to_string(), b"v=ghp_realtoken123;".to_vec()),
            ("cookie".to_string(), b"a=1".to_vec()),
            ("cookie".to_string(), b"b=2".to_vec()),
        ];
        let m = redact_headers(&h, &s);
        assert_eq!(m["Authorization"], "***");
        assert_eq!(m["X-Forwarded-For"], "1.2.3.4, 5.6.7.8");
        assert_eq!(m["X-Echo"], "v=[REDACTED credential];");
        assert_eq!(m["Cookie"], "***");
        assert!(!format!("{m:?}").contains("ghp_realtoken123"));
    }

    #[test]
    fn text_redaction_covers_overlaps_and_ignores_empty_secrets() {
        assert_eq!(
            redact_text("a secret b secret", &secrets(&["secret", ""])),
            "a [REDACTED credential] b [REDACTED credential]"
        );
        assert_eq!(redact_text("abc", &secrets(&["", ""])), "abc");
        // Overlapping secrets of different lengths leave no fragment of either.
        assert_eq!(
            redact_text("xabcdy", &secrets(&["abcd", "xab"])),
            "[REDACTED credential]y"
        );
        // Self-overlapping occurrences.
        assert_eq!(
            redact_text("aaaaa-", &secrets(&["aaa"])),
            "[REDACTED credential]-"
        );
        // Adjacent occurrences stay two markers.
        assert_eq!(
            redact_text("tktk", &secrets(&["tk"])),
            "[REDACTED credential][REDACTED credential]"
        );
        // Multi-byte text stays intact around the marker.
        assert_eq!(
            redact_text("é-sé-é", &secrets(&["sé"])),
            "é-[REDACTED credential]-é"
        );
    }

    #[test]
    fn no_secret_survives_redaction() {
        // A deterministic sweep over texts built from secret fragments.
        let s = secrets(&["tok3n-AAAA", "AAAAtok", "zz9", "tok3n"]);
        let parts = ["tok3n-", "AAAA", "tok", "zz", "9", "-", "x", "é"];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            let mut text = String::new();
            for _ in 0..12 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                text.push_str(parts[(seed % parts.len() as u64) as usize]);
            }
            let out = redact_text(&text, &s);
            for secret in &s {
                assert!(
                    !out.contains(secret.as_str()),
                    "{secret} in {out} (from {text})"
                );
            }
            let sample = body_sample(text.as_bytes(), text.len() as u64, 17, &s);
            for secret in &s {
                assert!(!sample.contains(secret.as_str()), "{secret} in {sample}");
            }
        }
    }

    #[test]
    fn body_samples() {
        let s = secrets(&["sk-live-0123456789"]);
        assert_eq!(body_sample(b"", 0, 16, &s), "");
        assert_eq!(body_sample(b"hello\n", 6, 16, &s), "hello\n");
        assert_eq!(
            body_sample(b"key=sk-live-0123456789", 22, 64, &s),
            "key=[REDACTED credential]"
        );
        assert_eq!(
            body_sample(b"0123456789abcdef", 100, 8, &s),
            "01234567\n[clawpatrol:body-truncated]"
        );
        // Only the first bytes were given, the body was longer.
        assert_eq!(
            body_sample(b"01234567", 100, 8, &s),
            "01234567\n[clawpatrol:body-truncated]"
        );
        // A secret cut by the cap is hidden too.
        assert_eq!(
            body_sample(b"t=sk-live-0123456789", 20, 12, &s),
            "t=[REDACTED credential]\n[clawpatrol:body-truncated]"
        );
        // A cap inside a multi-byte character keeps the sample textual.
        assert_eq!(
            body_sample("aé".as_bytes(), 3, 2, &s),
            "a\n[clawpatrol:body-truncated]"
        );
        let bin = [0u8, 1, 2, 0xff];
        assert_eq!(body_sample(&bin, 4, 16, &s), "binary:000102ff");
        let long = vec![0u8; 100];
        assert_eq!(
            body_sample(&long, 100, 80, &s),
            format!("binary:{}{BODY_TRUNCATED}", "00".repeat(64))
        );
        let mut with_secret = vec![0u8, 1];
        with_secret.extend_from_slice(b"sk-live-0123456789");
        let out = body_sample(&with_secret, with_secret.len() as u64, 64, &s);
        assert_eq!(
            out,
            format!("binary:0001{}", hex::encode(REDACTED)),
            "binary samples are redacted before hex encoding"
        );
    }

    #[test]
    fn actions_are_redacted() {
        let s = secrets(&["ghp_real_secret_value"]);
        let mut a = Action::from_json(&json!({
            "host": "api.github.com", "credential": "pat",
            "http": {"method": "POST", "path": "/x/ghp_real_secret_value",
                     "query": {"t": ["ghp_real_secret_value"]},
                     "headers": {"Authorization": ["Bearer ghp_real_secret_value"],
                                 "X-Api-Key": ["k"], "X-Echo": ["ghp_real_secret_value"],
                                 "Accept": ["*/*"]},
                     "body": "{\"token\":\"ghp_real_secret_value\"}"}
        }))
        .unwrap();
        redact_action(&mut a, &s);
        let v = serde_json::to_value(&a).unwrap();
        assert!(!v.to_string().contains("ghp_real_secret_value"), "{v}");
        assert_eq!(v["http"]["headers"]["Authorization"], json!(["***"]));
        assert_eq!(v["http"]["headers"]["X-Api-Key"], json!(["***"]));
        assert_eq!(v["http"]["headers"]["Accept"], json!(["*/*"]));
        assert_eq!(v["http"]["path"], "/x/[REDACTED credential]");
        assert_eq!(v["credential"], "pat");

        for raw in [
            json!({"sql": {"statement": "select 'ghp_real_secret_value'", "database": "d"}}),
            json!({"ssh": {"verb": "exec", "command": "echo ghp_real_secret_value"}}),
            json!({"k8s": {"verb": "get", "resource": "pods",
                           "params": {"token": "ghp_real_secret_value"}}}),
        ] {
            let mut a = Action::from_json(&raw).unwrap();
            redact_action(&mut a, &s);
            let v = serde_json::to_value(&a).unwrap();
            assert!(!v.to_string().contains("ghp_real_secret_value"), "{v}");
            assert!(v.to_string().contains(REDACTED), "{v}");
        }
    }

    /// Every occurrence, found position by position (the reference for [`spans`]).
    fn naive_spans(bytes: &[u8], secrets: &[String]) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for s in secrets
            .iter()
            .map(String::as_bytes)
            .filter(|s| !s.is_empty())
        {
            for i in 0..bytes.len() {
                if bytes[i..].starts_with(s) {
                    out.push((i, i + s.len()));
                }
            }
        }
        out
    }

    proptest::proptest! {
        /// Short and long texts (both sides of `SHORT_TEXT`) redact exactly as a
        /// position-by-position search does.
        #[test]
        fn redaction_matches_a_naive_search(
            pieces in proptest::collection::vec(0usize..6, 0..220),
            secret_picks in proptest::collection::vec(0usize..6, 1..4),
        ) {
            let alphabet = ["ab", "a", "b", "sk-", "é", "x"];
            let text: String = pieces.iter().map(|&i| alphabet[i]).collect();
            let pool = ["ab", "aba", "sk-ab", "bb", "é", "sk-aab-x-"];
            let s: Vec<String> = secret_picks.iter().map(|&i| pool[i].to_string()).collect();
            let expected = replace_spans(text.as_bytes(), naive_spans(text.as_bytes(), &s));
            proptest::prop_assert_eq!(redact_bytes(text.as_bytes(), &s), expected);
        }
    }
}
