//! Credential dispatch (reference §4.3): which credential of a profile applies to a request.

use std::collections::{BTreeMap, HashMap};

use crate::config::model::Config;

/// One candidate credential of a (profile, endpoint) pair with its merged disambiguators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchEntry {
    /// The credential's name.
    pub credential: String,
    /// Block-side disambiguators overlaid by profile-inline ones (profile wins per field).
    pub disambiguators: BTreeMap<String, String>,
}

/// What a request offers to dispatch on.
#[derive(Debug, Clone, Copy, Default)]
pub struct DispatchRequest<'a> {
    /// Where placeholders are searched (e.g. the `Authorization` header, the decoded Basic
    /// payload and the `Cookie` header for HTTPS; the startup `user` for Postgres).
    pub haystack: &'a [&'a str],
    /// The request's user (Postgres/ClickHouse startup user).
    pub user: Option<&'a str>,
    /// The request's database.
    pub database: Option<&'a str>,
}

/// Per profile and endpoint, the credentials that may apply; built once per policy.
#[derive(Debug, Default)]
pub(crate) struct DispatchTable {
    /// profile name → endpoint index → entries in the profile's order.
    by_profile: HashMap<String, HashMap<usize, Vec<DispatchEntry>>>,
    /// endpoint index → every credential bound to it (any profile), declaration order.
    global: HashMap<usize, Vec<String>>,
    /// The default profile: `defaults.profile`, else `default`, else the first declared.
    default_profile: Option<String>,
}

impl DispatchTable {
    /// Builds the table from a decoded config.
    pub(crate) fn build(config: &Config) -> DispatchTable {
        let ep_index: HashMap<&str, usize> = config
            .endpoints
            .iter()
            .enumerate()
            .map(|(i, e)| (e.name.as_str(), i))
            .collect();
        let creds: HashMap<&str, &crate::config::model::Credential> = config
            .credentials
            .iter()
            .map(|c| (c.name.as_str(), c))
            .collect();
        let mut global: HashMap<usize, Vec<String>> = HashMap::new();
        for c in &config.credentials {
            for e in &c.endpoints {
                if let Some(&ei) = ep_index.get(e.as_str()) {
                    global.entry(ei).or_default().push(c.name.clone());
                }
            }
        }
        let mut by_profile = HashMap::new();
        for p in &config.profiles {
            let mut per_ep: HashMap<usize, Vec<DispatchEntry>> = HashMap::new();
            for entry in &p.credentials {
                let Some(c) = creds.get(entry.credential.as_str()) else {
                    continue;
                };
                let mut merged = c.disambiguators.clone();
                merged.retain(|_, v| !v.is_empty());
                for (k, v) in &entry.disambiguators {
                    merged.insert(k.clone(), v.clone());
                }
                for e in &c.endpoints {
                    if let Some(&ei) = ep_index.get(e.as_str()) {
                        per_ep.entry(ei).or_default().push(DispatchEntry {
                            credential: c.name.clone(),
                            disambiguators: merged.clone(),
                        });
                    }
                }
            }
            by_profile.insert(p.name.clone(), per_ep);
        }
        let default_profile = config
            .defaults
            .profile
            .clone()
            .or_else(|| {
                config
                    .profiles
                    .iter()
                    .find(|p| p.name == "default")
                    .map(|p| p.name.clone())
            })
            .or_else(|| config.profiles.first().map(|p| p.name.clone()));
        DispatchTable {
            by_profile,
            global,
            default_profile,
        }
    }

    /// The default profile's name.
    pub(crate) fn default_profile(&self) -> Option<&str> {
        self.default_profile.as_deref()
    }

    /// Does the profile reach the endpoint (does it bind a credential of it)?
    pub(crate) fn reaches(&self, profile: &str, endpoint: usize) -> bool {
        self.by_profile
            .get(profile)
            .is_some_and(|m| m.get(&endpoint).is_some_and(|v| !v.is_empty()))
    }

    /// The entries of a (profile, endpoint) pair.
    pub(crate) fn entries(&self, profile: &str, endpoint: usize) -> Option<&[DispatchEntry]> {
        self.by_profile
            .get(profile)
            .and_then(|m| m.get(&endpoint))
            .map(Vec::as_slice)
    }

