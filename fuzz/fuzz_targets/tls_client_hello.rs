//! Arbitrary bytes as the start of a TLS connection: the ClientHello peek must not panic,
//! and a complete answer must not change when more bytes follow.
#![no_main]

use clawpatrol_protocols::tls::{peek_client_hello, Peek};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Peek::Complete(hello)) = peek_client_hello(data) {
        let mut more = data.to_vec();
        more.extend_from_slice(b"\x17\x03\x03\x00\x00");
        assert_eq!(peek_client_hello(&more), Ok(Peek::Complete(hello)));
    }
});
