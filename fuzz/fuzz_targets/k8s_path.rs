//! Arbitrary method + request URI through the Kubernetes path decomposition: no panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (method, uri) = text.split_once(' ').unwrap_or(("GET", &text));
    if let Some(k) = clawpatrol_protocols::k8s::decompose(method, uri) {
        assert!(k.verb.is_empty() || k.verb.chars().all(|c| c.is_ascii_lowercase()));
    }
});
