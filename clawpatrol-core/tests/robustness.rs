//! Property tests: the parsers of untrusted input (config text, CEL text, action JSON) never
//! panic, and every config error they report is located in the source.

use clawpatrol_core::{Action, Family, Policy, Severity};
use proptest::prelude::*;

const PLATFORM: &str = include_str!("../../fixtures/examples/platform/policy.hcl");

fn policy() -> &'static Policy {
    static P: std::sync::OnceLock<Policy> = std::sync::OnceLock::new();
    P.get_or_init(|| Policy::from_source("policy.hcl", PLATFORM).expect("platform policy loads"))
}

/// Applies byte-level edits to a valid config, keeping the result UTF-8.
fn mutate(base: &str, edits: &[(usize, u8, u8)]) -> String {
    let mut bytes = base.as_bytes().to_vec();
    for &(pos, op, byte) in edits {
        if bytes.is_empty() {
            break;
        }
        let at = pos % bytes.len();
        const ALPHABET: &[u8] = b" \n\"{}[]=.,#*-_:/\\$<>'()!&|0123456789abcxyz";
        let b = ALPHABET[byte as usize % ALPHABET.len()];
        match op % 3 {
            0 => {
                bytes.remove(at);
            }
            1 => bytes.insert(at, b),
            _ => bytes[at] = b,
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn check_located(text: &str) {
    if let Err(e) = Policy::from_source("m.hcl", text) {
        assert!(
            e.first().is_some(),
            "a refused config names at least one error"
        );
        for d in e
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
        {
            let loc = d
                .location
                .as_ref()
                .unwrap_or_else(|| panic!("unlocated error: {d}"));
            assert_eq!(loc.file, "m.hcl");
            assert!(
                loc.line >= 1 && loc.line <= text.lines().count().max(1) + 1,
                "{d}"
            );
            let _ = d.to_string();
        }
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[a-zA-Z0-9 /._-]{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("method".to_string()),
                    Just("path".to_string()),
                    Just("headers".to_string()),
                    Just("query".to_string()),
                    Just("body".to_string()),
                    Just("statement".to_string()),
                    Just("verb".to_string()),
                    Just("tables".to_string()),
                    Just("params".to_string()),
                    Just("forward_port".to_string()),
                    "[a-z_]{1,8}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_configs_never_panic_and_errors_are_located(
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6)
    ) {
        check_located(&mutate(PLATFORM, &edits));
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        check_located(&text);
    }

    #[test]
    fn arbitrary_cel_never_panics(text in "[a-z_.()'\\[\\]=!&|<>+*/%?:, 0-9\"]{0,60}") {
        let action = Action::from_json(&serde_json::json!({"http": {"method": "GET", "path": "/"}}))
            .expect("action");
        for family in [Family::Http, Family::K8s, Family::Sql, Family::Ssh] {
            if let Ok(c) = clawpatrol_core::cel::compile(&text, family) {
                let _ = c.eval(&action);
            }
        }
    }

    #[test]
    fn arbitrary_actions_never_panic(
        block in prop_oneof![Just("http"), Just("k8s"), Just("sql"), Just("ssh")],
        body in json_value(),
        host in prop_oneof![Just("api.github.com"), Just("pg-main.internal:5432"), Just("x.slack.com"), Just("nowhere")],
        truncated in any::<bool>(),
        unparseable in any::<bool>(),
    ) {
        let v = serde_json::json!({"host": host, block: body, "truncated": truncated, "unparseable": unparseable});
        if let Ok(a) = Action::from_json(&v) {
            let d = policy().decide_traced(&a);
            let _ = policy().decide_fail_closed(&a);
            let _ = d.to_json();
            let back = serde_json::to_value(&a).expect("serialize");
            prop_assert_eq!(Action::from_json(&back).expect("round trip"), a);
        }
    }
}
