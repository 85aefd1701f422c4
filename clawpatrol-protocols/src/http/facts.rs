//! Request facts per reference §3.1: decoded path, query map, grouped headers.

use std::collections::BTreeMap;

use super::head::{RequestHead, TargetForm};

/// The matchable parts of a request head (reference §3.1), before the core builds facts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestParts {
    /// The request method, as sent.
    pub method: String,
    /// The percent-decoded path without query (raw when the encoding is invalid).
    pub path: String,
    /// The query parameters, form-decoded, multi-valued.
    pub query: BTreeMap<String, Vec<String>>,
    /// Header values grouped by lower-cased name, in wire order, as lossy UTF-8.
    pub headers: BTreeMap<String, Vec<String>>,
}

impl RequestParts {
    /// Extracts the parts of `head`.
    pub fn from_head(head: &RequestHead) -> RequestParts {
        let (path, query) = match head.target_form() {
            TargetForm::Authority => ("", None),
            _ => split_target(&head.target),
        };
        let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in &head.headers {
            headers
                .entry(name.to_ascii_lowercase())
                .or_default()
                .push(String::from_utf8_lossy(value.trim_ascii()).into_owned());
        }
        RequestParts {
            method: head.method.clone(),
            path: percent_decode_path(path),
            query: query.map(query_map).unwrap_or_default(),
            headers,
        }
    }
}

/// Splits a request-target into its raw path and raw query. An absolute-form target loses
/// its scheme and authority (`http://h/p?q` → `/p`, `q`); `*` is its own path.
pub fn split_target(target: &str) -> (&str, Option<&str>) {
    let rest = match target.find("://") {
        Some(i) if !target.starts_with('/') => {
            let after = &target[i + 3..];
            match after.find(['/', '?']) {
                Some(j) => &after[j..],
                None => "",
            }
        }
        _ => target,
    };
    match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    }
}

fn unhex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `s`; `plus_is_space` turns `+` into a space (form decoding).
/// `None` when a `%` is not followed by two hex digits.
fn unescape(s: &str, plus_is_space: bool) -> Option<String> {
    if !s.contains(['%', '+']) {
        return Some(s.to_string());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = unhex(*bytes.get(i + 1)?)?;
                let lo = unhex(*bytes.get(i + 2)?)?;
                out.push((hi << 4) | lo);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// Percent-decodes a URL path; invalid percent-encoding keeps the raw path.
pub fn percent_decode_path(raw: &str) -> String {
    unescape(raw, false).unwrap_or_else(|| raw.to_string())
}

/// Parses a raw query as Go's `url.ParseQuery` does: `&`-separated pairs, form-decoded
/// (`+` is a space); pairs containing `;` or invalid percent-encoding are dropped.
pub fn query_map(raw: &str) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in raw.split('&') {
        if pair.is_empty() || pair.contains(';') {
            continue;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (Some(k), Some(v)) = (unescape(k, true), unescape(v, true)) else {
            continue;
        };
        map.entry(k).or_default().push(v);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head::parse_request_head;
    use crate::http::Limits;

    fn parts(raw: impl AsRef<[u8]>) -> RequestParts {
        let head = parse_request_head(raw.as_ref(), &Limits::default())
            .unwrap()
            .unwrap();
        RequestParts::from_head(&head)
    }

    #[test]
    fn path_is_decoded_without_query() {
        let p = parts("GET /a%20b/c%2Fd?x=1 HTTP/1.1\r\n\r\n");
        assert_eq!(p.path, "/a b/c/d");
        assert_eq!(p.method, "GET");
        assert_eq!(p.query["x"], vec!["1"]);
        assert_eq!(parts("GET /a+b HTTP/1.1\r\n\r\n").path, "/a+b");
        assert_eq!(parts("GET /bad%zz/x HTTP/1.1\r\n\r\n").path, "/bad%zz/x");
        assert_eq!(parts("GET /trail% HTTP/1.1\r\n\r\n").path, "/trail%");
    }

    #[test]
    fn query_is_form_decoded_and_multi_valued() {
        let q = query_map("a=1&a=2&b=x+y%21&empty=&flag&&c=%zz&d;e=1&%41=z");
        assert_eq!(q["a"], vec!["1", "2"]);
        assert_eq!(q["b"], vec!["x y!"]);
        assert_eq!(q["empty"], vec![""]);
        assert_eq!(q["flag"], vec![""]);
        assert_eq!(q["A"], vec!["z"]);
        assert!(!q.contains_key("c"));
        assert!(!q.contains_key("d"));
        assert_eq!(q.len(), 5);
    }

    #[test]
    fn absolute_and_authority_targets() {
        let p = parts("GET http://example.com:8080/v1/x%41?q=1 HTTP/1.1\r\n\r\n");
        assert_eq!(p.path, "/v1/xA");
        assert_eq!(p.query["q"], vec!["1"]);
        let p = parts("GET http://example.com?q=1 HTTP/1.1\r\n\r\n");
        assert_eq!(p.path, "");
        assert_eq!(p.query["q"], vec!["1"]);
        let p = parts("CONNECT example.com:443 HTTP/1.1\r\n\r\n");
        assert_eq!(p.path, "");
        assert!(p.query.is_empty());
    }

    #[test]
    fn headers_grouped_case_insensitively_in_wire_order() {
        let p =
            parts(&b"GET / HTTP/1.1\r\nX-A: 1\r\nHost: h\r\nx-a:  2 \r\nX-Bin: \xff\r\n\r\n"[..]);
        assert_eq!(p.headers["x-a"], vec!["1", "2"]);
        assert_eq!(p.headers["host"], vec!["h"]);
        assert_eq!(p.headers["x-bin"], vec!["\u{fffd}"]);
    }
}
