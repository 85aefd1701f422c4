//! Fuzzes Postgres statement splitting and analysis: arbitrary text must never panic, and the
//! fast path (libpg_query's summary) must give exactly the facts of the full parse-tree walk,
//! except where the full path cannot decode the tree (nesting beyond prost's limit), which it
//! reports unparseable while the summary still names the tables.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let pieces = clawpatrol_protocols::sql::split_postgres(text);
        let statements = clawpatrol_protocols::sql::analyze_postgres(text);
        assert!(statements.iter().filter(|s| !s.shadow).count() == pieces.len());
        let full = clawpatrol_protocols::sql::analyze_postgres_full(text);
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
    }
});
