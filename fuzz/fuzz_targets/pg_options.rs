//! Arbitrary `options` startup parameters and startup settings: reading `options` must not
//! panic; settings it accepts have parameter names, and written back they read the same;
//! every setting (name, value) the gateway would decide becomes exactly one parseable `SET`
//! statement whatever the value holds.
#![no_main]

use clawpatrol_protocols::postgres::{
    is_setting_name, options_string, parse_options, setting_statement,
};
use clawpatrol_protocols::sql::analyze_postgres;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // `options` as the protocol carries it: a C string, so up to the first NUL.
    let options = text.split('\0').next().unwrap_or_default();
    if let Ok(settings) = parse_options(options) {
        for (name, value) in &settings {
            assert!(is_setting_name(name), "{name:?}");
            check_statement(name, value);
        }
        assert_eq!(parse_options(&options_string(&settings)), Ok(settings));
    }
    // A startup parameter: name and value as the protocol carries them (no NUL).
    if let Some((name, value)) = text.split_once('\0') {
        if !value.contains('\0') && is_setting_name(name) {
            check_statement(name, value);
        }
    }
});

fn check_statement(name: &str, value: &str) {
    let statement = setting_statement(name, value).expect("a parameter name gives a statement");
    let analysed = analyze_postgres(&statement);
    assert_eq!(analysed.len(), 1, "{statement:?}: {analysed:?}");
    assert!(!analysed[0].unparseable, "{statement:?}");
    assert!(analysed[0].verb.starts_with("set"), "{statement:?}: {analysed:?}");
}
