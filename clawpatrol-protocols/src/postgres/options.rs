//! The `options` startup parameter, read as the server reads it, and written back.
//!
//! The server splits `options` at whitespace that no backslash escapes (a backslash takes the
//! next character literally) and reads the words as command-line switches; `-c name=value`
//! and `--name=value` set a run-time parameter (`-` in the name reads as `_`). The gateway
//! accepts only those two switches, decides each setting, and sends the server the settings
//! it allowed in a form it splits the same way ([`options_string`]).

/// Most settings one `options` string may carry.
pub const MAX_OPTION_SETTINGS: usize = 64;

/// Longest setting name the gateway accepts (the server's own are far shorter).
pub const MAX_SETTING_NAME: usize = 128;

/// Why an `options` string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// A word that is not `-c name=value` or `--name=value`.
    #[error("`options` switch `{0}` is not a run-time setting: only `-c name=value` and `--name=value` pass the gateway")]
    Switch(String),
    /// `-c` at the end, with no setting after it.
    #[error("`options` ends with `-c` and no setting after it")]
    MissingSetting,
    /// A setting without `=value`.
    #[error("`options` setting `{0}` has no `=value`")]
    NoValue(String),
    /// A setting name the server would not read as one parameter name.
    #[error("`options` setting name `{0}` is not a parameter name")]
    BadName(String),
    /// Bytes outside ASCII: the server's whitespace depends on its locale.
    #[error("`options` holds non-ASCII characters, which the server may split differently")]
    NotAscii,
    /// More than [`MAX_OPTION_SETTINGS`] settings.
    #[error("`options` carries more than {MAX_OPTION_SETTINGS} settings")]
    TooMany,
}

/// The server's whitespace for `options` (C `isspace` on ASCII).
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{0b}' | '\u{0c}' | '\r')
}

/// Splits `options` into words as the server does: unescaped whitespace separates them, a
/// backslash takes the next character literally (a trailing backslash is dropped).
pub fn split_options(options: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = options.chars().peekable();
    loop {
        while chars.next_if(|c| is_space(*c)).is_some() {}
        if chars.peek().is_none() {
            return words;
        }
        let mut word = String::new();
        while let Some(c) = chars.next_if(|c| !is_space(*c)) {
            if c == '\\' {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            } else {
                word.push(c);
            }
        }
        words.push(word);
    }
}

/// Reads the settings of an `options` string, in order, names with `-` read as `_`.
pub fn parse_options(options: &str) -> Result<Vec<(String, String)>, OptionsError> {
    if !options.is_ascii() {
        return Err(OptionsError::NotAscii);
    }
    let mut out = Vec::new();
    let mut words = split_options(options).into_iter();
    while let Some(word) = words.next() {
        let setting = if word == "-c" {
            words.next().ok_or(OptionsError::MissingSetting)?
        } else if let Some(rest) = word.strip_prefix("-c") {
            rest.to_string()
        } else if let Some(rest) = word.strip_prefix("--").filter(|r| !r.is_empty()) {
            rest.to_string()
        } else {
            return Err(OptionsError::Switch(word));
        };
        let Some((name, value)) = setting.split_once('=') else {
            return Err(OptionsError::NoValue(setting));
        };
        let name = name.replace('-', "_");
        if !is_setting_name(&name) {
            return Err(OptionsError::BadName(name));
        }
        if out.len() == MAX_OPTION_SETTINGS {
            return Err(OptionsError::TooMany);
        }
        out.push((name, value.to_string()));
    }
    Ok(out)
}

