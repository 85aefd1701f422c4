//! The environment secret store (reference §4.1, step 3).
//!
//! A credential `<name>` reads `CLAWPATROL_SECRET_<NAME>` (`<NAME>` = the name upper-cased,
//! `-` → `_`) as its primary secret, and these suffix variables as extras keyed by the
//! lower-cased suffix: `_CA`, `_CERT`, `_KEY`, `_ACCESS_KEY_ID`, `_SECRET_ACCESS_KEY`,
//! `_SESSION_TOKEN`, and — our extension, the reference has no env mapping for them —
//! `_BOT`, `_APP` and `_SIGNING_SECRET` (the `slack_tokens` bot and app tokens and the
//! interactivity signing secret). A value starting with `@` names
//! a file whose contents (one trailing newline stripped) are read at every lookup, so a
//! rotated file takes effect without a restart.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use clawpatrol_core::inject::SecretMaterial;

/// The prefix of every secret variable.
const PREFIX: &str = "CLAWPATROL_SECRET_";

/// Suffix variables and the extra slot each fills.
const EXTRAS: &[(&str, &str)] = &[
    ("_CA", "ca"),
    ("_CERT", "cert"),
    ("_KEY", "key"),
    ("_ACCESS_KEY_ID", "access_key_id"),
    ("_SECRET_ACCESS_KEY", "secret_access_key"),
    ("_SESSION_TOKEN", "session_token"),
    ("_BOT", "bot"),
    ("_APP", "app"),
    ("_SIGNING_SECRET", "signing_secret"),
];

/// Why a secret lookup failed. Never contains a secret value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// A `@file` variable names a file that cannot be read.
    #[error("cannot read the secret file `{path}` named by `{variable}`: {source}")]
    ReadFile {
        /// The variable holding `@<path>`.
        variable: String,
        /// The file path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A variable's value is not valid Unicode.
    #[error("the value of `{variable}` is not valid Unicode; put the secret in a file and set `{variable}=@<path>`")]
    NotUnicode {
        /// The variable's name.
        variable: String,
    },
}

/// Secrets from `CLAWPATROL_SECRET_*` variables (captured once) and the files they name
/// (read at each lookup). `Debug` lists variable names only.
#[derive(Clone, Default)]
pub struct SecretStore {
    /// Variable name → value (`None`: the value was not Unicode).
    vars: BTreeMap<String, Option<String>>,
}

