//! Which profile a local connection belongs to (DESIGN §3 "Local mode").

use base64::Engine;
use clawpatrol_core::Policy;

use crate::state::StateDir;

/// The profile for a connection: from `Proxy-Authorization` (Basic, user = profile,
/// password = its token), else `defaults.profile`, else the only declared profile.
/// `Err` carries the reason for a 407.
pub fn identify(
    policy: &Policy,
    state: &StateDir,
    proxy_auth: Option<&[u8]>,
) -> Result<Option<String>, String> {
    let config = policy.config();
    if let Some(value) = proxy_auth {
        let (user, token) = basic_credentials(value)
            .ok_or_else(|| "proxy credentials must be Basic <profile>:<token>".to_string())?;
        let known = config.profiles.iter().any(|p| p.name == user);
        if known && state.check_profile_token(&user, &token) {
            return Ok(Some(user));
        }
        return Err(format!(
            "proxy credentials for `{user}` are not valid (see `clawpatrol env --profile NAME`)"
        ));
    }
    if let Some(p) = &config.defaults.profile {
        return Ok(Some(p.clone()));
    }
    match config.profiles.as_slice() {
        [] => Ok(None),
        [only] => Ok(Some(only.name.clone())),
        many => Err(format!(
            "{} profiles are declared and none is the default: authenticate with \
             Proxy-Authorization (see `clawpatrol env --profile NAME`) or set defaults.profile",
            many.len()
        )),
    }
}

/// Decodes `Basic base64(user:password)`.
fn basic_credentials(value: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let (scheme, payload) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(payload.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_basic() {
        assert_eq!(
            basic_credentials(b"Basic ZGV2OnNlY3JldA=="),
            Some(("dev".to_string(), "secret".to_string()))
        );
        assert_eq!(basic_credentials(b"Bearer x"), None);
        assert_eq!(basic_credentials(b"Basic !!!"), None);
    }
}
