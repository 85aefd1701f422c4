//! Bytes recorded from real clients (`tests/vectors/README.md` says how) through the
//! gateway's parsers: the protocol-level facts they yield.

use clawpatrol_protocols::http::{
    request_framing, BodyDecoder, HeadProgress, InspectedBody, Limits, RequestHead,
    RequestHeadParser, RequestParts,
};
use clawpatrol_protocols::k8s;
use clawpatrol_protocols::postgres::{Decoded, FrontendDecoder, FrontendMessage};

fn vector(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Parses one request (head and body) fed in `step`-byte pieces; returns the head, the
/// inspection view, the raw body bytes forwarded and the bytes left over.
fn request(raw: &[u8], step: usize) -> (RequestHead, InspectedBody, Vec<u8>, usize) {
    let limits = Limits::default();
    let mut parser = RequestHeadParser::new(limits);
    let mut head = None;
    let mut decoder: Option<BodyDecoder> = None;
    let mut forwarded = Vec::new();
    let mut left = 0;
    for piece in raw.chunks(step) {
        let mut piece = piece;
        if head.is_none() {
            match parser.feed(piece).expect("head parses") {
                HeadProgress::NeedMore => continue,
                HeadProgress::Complete { head: h, consumed } => {
                    decoder = Some(BodyDecoder::new(
                        request_framing(&h).expect("framing"),
                        &limits,
                    ));
                    head = Some(h);
                    piece = &piece[consumed..];
                }
            }
        }
        let d = decoder.as_mut().expect("decoder after head");
        if d.is_done() {
            left += piece.len();
            continue;
        }
        let p = d.feed(piece).expect("body decodes");
        forwarded.extend_from_slice(&piece[..p.consumed]);
        left += piece.len() - p.consumed;
    }
    let mut d = decoder.expect("complete head");
    assert!(d.is_done(), "body complete");
    (head.expect("head"), d.take_inspected(), forwarded, left)
}

#[test]
fn curl_get_with_headers() {
    let raw = vector("curl_get.bin");
    for step in [1, 7, raw.len()] {
        let (head, body, fwd, left) = request(&raw, step);
        assert_eq!(head.method, "GET");
        assert_eq!(head.head_len, raw.len());
        assert!(fwd.is_empty() && body.bytes().is_empty() && left == 0);
        let parts = RequestParts::from_head(&head);
        assert_eq!(parts.path, "/repos/acme/app/issues");
        assert_eq!(parts.query["state"], vec!["open"]);
        assert_eq!(parts.query["per_page"], vec!["5"]);
        assert_eq!(parts.headers["authorization"], vec!["Bearer ph_token_123"]);
        assert_eq!(parts.headers["user-agent"], vec!["curl/7.88.1"]);
        assert_eq!(parts.headers["x-request-id"], vec!["42"]);
    }
}

#[test]
fn curl_post_json_body() {
    let raw = vector("curl_post_json.bin");
    let (head, body, fwd, left) = request(&raw, 5);
    assert_eq!(head.method, "POST");
    assert!(head.body_is_inspected());
    assert_eq!(body.bytes(), br#"{"name":"agent","tags":["a","b"]}"#);
    assert!(!body.truncated());
    assert_eq!(fwd, body.bytes());
    assert_eq!(left, 0);
    let parts = RequestParts::from_head(&head);
    assert_eq!(parts.path, "/v1/items");
    assert_eq!(parts.headers["content-type"], vec!["application/json"]);
}

#[test]
fn curl_chunked_upload() {
    let raw = vector("curl_chunked_upload.bin");
    for step in [1, 13, raw.len()] {
        let (head, body, fwd, left) = request(&raw, step);
        assert_eq!(head.method, "POST");
        assert_eq!(
            head.header_values("transfer-encoding").next(),
            Some(&b"chunked"[..])
        );
        // curl's file is 4000 base64 bytes; the decoder forwards the chunked framing
        // byte-exact and inspects the de-chunked payload.
        assert_eq!(body.bytes().len(), 4000);
        assert!(body
            .bytes()
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(b)));
        assert_eq!(head.head_len + fwd.len(), raw.len());
        assert_eq!(left, 0);
    }
}

/// Decodes frontend messages fed one byte at a time (after an SSLRequest the listener
/// answered `N`, so the client stays in the startup phase).
fn pg_messages(raw: &[u8]) -> Vec<FrontendMessage> {
    let mut d = FrontendDecoder::new();
    let mut out = Vec::new();
    for b in raw {
        d.feed(std::slice::from_ref(b));
        while let Some(m) = d.next_frame().expect("frontend decodes") {
            match m {
                Decoded::Message(m) => out.push(m),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    out
}

#[test]
fn psql_startup_sslmode_disable() {
    let raw = vector("psql_startup_disable.bin");
    let msgs = pg_messages(&raw);
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert!(matches!(m, FrontendMessage::Startup { .. }));
    assert_eq!(m.startup_param("user"), Some("agent"));
    assert_eq!(m.startup_param("database"), Some("app"));
    assert_eq!(m.startup_param("application_name"), Some("psql"));
}

#[test]
fn psql_sslrequest_then_startup_sslmode_prefer() {
    let raw = vector("psql_sslrequest_prefer.bin");
    let msgs = pg_messages(&raw);
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0], FrontendMessage::SslRequest);
    assert_eq!(msgs[1].startup_param("user"), Some("agent"));
    assert_eq!(msgs[1].startup_param("database"), Some("app"));
}

fn k8s_of(name: &str) -> (RequestHead, k8s::K8sRequest) {
    let raw = vector(name);
    let (head, _, _, left) = request(&raw, raw.len());
    assert_eq!(left, 0);
    let k = k8s::decompose(&head.method, &head.target).expect("k8s-shaped");
    (head, k)
}

#[test]
fn kubectl_get_pods_in_namespace() {
    let (head, k) = k8s_of("kubectl_get_pods.bin");
    assert!(head
        .header_values("user-agent")
        .next()
        .is_some_and(|v| v.starts_with(b"kubectl/v1.32.4")));
    assert_eq!(
        (k.verb.as_str(), k.resource.as_str(), k.namespace.as_str()),
        ("list", "pods", "dev")
    );
    assert_eq!(k.name, "");
    assert_eq!(k.params.get("limit").map(String::as_str), Some("500"));
}

#[test]
fn kubectl_exec_reads_the_pod_then_execs() {
    let (_, k) = k8s_of("kubectl_get_pod.bin");
    assert_eq!((k.verb.as_str(), k.resource.as_str()), ("get", "pods"));
    assert_eq!((k.namespace.as_str(), k.name.as_str()), ("dev", "web-0"));

    // kubectl 1.32 first tries a WebSocket upgrade (GET), then falls back to SPDY (POST).
    let (ws, k) = k8s_of("kubectl_exec_websocket.bin");
    assert!(ws.is_websocket_upgrade());
    assert_eq!(k.resource, "pods/exec");
    assert_eq!((k.namespace.as_str(), k.name.as_str()), ("dev", "web-0"));
    assert_eq!(k.params.get("command").map(String::as_str), Some("ls"));
    assert_eq!(k.params.get("container").map(String::as_str), Some("web"));
    let ws_verb = k.verb;

    let (spdy, k) = k8s_of("kubectl_exec_spdy.bin");
    assert_eq!(spdy.method, "POST");
    assert_eq!(spdy.header_values("upgrade").next(), Some(&b"SPDY/3.1"[..]));
    assert_eq!(k.resource, "pods/exec");
    assert_eq!(k.verb, "create");
    assert_eq!(ws_verb, "get");
}
