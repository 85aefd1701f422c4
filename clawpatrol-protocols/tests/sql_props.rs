//! Property tests: SQL analysis never panics; splitting never loses characters; texts of the
//! same shape (integer literals aside) get the same facts, so the analysis cache is sound.

use clawpatrol_protocols::clickhouse::analyze_clickhouse;
use clawpatrol_protocols::sql::{
    analyze_postgres, postgres_integer_literals, postgres_shape, split_postgres, PostgresCache,
    SqlStatement,
};
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

/// Statements built around integer literals, in places where the grammar wants them.
fn with_integers() -> impl Strategy<Value = String> {
    let frag = prop_oneof![
        Just("select a, 7 from t where id = 12 ".to_string()),
        Just("select * from s.t limit 3 offset 40 ".to_string()),
        Just("insert into t (a, b) values (1, -2) ".to_string()),
        Just("update t set n = n + 1 where id in (5, 6) ".to_string()),
        Just("delete from t where id = 99 ".to_string()),
        Just("select cast(x as varchar(10)), 1::float(5) from t ".to_string()),
        Just("fetch 5 from c ".to_string()),
        Just("select pg_sleep(1), generate_series(1, 10) ".to_string()),
        Just("select a[1:2] from t order by 1 ".to_string()),
        Just("do 'begin perform 1; end' ".to_string()),
        Just("with d as (delete from t where id = 1 returning *) select 2 ".to_string()),
        Just("create table t2 (a numeric(10, 2)) ".to_string()),
        Just("alter sequence q restart 5 ".to_string()),
        Just("select 1 -- 2\n".to_string()),
        Just("/* 3 */ ".to_string()),
        Just("'4' ".to_string()),
        Just("\"5\" ".to_string()),
        Just("$1 ".to_string()),
        Just("; ".to_string()),
        "[0-9]{1,10}",
        "[a-z0-9 ,.*=()+-]{0,8}",
    ];
    prop::collection::vec(frag, 1..6).prop_map(|v| v.concat())
}

/// `text` with every blanked integer literal replaced by the next of `values`.
fn variant(text: &str, values: &[u32]) -> Option<String> {
    let spans = postgres_integer_literals(text)?;
    let mut out = String::new();
    let mut last = 0;
    for (n, s) in spans.iter().enumerate() {
        out.push_str(&text[last..s.start]);
        out.push_str(
            &values
                .get(n % values.len().max(1))
                .copied()
                .unwrap_or(0)
                .to_string(),
        );
        last = s.end;
    }
    out.push_str(&text[last..]);
    Some(out)
}

/// A statement's facts without its text.
fn facts(s: &SqlStatement) -> (&str, &[String], &[String], bool, bool) {
    (&s.verb, &s.tables, &s.functions, s.unparseable, s.shadow)
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

    #[test]
    fn texts_of_one_shape_get_the_same_facts(
        text in prop_oneof![with_integers(), sqlish()],
        values in prop::collection::vec(0u32..1_000_000_000, 1..4),
    ) {
        let Some(other) = variant(&text, &values) else {
            prop_assert!(postgres_shape(&text).is_none());
            return Ok(());
        };
        prop_assert_eq!(postgres_shape(&other), postgres_shape(&text));
        let a = analyze_postgres(&text);
        let b = analyze_postgres(&other);
        // What the cache reuses: one parsed statement without shadows.
        if let [first] = &a[..] {
            if !first.unparseable && !first.shadow {
                prop_assert_eq!(b.len(), 1, "{:?} vs {:?}", text, other);
                // A value may make the grammar refuse the text (float(0)); otherwise the
                // facts are the same.
                prop_assert!(b[0].unparseable || facts(&b[0]) == facts(first), "{:?}: {:?} vs {:?}: {:?}", text, a, other, b);
                let mut cache = PostgresCache::new();
                prop_assert_eq!(cache.analyze(&text), a.clone());
                let cached = cache.analyze(&other);
                prop_assert_eq!(cache.hits(), 1);
                prop_assert_eq!(cached.len(), 1);
                prop_assert_eq!(facts(&cached[0]), facts(first));
                prop_assert_eq!(&cached[0].statement, &b[0].statement);
            }
        }
    }

    #[test]
    fn the_cache_answers_like_the_analysis(texts in prop::collection::vec(prop_oneof![with_integers(), sqlish()], 1..8)) {
        let mut cache = PostgresCache::new();
        for t in texts.iter().chain(texts.iter()) {
            prop_assert_eq!(cache.analyze(t), analyze_postgres(t));
        }
    }
}
