//! Fuzzes Postgres statement splitting and analysis: arbitrary text must never panic, and the
//! fast path (libpg_query's summary) must give exactly the facts of the full parse-tree walk,
//! except where the full path cannot decode the tree (nesting beyond prost's limit), which it
//! reports unparseable while the summary still names the tables. A text of the same shape
//! (other integer values) must get the same facts, which is what the analysis cache reuses.
//! The gateway's client-encoding check runs on every statement and must not panic either.
#![no_main]

use clawpatrol_protocols::sql::{
    analyze_postgres, analyze_postgres_full, postgres_encoding_change, postgres_integer_literals,
    postgres_shape, split_postgres, PostgresCache,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let pieces = split_postgres(text);
        let statements = analyze_postgres(text);
        for s in &statements {
            let _ = postgres_encoding_change(&s.statement, "UTF8");
        }
        assert!(statements.iter().filter(|s| !s.shadow).count() == pieces.len());
        let full = analyze_postgres_full(text);
        if statements != full {
            // Only whole pieces may differ, and only by being undecodable on the full path.
            assert_eq!(statements.len(), full.len(), "fast path differs from the full walk");
            for (fast, full) in statements.iter().zip(&full) {
                if fast != full {
                    assert!(full.unparseable && !fast.unparseable && !fast.shadow);
                    assert!(
                        matches!(
                            pg_query::parse(&fast.statement),
                            Err(pg_query::Error::Decode(_))
                        ),
                        "fast path differs from the full walk on {:?}",
                        fast.statement
                    );
                }
            }
        }
        same_shape_same_facts(text, &statements);
    }
});

/// Replaces every blanked integer literal with another value and checks what the cache
/// relies on: one parsed statement without shadows stays one statement with the same facts
/// (or one the grammar refuses for its value).
fn same_shape_same_facts(text: &str, statements: &[clawpatrol_protocols::sql::SqlStatement]) {
    let Some(spans) = postgres_integer_literals(text) else {
        return;
    };
    let [first] = statements else {
        return;
    };
    if spans.is_empty() || first.unparseable || first.shadow {
        return;
    }
    let mut other = String::new();
    let mut last = 0;
    for (n, s) in spans.iter().enumerate() {
        other.push_str(&text[last..s.start]);
        other.push_str(if n % 2 == 0 { "987654321" } else { "0" });
        last = s.end;
    }
    other.push_str(&text[last..]);
    assert_eq!(postgres_shape(&other), postgres_shape(text));
    let b = analyze_postgres(&other);
    assert_eq!(b.len(), 1, "{text:?} vs {other:?}");
    let same = b[0].verb == first.verb
        && b[0].tables == first.tables
        && b[0].functions == first.functions
        && !b[0].shadow;
    assert!(b[0].unparseable || same, "{text:?}: {first:?} vs {other:?}: {b:?}");
    let mut cache = PostgresCache::new();
    cache.analyze(text);
    let cached = cache.analyze(&other);
    assert_eq!(cache.hits(), 1);
    assert_eq!(cached[0].statement, b[0].statement);
}
