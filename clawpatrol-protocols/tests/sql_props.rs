//! Property tests: SQL analysis never panics; splitting never loses characters.

use clawpatrol_protocols::clickhouse::analyze_clickhouse;
use clawpatrol_protocols::sql::{analyze_postgres, split_postgres};
use proptest::prelude::*;

/// Text built from SQL-ish fragments, so quotes, comments and dollar quotes appear often.
fn sqlish() -> impl Strategy<Value = String> {
    let frag = prop_oneof![
        Just("select ".to_string()),
        Just("from t ".to_string()),
        Just(";".to_string()),
        Just("'".to_string()),
        Just("''".to_string()),
        Just("\"".to_string()),
        Just("$$".to_string()),
        Just("$a$".to_string()),
        Just("--".to_string()),
        Just("\n".to_string()),
        Just("/*".to_string()),
        Just("*/".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just("do ".to_string()),
        Just("with x as (delete from t returning *) ".to_string()),
        Just(" collate default".to_string()),
        "[a-z0-9 ,.*=]{0,6}",
        any::<char>().prop_map(|c| c.to_string()),
    ];
    prop::collection::vec(frag, 0..24).prop_map(|v| v.concat())
}

fn non_ws_without_semicolons(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && *c != ';')
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn postgres_analysis_never_panics(text in sqlish()) {
        let all = analyze_postgres(&text);
        for s in &all {
            prop_assert!(!s.unparseable || (s.verb.is_empty() && s.tables.is_empty()));
            let mut sorted = s.tables.clone();
            sorted.sort();
            sorted.dedup();
            prop_assert_eq!(&sorted, &s.tables);
        }
        if text.trim().is_empty() {
            prop_assert!(all.is_empty());
        } else {
            prop_assert!(!all.is_empty());
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = analyze_postgres(&text);
        let _ = analyze_clickhouse(&text);
    }

    #[test]
    fn clickhouse_analysis_never_panics(text in sqlish()) {
        let s = analyze_clickhouse(&text);
        prop_assert_eq!(s.statement, text);
    }

    #[test]
    fn splitting_keeps_every_non_whitespace_character(text in sqlish()) {
        let pieces = split_postgres(&text);
        let joined: String = pieces.concat();
        prop_assert_eq!(non_ws_without_semicolons(&joined), non_ws_without_semicolons(&text));
        for p in &pieces {
            prop_assert!(!p.is_empty());
            prop_assert_eq!(p.trim(), *p);
        }
    }
}
