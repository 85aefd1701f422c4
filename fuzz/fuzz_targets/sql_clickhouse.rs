//! Fuzzes ClickHouse statement analysis and `USE` detection: arbitrary text must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let s = clawpatrol_protocols::clickhouse::analyze_clickhouse(text);
        assert_eq!(s.statement, text);
        let _ = clawpatrol_protocols::clickhouse::use_database(text);
    }
});
