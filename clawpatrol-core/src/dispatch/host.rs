//! Endpoint resolution by typed name and by host (reference §1.9.1, §7.3).

use crate::config::host::split_host_port;
use crate::engine::Policy;

/// Why a typed name or host does not resolve to exactly one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// Not `<type>.<name>`.
    #[error("endpoint `{0}` must use the typed form `endpoint-type.endpoint-name` (e.g. `https.github`)")]
    NotTyped(String),
    /// No endpoint of that name.
    #[error("endpoint `{0}` is not in the compiled policy")]
    Unknown(String),
    /// The name exists with another type.
    #[error("endpoint `{given}`: endpoint `{name}` is type `{actual}`, not `{wanted}`")]
    WrongType {
        /// What was asked for.
        given: String,
        /// The bare name.
        name: String,
        /// Its real type.
        actual: String,
        /// The type asked for.
        wanted: String,
    },
    /// Several endpoints claim the host equally well.
    #[error("host `{host}` is claimed by multiple endpoints [{}]; name the endpoint to disambiguate", .endpoints.join(" "))]
    Ambiguous {
        /// The host.
        host: String,
        /// The claiming endpoints (typed names, sorted).
        endpoints: Vec<String>,
    },
}

/// How well one endpoint claims a host: exact beats wildcard, a longer wildcard suffix beats a
/// shorter one, a pinned port that matches beats an unpinned entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Claim {
    exact: bool,
    suffix_len: usize,
    port_pinned: bool,
}

impl Policy {
    /// The endpoint named `<type>.<name>`, checked like a fixture's `match.endpoint`.
    pub fn endpoint_by_typed_name(&self, typed: &str) -> Result<&str, ResolveError> {
        let (kind, name) = typed
            .split_once('.')
            .filter(|(k, n)| !k.is_empty() && !n.is_empty())
            .ok_or_else(|| ResolveError::NotTyped(typed.to_string()))?;
        if let Some(&i) = self.by_typed_name.get(typed) {
            return Ok(&*self.endpoints[i].typed_name);
        }
        match self.config.endpoints.iter().find(|e| e.name == name) {
            Some(e) => Err(ResolveError::WrongType {
                given: typed.to_string(),
                name: name.to_string(),
                actual: e.kind.clone(),
                wanted: kind.to_string(),
            }),
            None => Err(ResolveError::Unknown(typed.to_string())),
        }
    }

    /// The endpoint (typed name) claiming `host` (`name`, `name:port`, `[v6]:port`) across all
    /// endpoints; `Ok(None)` when none claims it.
    pub fn endpoint_for_host(&self, host: &str) -> Result<Option<&str>, ResolveError> {
        Ok(self
            .resolve_host(host)?
            .map(|i| &*self.endpoints[i].typed_name))
    }

    /// The endpoint claiming `host` among those `profile` reaches (reference §2.8: a profile
    /// that binds no credential of an endpoint does not see it). `None` profile = default.
    pub fn endpoint_for_host_in_profile(
        &self,
        host: &str,
        profile: Option<&str>,
    ) -> Result<Option<&str>, ResolveError> {
        let Some(profile) = profile.or(self.dispatch.default_profile()) else {
            return Ok(None);
        };
        Ok(self
            .resolve_host_filtered(host, |i| self.dispatch.reaches(profile, i))?
            .map(|i| &*self.endpoints[i].typed_name))
    }

    pub(crate) fn resolve_host(&self, host: &str) -> Result<Option<usize>, ResolveError> {
        self.resolve_host_filtered(host, |_| true)
    }

    fn resolve_host_filtered(
        &self,
        host: &str,
        keep: impl Fn(usize) -> bool,
    ) -> Result<Option<usize>, ResolveError> {
        if host.is_empty() {
            return Ok(None);
        }
        let (name, port) = split_host_port(host).unwrap_or((host, None));
        let mut best: Option<Claim> = None;
        let mut winners: Vec<usize> = Vec::new();
        for (i, ep) in self.config.endpoints.iter().enumerate() {
            if !keep(i) {
                continue;
            }
            let claim = ep
                .hosts
                .iter()
                .filter(|p| p.matches(name, port))
                .map(|p| Claim {
                    exact: !p.wildcard,
                    suffix_len: p.host.len(),
                    port_pinned: p.port.is_some() && port.is_some(),
                })
                .max();
            let Some(claim) = claim else { continue };
            match best.as_ref().map(|b| claim.cmp(b)) {
                None | Some(std::cmp::Ordering::Greater) => {
                    best = Some(claim);
                    winners.clear();
                    winners.push(i);
                }
                Some(std::cmp::Ordering::Equal) => winners.push(i),
                Some(std::cmp::Ordering::Less) => {}
            }
        }
        match winners.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            many => {
                let mut endpoints: Vec<String> = many
                    .iter()
                    .map(|&i| self.endpoints[i].typed_name.to_string())
                    .collect();
                endpoints.sort();
                Err(ResolveError::Ambiguous {
                    host: host.to_string(),
                    endpoints,
                })
            }
        }
    }
}