impl fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretStore")
            .field("variables", &self.vars.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl SecretStore {
    /// Captures the process's `CLAWPATROL_SECRET_*` variables.
    pub fn from_env() -> SecretStore {
        let mut vars = BTreeMap::new();
        for (k, v) in std::env::vars_os() {
            let Ok(k) = k.into_string() else { continue };
            if k.starts_with(PREFIX) {
                vars.insert(k, v.into_string().ok());
            }
        }
        SecretStore { vars }
    }

    /// A store over the given variables instead of the process environment (for tests and
    /// embedding); variables without the `CLAWPATROL_SECRET_` prefix are ignored.
    pub fn from_vars<I, K, V>(vars: I) -> SecretStore
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        SecretStore {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), Some(v.into())))
                .filter(|(k, _)| k.starts_with(PREFIX))
                .collect(),
        }
    }

    /// The primary variable of a credential: `CLAWPATROL_SECRET_<NAME>`.
    pub fn variable_name(credential: &str) -> String {
        format!("{PREFIX}{}", credential.to_uppercase().replace('-', "_"))
    }

    /// The secret of `credential`; `Ok(None)` when no variable (or only empty ones) is set.
    pub fn get(&self, credential: &str) -> Result<Option<SecretMaterial>, SecretError> {
        let base = SecretStore::variable_name(credential);
        let mut material = SecretMaterial {
            primary: self.read(&base)?.unwrap_or_default(),
            extras: BTreeMap::new(),
        };
        for (suffix, slot) in EXTRAS {
            if let Some(v) = self.read(&format!("{base}{suffix}"))? {
                material.extras.insert((*slot).to_string(), v);
            }
        }
        Ok((!material.is_empty()).then_some(material))
    }

    /// The bytes of one variable, following `@file`; `None` when unset or empty.
    fn read(&self, variable: &str) -> Result<Option<Vec<u8>>, SecretError> {
        let value = match self.vars.get(variable) {
            None => return Ok(None),
            Some(None) => {
                return Err(SecretError::NotUnicode {
                    variable: variable.to_string(),
                })
            }
            Some(Some(v)) => v,
        };
        let bytes = match value.strip_prefix('@') {
            None => value.as_bytes().to_vec(),
            Some(path) => {
                let mut bytes = std::fs::read(path).map_err(|source| SecretError::ReadFile {
                    variable: variable.to_string(),
                    path: PathBuf::from(path),
                    source,
                })?;
                if bytes.last() == Some(&b'\n') {
                    bytes.pop();
                    if bytes.last() == Some(&b'\r') {
                        bytes.pop();
                    }
                }
                bytes
            }
        };
        Ok((!bytes.is_empty()).then_some(bytes))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A fresh file under the temp dir, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(contents: &[u8]) -> TempFile {
            static N: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "clawpatrol-secret-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::write(&path, contents).unwrap();
            TempFile(path)
        }

        fn at(&self) -> String {
            format!("@{}", self.0.display())
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn store(vars: &[(&str, &str)]) -> SecretStore {
        SecretStore::from_vars(vars.iter().map(|(k, v)| (*k, *v)))
    }

    #[test]
    fn variable_name_upper_cases_and_maps_dashes() {
        assert_eq!(
            SecretStore::variable_name("my-api_key2"),
            "CLAWPATROL_SECRET_MY_API_KEY2"
        );
    }

    #[test]
    fn primary_from_env_with_dashed_name() {
        let s = store(&[("CLAWPATROL_SECRET_GH_TOKEN", "ghp_real")]);
        let m = s.get("gh-token").unwrap().unwrap();
        assert_eq!(m.primary, b"ghp_real");
        assert!(m.extras.is_empty());
        // Lookup is by the mapped name, so the underscore spelling reads the same variable.
        assert_eq!(s.get("gh_token").unwrap().unwrap().primary, b"ghp_real");
        assert_eq!(s.get("other").unwrap(), None);
    }

    #[test]
    fn extras_from_suffix_variables() {
        let s = store(&[
            ("CLAWPATROL_SECRET_AWS", ""),
            ("CLAWPATROL_SECRET_AWS_ACCESS_KEY_ID", "AKIA"),
            ("CLAWPATROL_SECRET_AWS_SECRET_ACCESS_KEY", "sak"),
            ("CLAWPATROL_SECRET_AWS_SESSION_TOKEN", "st"),
            ("CLAWPATROL_SECRET_MTLS_CA", "ca-pem"),
            ("CLAWPATROL_SECRET_MTLS_CERT", "cert-pem"),
            ("CLAWPATROL_SECRET_MTLS_KEY", "key-pem"),
            ("CLAWPATROL_SECRET_SLACK_BOT", "xoxb"),
            ("CLAWPATROL_SECRET_SLACK_APP", "xapp"),
            ("CLAWPATROL_SECRET_SLACK_SIGNING_SECRET", "sign"),
            ("CLAWPATROL_SECRET_SLACK_PASSPHRASE", "unmapped"),
        ]);
        let aws = s.get("aws").unwrap().unwrap();
        assert!(aws.primary.is_empty());
        let keys: Vec<&str> = aws.extras.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            vec!["access_key_id", "secret_access_key", "session_token"]
        );
        assert_eq!(aws.extras["secret_access_key"], b"sak");

        let mtls = s.get("mtls").unwrap().unwrap();
        assert_eq!(mtls.extras["ca"], b"ca-pem");
        assert_eq!(mtls.extras["cert"], b"cert-pem");
        assert_eq!(mtls.extras["key"], b"key-pem");

        let slack = s.get("slack").unwrap().unwrap();
        assert_eq!(slack.extras.len(), 3);
        assert_eq!(slack.extras["signing_secret"], b"sign");
        assert_eq!(slack.extras["bot"], b"xoxb");
        assert_eq!(slack.extras["app"], b"xapp");
    }

    #[test]
    fn empty_variables_are_unset() {
        let s = store(&[
            ("CLAWPATROL_SECRET_X", ""),
            ("CLAWPATROL_SECRET_X_CERT", ""),
        ]);
        assert_eq!(s.get("x").unwrap(), None);
    }

    #[test]
    fn unprefixed_variables_are_ignored() {
        let s = store(&[("HOME", "/root"), ("SECRET_X", "v")]);
        assert_eq!(s.get("x").unwrap(), None);
        assert_eq!(format!("{s:?}"), "SecretStore { variables: [] }");
    }

    #[test]
    fn at_file_is_read_at_lookup_with_one_newline_stripped() {
        let f = TempFile::new(b"file-secret\n\n");
        let s = store(&[("CLAWPATROL_SECRET_DB", &f.at())]);
        assert_eq!(s.get("db").unwrap().unwrap().primary, b"file-secret\n");
        // Rotation: the next lookup sees the new contents.
        std::fs::write(&f.0, b"rotated\r\n").unwrap();
        assert_eq!(s.get("db").unwrap().unwrap().primary, b"rotated");
        std::fs::write(&f.0, b"").unwrap();
        assert_eq!(s.get("db").unwrap(), None);
    }

    #[test]
    fn at_file_for_extras_keeps_bytes() {
        let pem = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let f = TempFile::new(pem);
        let s = store(&[("CLAWPATROL_SECRET_M_CERT", &f.at())]);
        assert_eq!(
            s.get("m").unwrap().unwrap().extras["cert"],
            pem[..pem.len() - 1]
        );
    }

    #[test]
    fn unreadable_file_names_variable_and_path_not_value() {
        let path = std::env::temp_dir().join("clawpatrol-no-such-secret-file-hunter2");
        let value = format!("@{}", path.display());
        let s = store(&[("CLAWPATROL_SECRET_API_KEY", value.as_str())]);
        let err = s.get("api-key").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("`CLAWPATROL_SECRET_API_KEY`"), "{msg}");
        assert!(msg.contains(&format!("`{}`", path.display())), "{msg}");
        assert!(!msg.contains(&value), "{msg}");
        assert!(matches!(err, SecretError::ReadFile { .. }));
    }

    #[test]
    fn unreadable_extra_file_fails_the_lookup() {
        let s = store(&[
            ("CLAWPATROL_SECRET_M", "primary"),
            (
                "CLAWPATROL_SECRET_M_KEY",
                "@/nonexistent/clawpatrol/key.pem",
            ),
        ]);
        let msg = s.get("m").unwrap_err().to_string();
        assert!(msg.contains("`CLAWPATROL_SECRET_M_KEY`"), "{msg}");
        assert!(!msg.contains("primary"), "{msg}");
    }

    #[test]
    fn non_unicode_value_is_an_error_without_value() {
        let s = SecretStore {
            vars: BTreeMap::from([("CLAWPATROL_SECRET_N".to_string(), None)]),
        };
        let msg = s.get("n").unwrap_err().to_string();
        assert!(msg.starts_with("the value of `CLAWPATROL_SECRET_N` is not valid Unicode"));
    }

    #[test]
    fn debug_never_prints_values() {
        let f = TempFile::new(b"file-held-secret");
        let s = store(&[
            ("CLAWPATROL_SECRET_A", "hunter2-value"),
            ("CLAWPATROL_SECRET_B", &f.at()),
        ]);
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(!dbg.contains(&f.at()), "{dbg}");
        assert!(dbg.contains("CLAWPATROL_SECRET_A"), "{dbg}");
        let m = s.get("a").unwrap().unwrap();
        assert!(!format!("{m:?}").contains("hunter2"));
    }

    #[test]
    fn from_env_captures_prefixed_variables_only() {
        // Reads (never mutates) the real environment: every captured name has the prefix.
        let s = SecretStore::from_env();
        assert!(s.vars.keys().all(|k| k.starts_with(PREFIX)));
    }
}
