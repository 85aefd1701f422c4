//! Arbitrary client bytes through the Postgres frontend decoder (both phases, every `p` kind,
//! oversize streaming on and off): must not panic; decoded messages must re-encode and decode
//! to themselves.
#![no_main]

use clawpatrol_protocols::postgres::{
    AuthResponseKind, Decoded, FrontendDecoder, FrontendMessage, FrontendPhase,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let kind = match control & 3 {
        0 => AuthResponseKind::Raw,
        1 => AuthResponseKind::Password,
        2 => AuthResponseKind::SaslInitial,
        _ => AuthResponseKind::Sasl,
    };
    let mut d = FrontendDecoder::with_max_payload(if control & 4 != 0 { 64 } else { 1 << 20 });
    d.set_stream_oversize(control & 8 != 0);
    d.set_auth_response_kind(kind);
    let chunk = usize::from(control >> 4) + 1;
    for part in rest.chunks(chunk) {
        d.feed(part);
        loop {
            let _ = d.peek_header();
            match d.next_frame() {
                Ok(Some(Decoded::Message(m))) => {
                    if matches!(m, FrontendMessage::Startup { .. }) {
                        d.set_phase(FrontendPhase::Typed);
                    }
                    let bytes = match m.to_bytes() {
                        Ok(b) => b,
                        Err(e) => panic!("decoded message must re-encode: {e}"),
                    };
                    let again = match m.tag() {
                        None => FrontendMessage::decode_startup(&bytes[4..]),
                        Some(tag) => FrontendMessage::decode_typed(tag, &bytes[5..], kind),
                    };
                    assert_eq!(again.ok().as_ref(), Some(&m));
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }
});
