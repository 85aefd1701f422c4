//! Facts and actions from parsed HTTP requests (reference §3.1, §3.2): the bridge from
//! `clawpatrol_protocols::http` and `clawpatrol_protocols::k8s` to [`Action`].

use clawpatrol_protocols::http::{InspectedBody, RequestHead, RequestParts};
use clawpatrol_protocols::k8s;

use super::action::{Action, Facts};
use super::http::HttpFacts;
use super::k8s::K8sFacts;

/// The `http.*` facts of a request: decoded path, query, headers, and the inspected body
/// when the method buffers one (POST, PUT, PATCH or an async-retry request), else empty.
pub fn http_facts(head: &RequestHead, body: &InspectedBody) -> HttpFacts {
    let parts = RequestParts::from_head(head);
    let body = if head.body_is_inspected() {
        body.bytes().to_vec()
    } else {
        Vec::new()
    };
    HttpFacts::new(&parts.method, &parts.path, parts.query, parts.headers, body)
}

/// The `k8s.*` facts of a request target, or `None` when it is not k8s-shaped.
pub fn k8s_request_facts(head: &RequestHead) -> Option<K8sFacts> {
    k8s::decompose(&head.method, &head.target).map(|k| {
        K8sFacts {
            verb: k.verb,
            resource: k.resource,
            namespace: k.namespace,
            name: k.name,
            params: k.params,
        }
        .normalized()
    })
}

/// The facts of a request to a `kubernetes` endpoint: http facts plus the k8s reading.
pub fn k8s_facts(head: &RequestHead, body: &InspectedBody) -> Facts {
    Facts::K8s {
        http: http_facts(head, body),
        k8s: k8s_request_facts(head),
    }
}

/// Whether the inspected body was cut at the cap (only bodies that are inspected count).
fn truncated(head: &RequestHead, body: &InspectedBody) -> bool {
    head.body_is_inspected() && body.truncated()
}

/// The `Host` header of the request, trimmed; empty when absent.
fn host_of(head: &RequestHead) -> String {
    head.header_values("host")
        .next()
        .map(|h| String::from_utf8_lossy(h.trim_ascii()).into_owned())
        .unwrap_or_default()
}

/// An `http` action for a request: facts, `truncated` from the inspection view, and the
/// host from the `Host` header (override with [`Action::with_host`]).
pub fn http_action(head: &RequestHead, body: &InspectedBody) -> Action {
    let mut action = Action::new(Facts::Http(http_facts(head, body))).with_host(host_of(head));
    action.truncated = truncated(head, body);
    action
}

/// A `k8s` action for a request to a `kubernetes` endpoint; see [`http_action`].
pub fn k8s_action(head: &RequestHead, body: &InspectedBody) -> Action {
    let mut action = Action::new(k8s_facts(head, body)).with_host(host_of(head));
    action.truncated = truncated(head, body);
    action
}

/// An action for a request described by method and URL (absolute `https://host/path?q` or a
/// path `/path?q`), as in-process callers (the bindings) describe one: the same facts the
/// gateway derives from the request bytes. The body is inspected whole (nothing truncated).
pub fn action_from_url(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
    kubernetes: bool,
) -> Action {
    let (host, target) = split_url(url);
    let mut wire_headers: Vec<(String, Vec<u8>)> = Vec::with_capacity(headers.len() + 1);
    let has_host = headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host"));
    if !has_host && !host.is_empty() {
        wire_headers.push(("Host".to_string(), host.as_bytes().to_vec()));
    }
    wire_headers.extend(
        headers
            .iter()
            .map(|(k, v)| (k.clone(), v.as_bytes().to_vec())),
    );
    let head = RequestHead {
        method: method.to_string(),
        target: target.to_string(),
        version: clawpatrol_protocols::http::Version::Http11,
        headers: wire_headers,
        head_len: 0,
    };
    let body = InspectedBody::from_bytes(body);
    if kubernetes {
        k8s_action(&head, &body)
    } else {
        http_action(&head, &body)
    }
}

