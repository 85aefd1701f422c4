//! Fuzzes Postgres statement splitting and analysis: arbitrary text must never panic, and the
//! fast path (libpg_query's summary) must give exactly the facts of the full parse-tree walk.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let pieces = clawpatrol_protocols::sql::split_postgres(text);
        let statements = clawpatrol_protocols::sql::analyze_postgres(text);
        assert!(statements.iter().filter(|s| !s.shadow).count() == pieces.len());
        let full = clawpatrol_protocols::sql::analyze_postgres_full(text);
        assert_eq!(statements, full, "fast path differs from the full walk");
    }
});
