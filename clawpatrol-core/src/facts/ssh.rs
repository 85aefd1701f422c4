//! SSH channel-action facts (`ssh.*`, reference §2.3 and §3.6).

use serde::{Deserialize, Serialize};

/// The facts of one SSH channel action.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshFacts {
    /// `pty`/`exec`/`shell`/`subsystem`/`forward`, lower-cased.
    #[serde(default)]
    pub verb: String,
    /// The exec command line, or `""`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub command: String,
    /// The subsystem name, or `""`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subsystem: String,
    /// The direct-tcpip destination host.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub forward_host: String,
    /// The direct-tcpip destination port, or 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub forward_port: i64,
    /// The SSH user name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// Buffered stdin of a no-pty shell/exec.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stdin: String,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

impl SshFacts {
    /// Normalises case rules (the verb is lower-cased).
    pub fn normalized(mut self) -> SshFacts {
        self.verb.make_ascii_lowercase();
        self
    }
}
