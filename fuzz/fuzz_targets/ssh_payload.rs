//! Arbitrary SSH message payloads through the channel open/request decoder: must not panic;
//! decoded messages must re-encode and decode to themselves (booleans re-encode as 0/1).
#![no_main]

use clawpatrol_protocols::ssh::{decode_payload, DEFAULT_MAX_PAYLOAD};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(m)) = decode_payload(data, DEFAULT_MAX_PAYLOAD) {
        let mut out = Vec::new();
        m.encode(&mut out).expect("decoded message re-encodes");
        assert_eq!(decode_payload(&out, DEFAULT_MAX_PAYLOAD), Ok(Some(m)));
    }
});
