//! Arbitrary action JSON (what `clawpatrol eval`, fixtures and the bindings accept): parsing
//! and deciding must not panic.
#![no_main]

use std::sync::OnceLock;

use clawpatrol_core::{Action, Policy};
use libfuzzer_sys::fuzz_target;

fn policy() -> &'static Policy {
    static P: OnceLock<Policy> = OnceLock::new();
    P.get_or_init(|| {
        let text = include_str!("../../fixtures/examples/platform/policy.hcl");
        match Policy::from_source("policy.hcl", text) {
            Ok(p) => p,
            Err(e) => panic!("bundled policy must load: {e}"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    if let Ok(action) = Action::from_json(&value) {
        let _ = policy().decide_traced(&action);
        let _ = policy().decide_fail_closed(&action);
    }
});
