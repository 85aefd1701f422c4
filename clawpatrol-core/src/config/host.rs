//! Host entry grammar and matching (reference §1.9.1).

use std::net::{Ipv4Addr, Ipv6Addr};

/// One validated host entry of an endpoint (`hosts`, `server` or `host`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    /// The entry as written.
    pub raw: String,
    /// The lower-cased host; for a wildcard, the suffix after `*.`.
    pub host: String,
    /// The pinned port, if any.
    pub port: Option<u16>,
    /// `*.suffix` entry.
    pub wildcard: bool,
}

/// Why a host entry is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// Nothing was given.
    #[error("host is empty")]
    Empty,
    /// `host:` with no port.
    #[error("`{0}` ends with `:` but gives no port")]
    MissingPort(String),
    /// A port that is not 1..65535.
    #[error("port `{port}` of `{entry}` is not a number from 1 to 65535")]
    BadPort {
        /// The entry.
        entry: String,
        /// The port text.
        port: String,
    },
    /// A `[v6]` literal that does not parse.
    #[error("`{0}` is not a valid bracketed IPv6 address")]
    BadIpv6(String),
    /// A `*` anywhere but as the whole leftmost label.
    #[error("`{0}`: `*` is only allowed as the whole leftmost label, as in `*.example.com`")]
    BadWildcard(String),
    /// A wildcard suffix that is too broad or malformed.
    #[error("`{entry}`: wildcard suffix {why}")]
    BadSuffix {
        /// The entry.
        entry: String,
        /// What is wrong.
        why: &'static str,
    },
    /// Whitespace or a URL where a host belongs.
    #[error("`{0}` is not a host name: give `host` or `host:port`, not a URL")]
    NotAHost(String),
}

impl HostPattern {
    /// Parses and validates one host entry.
    pub fn parse(entry: &str) -> Result<HostPattern, HostError> {
        if entry.is_empty() {
            return Err(HostError::Empty);
        }
        if entry.chars().any(|c| c.is_whitespace() || c == '/') {
            return Err(HostError::NotAHost(entry.to_string()));
        }
        let (host, port) = split_host_port(entry)?;
        let lower = host.to_ascii_lowercase();
        if let Some(suffix) = lower.strip_prefix("*.") {
            validate_suffix(entry, suffix)?;
            return Ok(HostPattern {
                raw: entry.to_string(),
                host: suffix.to_string(),
                port,
                wildcard: true,
            });
        }
        if lower.contains('*') {
            return Err(HostError::BadWildcard(entry.to_string()));
        }
        Ok(HostPattern {
            raw: entry.to_string(),
            host: lower,
            port,
            wildcard: false,
        })
    }

    /// Does this entry claim `host` (with `port` if the agent's target has one)?
    /// A pinned port must equal the target's port when the target gives one.
    pub fn matches(&self, host: &str, port: Option<u16>) -> bool {
        if let (Some(a), Some(b)) = (self.port, port) {
            if a != b {
                return false;
            }
        }
        if self.wildcard {
            host.len() > self.host.len() + 1
                && ends_with_ignore_case(host, &self.host)
                && host.as_bytes()[host.len() - self.host.len() - 1] == b'.'
        } else {
            host.eq_ignore_ascii_case(&self.host)
        }
    }

    /// The normalised key used for duplicate detection within an endpoint.
    pub fn key(&self) -> String {
        let star = if self.wildcard { "*." } else { "" };
        match self.port {
            Some(p) => format!("{star}{}:{p}", self.host),
            None => format!("{star}{}", self.host),
        }
    }
}

fn ends_with_ignore_case(s: &str, suffix: &str) -> bool {
    s.len() >= suffix.len()
        && s.as_bytes()[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

/// Splits `host[:port]`, `[v6]:port` and bare IPv6 (two or more colons, no port).
pub fn split_host_port(entry: &str) -> Result<(&str, Option<u16>), HostError> {
    if let Some(rest) = entry.strip_prefix('[') {
        let close = rest
            .find(']')
            .ok_or_else(|| HostError::BadIpv6(entry.to_string()))?;
        let addr = &rest[..close];
        if addr.parse::<Ipv6Addr>().is_err() {
            return Err(HostError::BadIpv6(entry.to_string()));
        }
        let after = &rest[close + 1..];
        return match after.strip_prefix(':') {
            Some(p) => Ok((addr, Some(parse_port(entry, p)?))),
            None if after.is_empty() => Ok((addr, None)),
            None => Err(HostError::BadIpv6(entry.to_string())),
        };
    }
    match entry.matches(':').count() {
        0 => Ok((entry, None)),
        1 => {
            let (h, p) = entry.split_once(':').unwrap_or((entry, ""));
            if h.is_empty() {
                return Err(HostError::Empty);
            }
            Ok((h, Some(parse_port(entry, p)?)))
        }
        _ => Ok((entry, None)),
    }
}

fn parse_port(entry: &str, p: &str) -> Result<u16, HostError> {
    if p.is_empty() {
        return Err(HostError::MissingPort(entry.to_string()));
    }
    let bad = || HostError::BadPort {
        entry: entry.to_string(),
        port: p.to_string(),
    };
    if p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match p.parse::<u32>() {
        Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
        _ => Err(bad()),
    }
}

fn validate_suffix(entry: &str, suffix: &str) -> Result<(), HostError> {
    let bad = |why| HostError::BadSuffix {
        entry: entry.to_string(),
        why,
    };
    if suffix.is_empty() {
        return Err(bad("is empty"));
    }
    if suffix.contains('*') {
        return Err(HostError::BadWildcard(entry.to_string()));
    }
    if suffix.starts_with('.') || suffix.ends_with('.') || suffix.split('.').any(str::is_empty) {
        return Err(bad("has an empty label"));
    }
    if suffix.parse::<Ipv4Addr>().is_ok() || suffix.parse::<Ipv6Addr>().is_ok() {
        return Err(bad("is an IP address"));
    }
    if !suffix.contains('.') {
        return Err(bad(
            "must contain a dot (`*.com` would claim a whole top-level domain)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_reference_forms() {
        for ok in [
            "api.github.com",
            "pg.internal:5432",
            "10.0.0.1",
            "10.0.0.1:5432",
            "[::1]:443",
            "fe80::1",
            "*.foo.com",
            "*.foo.com:8443",
            "synthetic_name",
        ] {
            HostPattern::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "host:",
            "host:0",
            "host:65536",
            "host:123456",
            "host:ab",
            "*.com",
            "*foo.com",
            "a.*.com",
            "*.",
            "*..com",
            "*.foo.com.",
            "*.10.0.0.1",
            "https://x",
            "[zz]:1",
            "a b",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn wildcard_matching() {
        let p = HostPattern::parse("*.foo.com").unwrap();
        assert!(p.matches("a.foo.com", None));
        assert!(p.matches("a.b.FOO.com", Some(443)));
        assert!(!p.matches("foo.com", None));
        assert!(!p.matches("xfoo.com", None));
        let q = HostPattern::parse("pg.internal:5432").unwrap();
        assert!(q.matches("pg.internal", None));
        assert!(q.matches("PG.internal", Some(5432)));
        assert!(!q.matches("pg.internal", Some(5433)));
    }
}