    /// Credentials bound to an endpoint by any profile's credentials.
    pub(crate) fn global(&self, endpoint: usize) -> &[String] {
        self.global.get(&endpoint).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Does the named profile exist?
    pub(crate) fn has_profile(&self, profile: &str) -> bool {
        self.by_profile.contains_key(profile)
    }
}

/// Picks the credential among `entries` per reference §4.3 steps 2–5.
pub fn choose<'e>(entries: &'e [DispatchEntry], req: &DispatchRequest<'_>) -> Option<&'e str> {
    match entries {
        [] => return None,
        [only] => return Some(&only.credential),
        _ => {}
    }
    let detected: Option<&str> = if entries
        .iter()
        .any(|e| e.disambiguators.contains_key("placeholder"))
    {
        entries
            .iter()
            .filter_map(|e| e.disambiguators.get("placeholder"))
            .find(|p| req.haystack.iter().any(|h| h.contains(p.as_str())))
            .map(String::as_str)
    } else {
        None
    };
    let matches = |e: &DispatchEntry| {
        e.disambiguators.iter().all(|(k, v)| match k.as_str() {
            "placeholder" => detected == Some(v.as_str()),
            "user" => req.user == Some(v.as_str()),
            "database" => req.database == Some(v.as_str()),
            _ => false,
        })
    };
    let mut best: Option<&DispatchEntry> = None;
    let mut tie = false;
    for e in entries.iter().filter(|e| matches(e)) {
        match best {
            Some(b) if e.disambiguators.len() == b.disambiguators.len() => tie = true,
            Some(b) if e.disambiguators.len() < b.disambiguators.len() => {}
            _ => {
                best = Some(e);
                tie = false;
            }
        }
    }
    if tie {
        return None;
    }
    best.map(|e| e.credential.as_str())
}

/// SSH dispatch: the entry whose `user` equals the SSH user wins, else the entry without
/// `user` (the fallback).
pub fn choose_ssh<'e>(entries: &'e [DispatchEntry], ssh_user: &str) -> Option<&'e str> {
    entries
        .iter()
        .find(|e| e.disambiguators.get("user").map(String::as_str) == Some(ssh_user))
        .or_else(|| {
            entries
                .iter()
                .find(|e| !e.disambiguators.contains_key("user"))
        })
        .map(|e| e.credential.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, d: &[(&str, &str)]) -> DispatchEntry {
        DispatchEntry {
            credential: name.to_string(),
            disambiguators: d
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn single_entry_wins_unconditionally() {
        let e = [entry("a", &[("user", "x")])];
        assert_eq!(choose(&e, &DispatchRequest::default()), Some("a"));
        assert_eq!(choose(&[], &DispatchRequest::default()), None);
    }

    #[test]
    fn placeholder_detection_then_most_specific() {
        let e = [
            entry("fallback", &[]),
            entry("ro", &[("placeholder", "ph-ro")]),
            entry("rw", &[("placeholder", "ph-rw")]),
        ];
        let hay = ["Bearer ph-rw"];
        let req = DispatchRequest {
            haystack: &hay,
            ..Default::default()
        };
        assert_eq!(choose(&e, &req), Some("rw"));
        let none = DispatchRequest::default();
        assert_eq!(choose(&e, &none), Some("fallback"));
    }

    #[test]
    fn user_and_database_and_ties() {
        let e = [
            entry("u", &[("user", "app")]),
            entry("ud", &[("user", "app"), ("database", "prod")]),
            entry("d", &[("database", "prod")]),
        ];
        let req = DispatchRequest {
            user: Some("app"),
            database: Some("prod"),
            ..Default::default()
        };
        assert_eq!(choose(&e, &req), Some("ud"));
        let req = DispatchRequest {
            user: Some("other"),
            database: Some("prod"),
            ..Default::default()
        };
        assert_eq!(choose(&e, &req), Some("d"));
        let tie = [
            entry("a", &[("user", "x")]),
            entry("b", &[("database", "y")]),
        ];
        let req = DispatchRequest {
            user: Some("x"),
            database: Some("y"),
            ..Default::default()
        };
        assert_eq!(
            choose(&tie, &req),
            None,
            "a tie at the top refuses to guess"
        );
        let odd = [
            entry("a", &[("region", "x")]),
            entry("b", &[("user", "nope")]),
        ];
        assert_eq!(choose(&odd, &DispatchRequest::default()), None);
    }

    #[test]
    fn ssh_user_then_fallback() {
        let e = [entry("fb", &[]), entry("deploy", &[("user", "deploy")])];
        assert_eq!(choose_ssh(&e, "deploy"), Some("deploy"));
        assert_eq!(choose_ssh(&e, "root"), Some("fb"));
        assert_eq!(choose_ssh(&e[1..], "root"), None);
    }
}
