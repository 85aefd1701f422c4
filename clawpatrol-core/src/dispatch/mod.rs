//! Endpoint resolution by host or typed name, and credential dispatch (pure functions).

pub mod credential;
pub mod host;
pub mod http;

pub use credential::{choose, choose_ssh, DispatchEntry, DispatchRequest};
pub use host::ResolveError;
pub use http::http_haystack;

use crate::engine::Policy;

impl Policy {
    /// The default profile: `defaults.profile`, else the profile named `default`, else the
    /// first declared.
    pub fn default_profile(&self) -> Option<&str> {
        self.dispatch.default_profile()
    }

    /// The credential that applies to a request of `profile` on `endpoint` (typed name), per
    /// reference §4.3. `profile = None` (or unknown) uses the endpoint's only globally bound
    /// credential, if it has exactly one.
    pub fn resolve_credential(
        &self,
        profile: Option<&str>,
        endpoint: &str,
        req: &DispatchRequest<'_>,
    ) -> Option<&str> {
        let &ei = self.by_typed_name.get(endpoint)?;
        match profile.filter(|p| self.dispatch.has_profile(p)) {
            Some(p) => choose(self.dispatch.entries(p, ei)?, req),
            None => match self.dispatch.global(ei) {
                [only] => Some(only.as_str()),
                _ => None,
            },
        }
    }

    /// SSH credential dispatch (reference §4.3): the entry whose `user` equals the SSH user,
    /// else the entry without `user`; an unknown profile gets none.
    pub fn resolve_ssh_credential(
        &self,
        profile: Option<&str>,
        endpoint: &str,
        ssh_user: &str,
    ) -> Option<&str> {
        let &ei = self.by_typed_name.get(endpoint)?;
        let p = profile.filter(|p| self.dispatch.has_profile(p))?;
        choose_ssh(self.dispatch.entries(p, ei)?, ssh_user)
    }

    /// The dispatch entries of a (profile, endpoint) pair, for tooling.
    pub fn dispatch_entries(&self, profile: &str, endpoint: &str) -> &[DispatchEntry] {
        self.by_typed_name
            .get(endpoint)
            .and_then(|&ei| self.dispatch.entries(profile, ei))
            .unwrap_or(&[])
    }
}
