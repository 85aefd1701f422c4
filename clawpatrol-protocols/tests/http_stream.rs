//! HTTP/1.1 request and response streams fed in arbitrary splits: identical parses, byte-exact
//! body pass-through, capped inspection, and no panics on arbitrary bytes.

use clawpatrol_protocols::http::{
    request_framing, response_framing, BodyDecoder, BodyFraming, HeadProgress, HttpError,
    InspectedBody, Limits, RequestHead, RequestHeadParser, RequestParts, ResponseHead,
    ResponseHeadParser,
};
use proptest::prelude::*;

/// What a proxy sees of one request: its head, the raw body bytes it forwards, the
/// inspection view, and the bytes left over after the request.
#[derive(Debug, PartialEq)]
struct Seen {
    head: RequestHead,
    forwarded_body: Vec<u8>,
    inspected: InspectedBody,
    rest: Vec<u8>,
}

/// Drives a head parser and a body decoder over `raw` cut at `cuts`.
fn drive(raw: &[u8], cuts: &[usize], limits: Limits) -> Result<Option<Seen>, HttpError> {
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (raw.len() + 1)).collect();
    bounds.push(0);
    bounds.push(raw.len());
    bounds.sort_unstable();
    bounds.dedup();
    let mut parser = RequestHeadParser::new(limits);
    let mut head: Option<RequestHead> = None;
    let mut decoder: Option<BodyDecoder> = None;
    let mut forwarded = Vec::new();
    let mut rest = Vec::new();
    for w in bounds.windows(2) {
        let mut piece = &raw[w[0]..w[1]];
        if head.is_none() {
            match parser.feed(piece)? {
                HeadProgress::NeedMore => continue,
                HeadProgress::Complete { head: h, consumed } => {
                    decoder = Some(BodyDecoder::new(request_framing(&h)?, &limits));
                    head = Some(h);
                    piece = &piece[consumed..];
                }
            }
        }
        let Some(d) = decoder.as_mut() else { continue };
        if d.is_done() {
            rest.extend_from_slice(piece);
            continue;
        }
        let p = d.feed(piece)?;
        forwarded.extend_from_slice(&piece[..p.consumed]);
        rest.extend_from_slice(&piece[p.consumed..]);
    }
    match (head, decoder) {
        (Some(head), Some(mut d)) if d.is_done() => Ok(Some(Seen {
            head,
            forwarded_body: forwarded,
            inspected: d.take_inspected(),
            rest,
        })),
        _ => Ok(None),
    }
}

/// Encodes `payload` chunked with the given chunk sizes, extensions and trailers.
fn chunked(payload: &[u8], sizes: &[usize], trailers: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = payload;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes.get(i).copied().unwrap_or(7).clamp(1, rest.len());
        i += 1;
        let ext = if i % 3 == 0 { ";ext=1" } else { "" };
        out.extend_from_slice(format!("{n:x}{ext}\r\n").as_bytes());
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    out.extend_from_slice(b"0\r\n");
    if trailers {
        out.extend_from_slice(b"X-Checksum: abc\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

prop_compose! {
    /// A valid request: (raw bytes, expected raw body, expected payload).
    fn valid_request()(
        method in prop::sample::select(vec!["GET", "POST", "PUT", "PATCH", "DELETE"]),
        segs in prop::collection::vec("[a-z0-9%._-]{0,8}", 0..4),
        query in prop::option::of("[a-z0-9=&+%]{0,16}"),
        headers in prop::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,10}", "[ -~]{0,20}"), 0..6),
        payload in prop::collection::vec(any::<u8>(), 0..300),
        use_chunked in any::<bool>(),
        sizes in prop::collection::vec(1usize..64, 0..10),
        trailers in any::<bool>(),
    ) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let mut target = format!("/{}", segs.join("/"));
        if let Some(q) = query {
            target.push('?');
            target.push_str(&q);
        }
        let mut raw = format!("{method} {target} HTTP/1.1\r\nHost: example.com\r\n").into_bytes();
        for (name, value) in headers {
            let lower = name.to_ascii_lowercase();
            if lower == "content-length" || lower == "transfer-encoding" {
                continue;
            }
            raw.extend_from_slice(format!("{name}: {}\r\n", value.trim()).as_bytes());
        }
        let body = if use_chunked {
            raw.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
            chunked(&payload, &sizes, trailers)
        } else {
            raw.extend_from_slice(format!("Content-Length: {}\r\n", payload.len()).as_bytes());
            payload.clone()
        };
        raw.extend_from_slice(b"\r\n");
        raw.extend_from_slice(&body);
        (raw, body, payload)
    }
}

proptest! {
    #[test]
    fn split_feeds_parse_like_whole_feeds(
        (raw, body, payload) in valid_request(),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
        next in prop::collection::vec(any::<u8>(), 0..20),
        cap in 0usize..400,
    ) {
        let mut stream = raw.clone();
        stream.extend_from_slice(&next);
        let limits = Limits { body_buffer: cap, ..Limits::default() };
        let whole = drive(&stream, &[], limits).unwrap().unwrap();
        let split = drive(&stream, &cuts, limits).unwrap().unwrap();
        prop_assert_eq!(&whole, &split);
        // The forwarded body is exactly the raw body, byte for byte.
        prop_assert_eq!(&split.forwarded_body, &body);
        prop_assert_eq!(&split.rest, &next);
        prop_assert_eq!(split.head.head_len + body.len(), raw.len());
        // The inspection view is the decoded payload, capped.
        let keep = payload.len().min(cap);
        prop_assert_eq!(split.inspected.bytes(), &payload[..keep]);
        prop_assert_eq!(split.inspected.truncated(), payload.len() > cap);
        // Facts extraction never panics.
        let _ = RequestParts::from_head(&split.head);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..1024),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let limits = Limits { max_head_bytes: 512, max_headers: 8, body_buffer: 64 };
        let _ = drive(&bytes, &cuts, limits);
        let mut prefixed = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        prefixed.extend_from_slice(&bytes);
        let _ = drive(&prefixed, &cuts, limits);
        let mut res = ResponseHeadParser::new(limits);
        let _ = res.feed(&bytes);
        for framing in [BodyFraming::Chunked, BodyFraming::Length(100), BodyFraming::UntilClose] {
            let mut d = BodyDecoder::new(framing, &limits);
            let _ = d.feed(&bytes);
            let _ = d.finish();
        }
    }

    #[test]
    fn arbitrary_heads_never_panic(
        method in "[A-Z]{1,8}",
        target in "[ -~]{0,40}",
        headers in prop::collection::vec(("[ -~]{0,12}", "[ -~]{0,20}"), 0..6),
    ) {
        let mut raw = format!("{method} {target} HTTP/1.1\r\n");
        for (n, v) in headers {
            raw.push_str(&format!("{n}: {v}\r\n"));
        }
        raw.push_str("\r\n");
        if let Ok(HeadProgress::Complete { head, .. }) =
            RequestHeadParser::new(Limits::default()).feed(raw.as_bytes())
        {
            let _ = request_framing(&head);
            let _ = RequestParts::from_head(&head);
            let _ = head.expects_continue();
            let _ = head.is_websocket_upgrade();
            let _ = clawpatrol_protocols::k8s::decompose(&head.method, &head.target);
        }
    }
}

