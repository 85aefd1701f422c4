//! Arbitrary server bytes through the Postgres backend decoder (typed and SSL/GSSENC answer
//! modes, oversize streaming on and off): must not panic; decoded messages must re-encode and
//! decode to themselves.
#![no_main]

use clawpatrol_protocols::postgres::{BackendDecoder, BackendMessage, BackendMode, Decoded};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let mut d = BackendDecoder::with_max_payload(if control & 4 != 0 { 64 } else { 1 << 20 });
    d.set_stream_oversize(control & 8 != 0);
    d.set_mode(match control & 3 {
        1 => BackendMode::SslAnswer,
        2 => BackendMode::GssEncAnswer,
        _ => BackendMode::Typed,
    });
    let chunk = usize::from(control >> 4) + 1;
    for part in rest.chunks(chunk) {
        d.feed(part);
        loop {
            let _ = d.peek_header();
            match d.next_frame() {
                Ok(Some(Decoded::Message(m))) => {
                    let bytes = match m.to_bytes() {
                        Ok(b) => b,
                        Err(e) => panic!("decoded message must re-encode: {e}"),
                    };
                    if bytes.len() > 1 {
                        let again = BackendMessage::decode(bytes[0], &bytes[5..]);
                        assert_eq!(again.ok().as_ref(), Some(&m));
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }
});
