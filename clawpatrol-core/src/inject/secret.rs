//! The secret material of one credential, as the secret store hands it to injection.

use std::collections::BTreeMap;
use std::fmt;

/// A credential's secret: primary bytes and named extras (`ca`, `cert`, `key`, `bot`, …).
/// `Debug` never prints the values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretMaterial {
    /// The primary secret (token, password, key).
    pub primary: Vec<u8>,
    /// Named extra slots, keyed by lower-case slot name.
    pub extras: BTreeMap<String, Vec<u8>>,
}

impl SecretMaterial {
    /// Whether there is neither a primary secret nor any extra.
    pub fn is_empty(&self) -> bool {
        self.primary.is_empty() && self.extras.values().all(Vec::is_empty)
    }

    /// Every non-empty secret string (primary and extras), longest first, for redaction.
    pub fn redaction_strings(&self) -> Vec<String> {
        let mut out: Vec<String> = std::iter::once(&self.primary)
            .chain(self.extras.values())
            .filter(|v| !v.is_empty())
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        out.sort_by_key(|s| std::cmp::Reverse(s.len()));
        out.dedup();
        out
    }
}

impl fmt::Debug for SecretMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretMaterial")
            .field("primary", &format_args!("<{} bytes>", self.primary.len()))
            .field("extras", &self.extras.keys().collect::<Vec<_>>())
            .finish()
    }
}
