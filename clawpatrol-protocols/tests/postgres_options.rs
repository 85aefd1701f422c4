//! Property tests of the `options` startup parameter and of startup settings as `SET`
//! statements: reading never panics, written settings read back the same, and a setting
//! is one parseable `SET` statement whatever its value holds.

use clawpatrol_protocols::postgres::{
    is_setting_name, options_string, parse_options, setting_statement, split_options,
};
use clawpatrol_protocols::sql::analyze_postgres;
use proptest::prelude::*;

/// Text built from the pieces `options` strings are made of.
fn optionish() -> impl Strategy<Value = String> {
    let frag = prop_oneof![
        Just("-c".to_string()),
        Just("--".to_string()),
        Just(" ".to_string()),
        Just("\t".to_string()),
        Just("\\".to_string()),
        Just("\\ ".to_string()),
        Just("=".to_string()),
        Just("role".to_string()),
        Just("search-path".to_string()),
        Just("a.b".to_string()),
        Just("$".to_string()),
        Just("'".to_string()),
        Just("-P".to_string()),
        "[ -~]{0,6}",
    ];
    proptest::collection::vec(frag, 0..16).prop_map(|v| v.concat())
}

/// A value as a startup parameter may carry it: any text without NUL, quotes and dollar-quote
/// tags often.
fn valueish() -> impl Strategy<Value = String> {
    let frag = prop_oneof![
        Just("$cp$".to_string()),
        Just("$cp".to_string()),
        Just("$cp1$".to_string()),
        Just("$".to_string()),
        Just("'".to_string()),
        Just("\\".to_string()),
        Just(";drop table t;".to_string()),
        Just("\"".to_string()),
        "[^\u{0}]{0,4}",
    ];
    proptest::collection::vec(frag, 0..10).prop_map(|v| v.concat())
}

/// Asserts that (name, value) is one parseable `SET` statement.
fn one_set_statement(name: &str, value: &str) -> Result<(), TestCaseError> {
    let statement = setting_statement(name, value);
    prop_assert!(statement.is_some(), "{name:?}");
    let statement = statement.unwrap_or_default();
    let analysed = analyze_postgres(&statement);
    prop_assert_eq!(analysed.len(), 1, "{:?}: {:?}", statement, analysed);
    prop_assert!(!analysed[0].unparseable, "{:?}", statement);
    prop_assert!(analysed[0].verb.starts_with("set"), "{:?}", analysed);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn options_read_back_the_same_once_written(text in optionish()) {
        let _ = split_options(&text);
        if let Ok(settings) = parse_options(&text) {
            for (name, value) in &settings {
                prop_assert!(is_setting_name(name), "{:?}", name);
                one_set_statement(name, value)?;
            }
            prop_assert_eq!(parse_options(&options_string(&settings)), Ok(settings));
        }
    }

    #[test]
    fn any_value_is_one_set_statement(
        name in "[A-Za-z_][A-Za-z0-9_$]{0,10}(\\.[A-Za-z_][A-Za-z0-9_$]{0,6})?",
        value in valueish(),
    ) {
        one_set_statement(&name, &value)?;
    }

    #[test]
    fn written_settings_of_any_ascii_value_read_back(
        settings in proptest::collection::vec(
            ("[a-z_][a-z0-9_]{0,8}", "[ -~\t]{0,12}"), 0..6),
    ) {
        let written = options_string(&settings);
        prop_assert_eq!(parse_options(&written), Ok(settings));
    }
}