/// `https://host:port/p?q` → (`host:port`, `/p?q`); a bare target has no host.
fn split_url(url: &str) -> (&str, &str) {
    let rest = match url.split_once("://") {
        Some((_, rest)) => rest,
        None => return ("", if url.is_empty() { "/" } else { url }),
    };
    match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], &rest[i..]),
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    }
}

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn urls_split_into_host_and_target() {
        assert_eq!(
            split_url("https://api.github.com/repos/x?a=1"),
            ("api.github.com", "/repos/x?a=1")
        );
        assert_eq!(split_url("https://h:8443"), ("h:8443", "/"));
        assert_eq!(split_url("https://h?x=1"), ("h", "?x=1"));
        assert_eq!(split_url("/p"), ("", "/p"));
        let a = action_from_url(
            "DELETE",
            "https://api.github.com/repos/a%20b?x=1&x=2",
            &[],
            vec![],
            false,
        );
        assert_eq!(a.host, "api.github.com");
        match &a.facts {
            Facts::Http(h) => {
                assert_eq!(h.method(), "delete");
                assert_eq!(h.path(), "/repos/a b");
                assert_eq!(h.query()["x"], vec!["1".to_string(), "2".to_string()]);
            }
            other => panic!("{other:?}"),
        }
        let k = action_from_url(
            "GET",
            "https://k8s:6443/api/v1/namespaces/dev/pods?watch=true",
            &[],
            vec![],
            true,
        );
        match &k.facts {
            Facts::K8s { k8s: Some(k), .. } => {
                assert_eq!(
                    (k.verb.as_str(), k.resource.as_str(), k.namespace.as_str()),
                    ("watch", "pods", "dev")
                );
            }
            other => panic!("{other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Verdict;
    use crate::Policy;
    use clawpatrol_protocols::http::{
        request_framing, BodyDecoder, HeadProgress, Limits, RequestHeadParser,
    };

    /// Parses raw request bytes into a head and its inspection view.
    fn parse(raw: &[u8], limits: Limits) -> (RequestHead, InspectedBody) {
        let mut parser = RequestHeadParser::new(limits);
        let HeadProgress::Complete { head, consumed } = parser.feed(raw).unwrap() else {
            panic!("incomplete head")
        };
        let mut decoder = BodyDecoder::new(request_framing(&head).unwrap(), &limits);
        let progress = decoder.feed(&raw[consumed..]).unwrap();
        assert!(progress.done);
        (head, decoder.take_inspected())
    }

    const POLICY: &str = r#"
schema_version = 1
endpoint "https" "api" { hosts = ["api.example.com"] }
endpoint "kubernetes" "cluster" { server = "k8s.example.com:6443" }
rule "no-prod-deploys" {
  endpoint  = https.api
  condition = "http.method == 'post' && http.path == '/v1/deploy' && http.body_json.env == 'prod'"
  verdict   = "deny"
  reason    = "no prod deploys"
}
rule "no-admin-query" {
  endpoint  = https.api
  condition = "'admin' in http.query && http.query.admin[0] == 'yes please'"
  verdict   = "deny"
}
rule "no-secrets" {
  endpoint  = kubernetes.cluster
  condition = "k8s.verb == 'get' && k8s.resource == 'secrets'"
  verdict   = "deny"
}
"#;

    #[test]
    fn http_facts_from_raw_request() {
        let raw = b"POST /v1/a%20b?x=1&x=2 HTTP/1.1\r\nHost: api.example.com\r\n\
                    content-type: application/json\r\nX-Multi: a\r\nx-multi: b\r\n\
                    Content-Length: 13\r\n\r\n{\"env\":\"dev\"}";
        let (head, body) = parse(raw, Limits::default());
        let f = http_facts(&head, &body);
        assert_eq!(f.method(), "post");
        assert_eq!(f.path(), "/v1/a b");
        assert_eq!(f.query()["x"], vec!["1", "2"]);
        assert_eq!(f.headers()["Content-Type"], vec!["application/json"]);
        assert_eq!(f.headers()["X-Multi"], vec!["a", "b"]);
        assert_eq!(f.body_json()["env"], "dev");
        let action = http_action(&head, &body);
        assert_eq!(action.host, "api.example.com");
        assert!(!action.truncated);
    }

    #[test]
    fn get_body_is_not_inspected() {
        let raw = b"GET /x HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd";
        let limits = Limits {
            body_buffer: 2,
            ..Limits::default()
        };
        let (head, body) = parse(raw, limits);
        assert!(body.truncated());
        let action = http_action(&head, &body);
        let Facts::Http(f) = &action.facts else {
            panic!()
        };
        assert!(f.body().is_empty());
        assert!(!action.truncated);
    }

    #[test]
    fn https_body_rule_decides_from_raw_bytes() {
        let policy = Policy::from_source("policy.hcl", POLICY).unwrap();
        let decide = |raw: &[u8], limits: Limits| {
            let (head, body) = parse(raw, limits);
            policy.decide(&http_action(&head, &body).with_endpoint("https.api"))
        };
        let prod = b"POST /v1/deploy HTTP/1.1\r\nHost: api.example.com\r\nTransfer-Encoding: chunked\r\n\r\n\
                     5\r\n{\"env\r\n9\r\n\":\"prod\"}\r\n0\r\n\r\n";
        let d = decide(prod, Limits::default());
        assert_eq!(d.verdict, Verdict::Deny);
        assert_eq!(d.rule.as_deref(), Some("no-prod-deploys"));
        let dev = b"POST /v1/deploy HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 13\r\n\r\n{\"env\":\"dev\"}";
        assert!(decide(dev, Limits::default()).is_allowed());
        // Over the inspection cap the body-derived field is unknown: the rule denies.
        let capped = Limits {
            body_buffer: 4,
            ..Limits::default()
        };
        let d = decide(dev, capped);
        assert_eq!(d.verdict, Verdict::Deny);
        assert_eq!(d.rule.as_deref(), Some("no-prod-deploys"));
        // Form-decoded query values (`+` is a space).
        let q = b"GET /v1/x?admin=yes+please HTTP/1.1\r\nHost: api.example.com\r\n\r\n";
        let d = decide(q, Limits::default());
        assert_eq!(d.rule.as_deref(), Some("no-admin-query"));
    }

    #[test]
    fn kubernetes_verb_rule_and_unshaped_url() {
        let policy = Policy::from_source("policy.hcl", POLICY).unwrap();
        let decide = |raw: &[u8]| {
            let (head, body) = parse(raw, Limits::default());
            policy.decide(&k8s_action(&head, &body).with_endpoint("kubernetes.cluster"))
        };
        let d = decide(b"GET /api/v1/namespaces/dev/secrets/db HTTP/1.1\r\nHost: k8s\r\n\r\n");
        assert_eq!(d.verdict, Verdict::Deny);
        assert_eq!(d.rule.as_deref(), Some("no-secrets"));
        assert!(!d.synthesized);
        assert!(decide(b"GET /api/v1/namespaces/dev/pods HTTP/1.1\r\n\r\n").is_allowed());
        let (head, body) = parse(b"GET /healthz/etcd HTTP/1.1\r\n\r\n", Limits::default());
        let Facts::K8s { k8s, .. } = k8s_facts(&head, &body) else {
            panic!()
        };
        assert_eq!(k8s, None);
        let d = decide(b"GET /healthz/etcd HTTP/1.1\r\n\r\n");
        assert_eq!(d.verdict, Verdict::Deny);
        assert!(d.synthesized);
        assert_eq!(d.rule.as_deref(), Some("no-secrets"));
    }
}
