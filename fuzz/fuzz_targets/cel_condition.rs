//! Arbitrary CEL text: compiling for every family and evaluating on a fixed action must not
//! panic.
#![no_main]

use clawpatrol_core::facts::{Action, Facts, HttpFacts};
use clawpatrol_core::Family;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let action = Action::new(Facts::Http(HttpFacts::new(
        "POST",
        "/repos/a/b",
        Default::default(),
        Default::default(),
        br#"{"a":[1,2,{"b":"c"}],"n":1.5}"#.to_vec(),
    )));
    for family in [Family::Http, Family::K8s, Family::Sql, Family::Ssh] {
        if let Ok(c) = clawpatrol_core::cel::compile(text, family) {
            let _ = c.eval(&action);
        }
    }
});