/// An `options` string the server reads as exactly `settings` (each as `-c name=value`).
pub fn options_string(settings: &[(String, String)]) -> String {
    let mut out = String::new();
    for (name, value) in settings {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str("-c ");
        for c in name
            .chars()
            .chain(std::iter::once('='))
            .chain(value.chars())
        {
            if c == '\\' || is_space(c) {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

/// True for a name the server can read as one parameter: identifier parts (ASCII letters,
/// digits, `_`, `$`, not starting with a digit or `$`) joined by dots.
pub fn is_setting_name(name: &str) -> bool {
    name.len() <= MAX_SETTING_NAME
        && name.split('.').all(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        })
}

/// The `SET` statement a startup setting amounts to (`SET "name" TO $tag$value$tag$`, the
/// name lower-cased as the server matches it), or `None` for a name [`is_setting_name`]
/// refuses.
pub fn setting_statement(name: &str, value: &str) -> Option<String> {
    if !is_setting_name(name) {
        return None;
    }
    let quoted: Vec<String> = name
        .to_ascii_lowercase()
        .split('.')
        .map(|part| format!("\"{part}\""))
        .collect();
    // A dollar-quote tag whose first occurrence in `value` + tag is the closing one: read
    // alike whatever `standard_conforming_strings` says, and nothing in the value can end it.
    let tag = free_tag(value);
    Some(format!("SET {} TO {tag}{value}{tag}", quoted.join(".")))
}

/// The first of `$cp$`, `$cp1$`, `$cp2$`, … that neither occurs in `value` nor completes
/// at its end (a value ending in `$cp1` would close `$cp1$` one character early). One pass
/// over the value: only the digit runs after its `$cp` can rule a tag out.
fn free_tag(value: &str) -> String {
    let mut taken = std::collections::HashSet::new();
    let mut rest = value;
    while let Some(at) = rest.find("$cp") {
        let after = &rest[at + 3..];
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let (run, tail) = after.split_at(digits);
        if tail.is_empty() || tail.starts_with('$') {
            taken.insert(run);
        }
        rest = tail;
    }
    if !taken.contains("") {
        return "$cp$".to_string();
    }
    // `taken` holds at most value.len() / 3 runs, so one of the first that many + 1 is free.
    let n = (1..)
        .find(|n: &usize| !taken.contains(n.to_string().as_str()))
        .unwrap_or(0);
    format!("$cp{n}$")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn words_split_at_unescaped_whitespace() {
        assert_eq!(
            split_options("  -c a=b\t--x=y\\ z \\\\ end\\"),
            vec!["-c", "a=b", "--x=y z", "\\", "end"]
        );
        assert!(split_options(" \n ").is_empty());
    }

    #[test]
    fn the_two_setting_switches_are_read() {
        assert_eq!(
            parse_options("-c role=admin -csearch_path=a,b --work-mem=8MB").unwrap(),
            pairs(&[
                ("role", "admin"),
                ("search_path", "a,b"),
                ("work_mem", "8MB")
            ])
        );
        assert_eq!(
            parse_options("-c x.y=a=b").unwrap(),
            pairs(&[("x.y", "a=b")])
        );
        assert_eq!(parse_options("").unwrap(), vec![]);
    }

    #[test]
    fn anything_else_is_refused() {
        assert_eq!(parse_options("-P"), Err(OptionsError::Switch("-P".into())));
        assert_eq!(
            parse_options("-ec x=y"),
            Err(OptionsError::Switch("-ec".into()))
        );
        assert_eq!(parse_options("--"), Err(OptionsError::Switch("--".into())));
        assert_eq!(
            parse_options("-c role=x plain"),
            Err(OptionsError::Switch("plain".into()))
        );
        assert_eq!(parse_options("-c"), Err(OptionsError::MissingSetting));
        assert_eq!(
            parse_options("-c role"),
            Err(OptionsError::NoValue("role".into()))
        );
        assert_eq!(
            parse_options("-c\\ role=x"),
            Err(OptionsError::BadName(" role".into()))
        );
        assert_eq!(parse_options("-c a=\u{e9}"), Err(OptionsError::NotAscii));
        let many = "-c a=b ".repeat(MAX_OPTION_SETTINGS + 1);
        assert_eq!(parse_options(&many), Err(OptionsError::TooMany));
    }

    #[test]
    fn written_settings_read_back_the_same() {
        let settings = pairs(&[
            ("search_path", "a, b\t c"),
            ("application_name", "x\\y\\"),
            ("work_mem", ""),
        ]);
        let s = options_string(&settings);
        assert_eq!(parse_options(&s).unwrap(), settings);
    }

    #[test]
    fn setting_statements_quote_the_name_and_the_value() {
        assert_eq!(
            setting_statement("Role", "admin").as_deref(),
            Some("SET \"role\" TO $cp$admin$cp$")
        );
        assert_eq!(
            setting_statement("ext.opt", "a$cp$b").as_deref(),
            Some("SET \"ext\".\"opt\" TO $cp1$a$cp$b$cp1$")
        );
        assert_eq!(
            setting_statement("x", "a$cp").as_deref(),
            Some("SET \"x\" TO $cp1$a$cp$cp1$")
        );
        assert_eq!(
            setting_statement("x", "$cp$ $cp1$ $cp2").as_deref(),
            Some("SET \"x\" TO $cp3$$cp$ $cp1$ $cp2$cp3$")
        );
        assert_eq!(
            setting_statement("x", "$cp12$$cp01$").as_deref(),
            Some("SET \"x\" TO $cp$$cp12$$cp01$$cp$")
        );
        assert_eq!(setting_statement("a\"b", "x"), None);
        assert_eq!(setting_statement("1a", "x"), None);
        assert_eq!(setting_statement("a..b", "x"), None);
        assert_eq!(setting_statement("", "x"), None);
    }
}
