//! Arbitrary config text: loading must return a policy or a located error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = clawpatrol_core::Policy::from_source("fuzz.hcl", text) {
            let _ = e.to_string();
        }
    }
});
