//! Arbitrary bytes as an HTTP/1.1 response: head parsing, framing for several request
//! methods, body decoding and credential-header stripping must not panic.
#![no_main]

use clawpatrol_protocols::http::{
    response_framing, strip_credential_headers, strip_credential_trailers, BodyDecoder,
    HeadProgress, Limits, ResponseHeadParser,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_head_bytes: 4096,
        max_headers: 32,
        body_buffer: 256,
    };
    let Ok(HeadProgress::Complete { mut head, consumed }) =
        ResponseHeadParser::new(limits).feed(data)
    else {
        return;
    };
    for method in ["GET", "HEAD", "CONNECT"] {
        if let Ok(framing) = response_framing(method, &head) {
            let mut d = BodyDecoder::new(framing, &limits);
            if let Ok(p) = d.feed(&data[consumed..]) {
                assert!(p.consumed <= data.len() - consumed);
                let _ = d.finish();
                let kept = strip_credential_trailers(d.raw_trailers());
                assert!(kept.len() <= d.raw_trailers().len());
            }
        }
    }
    let bytes = strip_credential_headers(&mut head);
    assert_eq!(bytes.len(), head.head_len);
});