/// Parses a whole response head.
fn response(raw: &[u8]) -> (ResponseHead, usize) {
    match ResponseHeadParser::new(Limits::default()).feed(raw) {
        Ok(HeadProgress::Complete { head, consumed }) => (head, consumed),
        other => panic!("{other:?}"),
    }
}

#[test]
fn keep_alive_pipeline_of_two_requests() {
    let raw = b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\n\r\n";
    let first = drive(raw, &[], Limits::default()).unwrap().unwrap();
    assert_eq!(first.head.target, "/a");
    assert_eq!(first.forwarded_body, b"abc");
    let second = drive(&first.rest, &[], Limits::default()).unwrap().unwrap();
    assert_eq!(second.head.target, "/b");
    assert!(second.rest.is_empty());
}

#[test]
fn smuggling_requests_are_refused_before_any_body_byte() {
    for raw in [
        &b"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\nabcd",
        b"POST / HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcd",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 1_0\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length : 3\r\n\r\nabc",
        b"POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\n\r\n",
    ] {
        assert!(
            drive(raw, &[], Limits::default()).is_err(),
            "{}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn response_bodies_pass_through_and_heads_are_sanitised() {
    let raw = b"HTTP/1.1 200 OK\r\nSet-Cookie: s=1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nSet-Cookie: t=2\r\n\r\n";
    let (mut head, consumed) = response(raw);
    let framing = response_framing("GET", &head).unwrap();
    assert_eq!(framing, BodyFraming::Chunked);
    let mut d = BodyDecoder::new(framing, &Limits::default());
    let p = d.feed(&raw[consumed..]).unwrap();
    assert!(p.done);
    assert_eq!(p.consumed, raw.len() - consumed);
    assert_eq!(d.inspected().bytes(), b"abc");
    assert_eq!(d.raw_trailers(), b"Set-Cookie: t=2\r\n");
    let clean = clawpatrol_protocols::http::strip_credential_headers(&mut head);
    assert_eq!(
        clean,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    // A close-delimited response ends when the caller reports the close.
    let raw = b"HTTP/1.0 200 OK\r\n\r\nall of it";
    let (head, consumed) = response(raw);
    let mut d = BodyDecoder::new(response_framing("GET", &head).unwrap(), &Limits::default());
    assert_eq!(d.feed(&raw[consumed..]).unwrap().consumed, 9);
    assert!(!d.is_done());
    d.finish().unwrap();
    assert!(d.is_done());
    // HEAD responses and 304 carry no body even with a Content-Length.
    let (head, _) = response(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n");
    assert_eq!(response_framing("GET", &head), Ok(BodyFraming::None));
}

#[test]
fn expect_continue_request_waits_for_body() {
    let raw = b"PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
    let mut parser = RequestHeadParser::new(Limits::default());
    let HeadProgress::Complete { head, consumed } = parser.feed(raw).unwrap() else {
        panic!()
    };
    assert_eq!(consumed, raw.len());
    assert!(head.expects_continue());
    let mut d = BodyDecoder::new(request_framing(&head).unwrap(), &Limits::default());
    assert!(!d.feed(b"").unwrap().done);
    assert!(d.feed(b"ok").unwrap().done);
}
