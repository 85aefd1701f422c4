//! Arbitrary bytes as an HTTP/1.1 request stream, fed whole and in two pieces: the head
//! parser, the body framing, the body decoder, facts extraction and the k8s reading must not
//! panic, and the split feed must parse as the whole feed does.
#![no_main]

use clawpatrol_protocols::http::{
    request_framing, BodyDecoder, HeadProgress, Limits, RequestHeadParser, RequestParts,
};
use libfuzzer_sys::fuzz_target;

/// Parses one request from `pieces`; returns the head, forwarded body and inspected bytes.
fn run(pieces: &[&[u8]], limits: Limits) -> Option<(String, Vec<u8>, Vec<u8>, bool)> {
    let mut parser = RequestHeadParser::new(limits);
    let mut decoder: Option<BodyDecoder> = None;
    let mut target = String::new();
    let mut forwarded = Vec::new();
    for piece in pieces {
        let mut piece: &[u8] = piece;
        if decoder.is_none() {
            match parser.feed(piece).ok()? {
                HeadProgress::NeedMore => continue,
                HeadProgress::Complete { head, consumed } => {
                    let _ = RequestParts::from_head(&head);
                    let _ = clawpatrol_protocols::k8s::decompose(&head.method, &head.target);
                    let _ = (head.expects_continue(), head.is_websocket_upgrade());
                    target = head.target.clone();
                    decoder = Some(BodyDecoder::new(request_framing(&head).ok()?, &limits));
                    piece = &piece[consumed..];
                }
            }
        }
        if let Some(d) = decoder.as_mut() {
            let p = d.feed(piece).ok()?;
            assert!(p.consumed <= piece.len());
            forwarded.extend_from_slice(&piece[..p.consumed]);
        }
    }
    let d = decoder?;
    let inspected = d.inspected();
    assert!(inspected.bytes().len() <= limits.body_buffer);
    Some((target, forwarded, inspected.bytes().to_vec(), d.is_done()))
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_head_bytes: 4096,
        max_headers: 32,
        body_buffer: 256,
    };
    let whole = run(&[data], limits);
    let cut = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let split = run(&[&data[..cut], &data[cut..]], limits);
    if let (Some(w), Some(s)) = (&whole, &split) {
        if w.3 && s.3 {
            assert_eq!(w, s);
        }
    }
});
