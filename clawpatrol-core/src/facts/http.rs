//! HTTP request facts (`http.*`, reference §2.3 and §3.1).

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The facts of one HTTP request, as rules see them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HttpFacts {
    method: String,
    path: String,
    query: BTreeMap<String, Vec<String>>,
    headers: BTreeMap<String, Vec<String>>,
    body: Vec<u8>,
    body_text: String,
    body_json: serde_json::Value,
}

impl HttpFacts {
    /// Builds the facts: lower-cases the method, canonicalises header names and parses
    /// `body_json` from any JSON body (else `{}`). `body` is the inspected (possibly capped) body.
    pub fn new(
        method: &str,
        path: &str,
        query: BTreeMap<String, Vec<String>>,
        headers: BTreeMap<String, Vec<String>>,
        body: Vec<u8>,
    ) -> HttpFacts {
        let mut canonical: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in headers {
            canonical
                .entry(canonical_header_key(&k))
                .or_default()
                .extend(v);
        }
        let body_text = String::from_utf8_lossy(&body).into_owned();
        let body_json = parse_body_json(&body);
        HttpFacts {
            method: method.to_ascii_lowercase(),
            path: path.to_string(),
            query,
            headers: canonical,
            body,
            body_text,
            body_json,
        }
    }

    /// The lower-cased request method.
    pub fn method(&self) -> &str {
        &self.method
    }
    /// The percent-decoded path, without query.
    pub fn path(&self) -> &str {
        &self.path
    }
    /// Query parameters (multi-valued).
    pub fn query(&self) -> &BTreeMap<String, Vec<String>> {
        &self.query
    }
    /// Request headers keyed by canonical name (`Content-Type`).
    pub fn headers(&self) -> &BTreeMap<String, Vec<String>> {
        &self.headers
    }
    /// The inspected body bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
    /// The inspected body as text (invalid UTF-8 replaced).
    pub fn body_text(&self) -> &str {
        &self.body_text
    }
    /// The body parsed as JSON, or an empty object.
    pub fn body_json(&self) -> &serde_json::Value {
        &self.body_json
    }
}

/// Parses any JSON value from `body`; an empty or non-JSON body yields `{}`.
fn parse_body_json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or_else(|_| serde_json::Value::Object(Default::default()))
}

/// Go's canonical MIME header form: `content-type` → `Content-Type`. Keys holding bytes that
/// are not HTTP token characters are returned unchanged, as Go does.
pub fn canonical_header_key(key: &str) -> String {
    let valid = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return key.to_string();
    }
    let mut out = String::with_capacity(key.len());
    let mut upper = true;
    for c in key.chars() {
        if upper {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c.to_ascii_lowercase());
        }
        upper = c == '-';
    }
    out
}

/// The fixture form of the `http` block (reference §7.2).
#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct HttpWire {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub method: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, Vec<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_b64: Option<String>,
}

impl TryFrom<HttpWire> for HttpFacts {
    type Error = String;
    fn try_from(w: HttpWire) -> Result<HttpFacts, String> {
        let body = match (w.body, w.body_b64) {
            (Some(_), Some(_)) => {
                return Err("http: body and body_b64 are mutually exclusive".to_string())
            }
            (Some(b), None) => b.into_bytes(),
            (None, Some(b)) => base64::engine::general_purpose::STANDARD
                .decode(b.as_bytes())
                .map_err(|e| format!("http.body_b64: {e}"))?,
            (None, None) => Vec::new(),
        };
        Ok(HttpFacts::new(&w.method, &w.path, w.query, w.headers, body))
    }
}

impl From<&HttpFacts> for HttpWire {
    fn from(f: &HttpFacts) -> HttpWire {
        let (body, body_b64) = if f.body.is_empty() {
            (None, None)
        } else {
            match std::str::from_utf8(&f.body) {
                Ok(s) => (Some(s.to_string()), None),
                Err(_) => (
                    None,
                    Some(base64::engine::general_purpose::STANDARD.encode(&f.body)),
                ),
            }
        };
        HttpWire {
            method: f.method.clone(),
            path: f.path.clone(),
            query: f.query.clone(),
            headers: f.headers.clone(),
            body,
            body_b64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_keys_follow_go() {
        assert_eq!(canonical_header_key("content-type"), "Content-Type");
        assert_eq!(canonical_header_key("X-API-KEY"), "X-Api-Key");
        assert_eq!(canonical_header_key("authorization"), "Authorization");
        assert_eq!(canonical_header_key("bad key"), "bad key");
    }

    #[test]
    fn body_json_any_value_or_empty_object() {
        let f = HttpFacts::new(
            "POST",
            "/",
            Default::default(),
            Default::default(),
            b"[1,2]".to_vec(),
        );
        assert_eq!(f.body_json(), &serde_json::json!([1, 2]));
        assert_eq!(f.method(), "post");
        let g = HttpFacts::new(
            "POST",
            "/",
            Default::default(),
            Default::default(),
            b"nope".to_vec(),
        );
        assert_eq!(g.body_json(), &serde_json::json!({}));
    }

    #[test]
    fn headers_merge_under_canonical_key() {
        let mut h = BTreeMap::new();
        h.insert("x-a".to_string(), vec!["1".to_string()]);
        h.insert("X-A".to_string(), vec!["2".to_string()]);
        let f = HttpFacts::new("get", "/", Default::default(), h, vec![]);
        assert_eq!(f.headers()["X-A"], vec!["2".to_string(), "1".to_string()]);
    }
}
