//! The decoded, reference-checked config: what the loader hands to the policy compiler.
//!
//! Every item keeps its declaration order and the source span of its block, so later
//! stages (CEL compilation, lint) can point at the source.

use std::collections::BTreeMap;

use super::host::HostPattern;
use super::source::SourceFile;
use crate::facts::Family;

/// A byte range in one of the config's source files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SourceSpan {
    /// Index into [`Config::sources`].
    pub file: usize,
    /// Start byte offset.
    pub start: usize,
    /// End byte offset.
    pub end: usize,
}

/// A whole decoded config (one file, or a directory of files merged in name order).
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The source files, in load order.
    pub sources: Vec<SourceFile>,
    /// `schema_version` (absent → 0).
    pub schema_version: Option<i64>,
    /// The `gateway` block, if present (optional for the engine: DESIGN §4.3).
    pub gateway: Option<Gateway>,
    /// The `defaults` block (defaults applied when absent).
    pub defaults: Defaults,
    /// `plugin` blocks.
    pub plugins: Vec<Plugin>,
    /// `endpoint` blocks, declaration order.
    pub endpoints: Vec<Endpoint>,
    /// `credential` blocks, declaration order.
    pub credentials: Vec<Credential>,
    /// `approver` blocks, declaration order (the built-in dashboard is not listed).
    pub approvers: Vec<Approver>,
    /// `tunnel` blocks, declaration order.
    pub tunnels: Vec<Tunnel>,
    /// `rule` blocks, declaration order (files by name, then position).
    pub rules: Vec<Rule>,
    /// `profile` blocks, declaration order.
    pub profiles: Vec<Profile>,
}

/// `gateway { … }` (reference §1.4).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gateway {
    /// `dashboard_listen`.
    pub dashboard_listen: Option<String>,
    /// `public_url`, trimmed of whitespace and a trailing `/`.
    pub public_url: Option<String>,
    /// `state_dir`.
    pub state_dir: Option<String>,
    /// `dashboard_session_ttl` in seconds (default 24 h).
    pub dashboard_session_ttl_secs: u64,
    /// `dashboard_config_writes`.
    pub dashboard_config_writes: bool,
    /// `resolver` (`host:port`).
    pub resolver: Option<String>,
    /// `log_path`.
    pub log_path: Option<String>,
    /// `telemetry` (None = on).
    pub telemetry: Option<bool>,
    /// `session_keep` in seconds; `None` = sweeping disabled (`"0"`/`"off"`).
    pub session_keep_secs: Option<u64>,
    /// `actions_keep` in seconds; `None` = sweeping disabled.
    pub actions_keep_secs: Option<u64>,
    /// `limits { body_buffer }` in bytes (default 1 MiB).
    pub body_buffer: u64,
    /// `limits { body_storage }` in bytes (default 4 KiB).
    pub body_storage: u64,
    /// `genai_telemetry { include_message_content }`, when the block is present.
    pub genai_telemetry: Option<bool>,
    /// `wireguard { … }`.
    pub wireguard: Option<Wireguard>,
    /// `tailscale { … }`.
    pub tailscale: Option<Tailscale>,
    /// Our extension (DESIGN §3): explicit forward proxy listener.
    pub proxy_listen: Option<String>,
    /// Our extension: transparent TLS listener.
    pub transparent_listen: Option<String>,
    /// Our extension: management API listener.
    pub management_listen: Option<String>,
}

/// `wireguard { … }` (reference §1.4.2).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Wireguard {
    /// `subnet_cidr` (required).
    pub subnet_cidr: String,
    /// `listen_port` (default 51820).
    pub listen_port: u16,
    /// `host_loopback_port` (default 8443).
    pub host_loopback_port: u16,
    /// `endpoint` (`host:port`).
    pub endpoint: Option<String>,
    /// `interface`.
    pub interface: Option<String>,
    /// `server_pub`.
    pub server_pub: Option<String>,
}

/// `tailscale { … }` (reference §1.4.3).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tailscale {
    /// `authkey`.
    pub authkey: Option<String>,
    /// `hostname` (default `clawpatrol-gateway`).
    pub hostname: String,
    /// `control_url`.
    pub control_url: Option<String>,
    /// `tags`.
    pub tags: Vec<String>,
    /// `operators` (`user@domain` or `*@domain`).
    pub operators: Vec<String>,
    /// `funnel`.
    pub funnel: bool,
    /// `oauth_client_id`.
    pub oauth_client_id: Option<String>,
    /// `oauth_client_secret`.
    pub oauth_client_secret: Option<String>,
}

/// `defaults { … }` (reference §1.5).
#[derive(Debug, Clone, PartialEq)]
pub struct Defaults {
    /// `unknown_host`: passthrough or deny.
    pub unknown_host: UnknownHost,
    /// `llm_fail_mode` (`closed` or `open`).
    pub llm_fail_mode: String,
    /// `llm_cache_ttl` seconds (default 3600).
    pub llm_cache_ttl_secs: u64,
    /// `human_timeout` seconds (default 600).
    pub human_timeout_secs: u64,
    /// `human_on_timeout` (`deny` or `allow`).
    pub human_on_timeout: String,
    /// Our extension (DESIGN §3): profile for unauthenticated local connections.
    pub profile: Option<String>,
}

impl Default for Defaults {
    fn default() -> Defaults {
        Defaults {
            unknown_host: UnknownHost::Passthrough,
            llm_fail_mode: "closed".to_string(),
            llm_cache_ttl_secs: 3600,
            human_timeout_secs: 600,
            human_on_timeout: "deny".to_string(),
            profile: None,
        }
    }
}

/// What happens to TLS flows whose SNI no endpoint claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownHost {
    /// Splice unchanged.
    Passthrough,
    /// Close the connection.
    Deny,
}

/// `plugin "<name>" { … }` (reference §1.6).
#[derive(Debug, Clone, PartialEq)]
pub struct Plugin {
    /// The label.
    pub name: String,
    /// `source`.
    pub source: String,
    /// `version` constraint.
    pub version: Option<String>,
    /// `provenance`: warn, require or off.
    pub provenance: String,
    /// `network`: none or outbound.
    pub network: Option<String>,
    /// `sandbox`: enforce or off.
    pub sandbox: String,
    /// `read_paths`.
    pub read_paths: Vec<String>,
    /// The block's span.
    pub span: SourceSpan,
}

/// An attribute value that is either absent or a string-typed map of extra attributes.
pub type Attrs = BTreeMap<String, AttrValue>;

/// A decoded type-specific attribute value of an endpoint, credential, approver or tunnel.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// A string (or a resolved reference, as its bare name).
    Str(String),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A list of strings (or of resolved references).
    List(Vec<String>),
    /// A string map.
    Map(BTreeMap<String, String>),
    /// A nested block's attributes (e.g. `async_grant { … }`).
    Block(Attrs),
}

/// `endpoint "<type>" "<name>" { … }` (reference §1.9).
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// The type label (`https`, `postgres`, …).
    pub kind: String,
    /// The name label.
    pub name: String,
    /// The family the type belongs to.
    pub family: Family,
    /// The host entries (`hosts`, or `[server]`/`[host]`), validated.
    pub hosts: Vec<HostPattern>,
    /// `tunnel` (framework attribute): the tunnel's name.
    pub tunnel: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `retention` seconds; `Some(None)` = keep forever (`0`/`off`).
    pub retention_secs: Option<Option<u64>>,
    /// Type-specific attributes (`sslmode`, `ca_cert` with files inlined, `listen`, …).
    pub attrs: Attrs,
    /// The block's span.
    pub span: SourceSpan,
}

impl Endpoint {
    /// The typed name, `<type>.<name>`.
    pub fn typed_name(&self) -> String {
        format!("{}.{}", self.kind, self.name)
    }
}

/// `credential "<type>" "<name>" { … }` (reference §1.10).
#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    /// The type label.
    pub kind: String,
    /// The name label.
    pub name: String,
    /// Bound endpoints (names), from `endpoint` or `endpoints`.
    pub endpoints: Vec<String>,
    /// Block-side disambiguators (`placeholder`, `user`, `database`), empties dropped.
    pub disambiguators: BTreeMap<String, String>,
    /// `description`.
    pub description: Option<String>,
    /// Type-specific attributes.
    pub attrs: Attrs,
    /// The block's span.
    pub span: SourceSpan,
}

/// `approver "<type>" "<name>" { … }` (reference §1.11).
#[derive(Debug, Clone, PartialEq)]
pub struct Approver {
    /// `human_approver` or `llm_approver`.
    pub kind: String,
    /// The name label.
    pub name: String,
    /// Type-specific attributes (`channel`, `model`, `policy`, `timeout`, …).
    pub attrs: Attrs,
    /// The block's span.
    pub span: SourceSpan,
}

/// `tunnel "<type>" "<name>" { … }` (reference §1.14).
#[derive(Debug, Clone, PartialEq)]
pub struct Tunnel {
    /// The type label.
    pub kind: String,
    /// The name label.
    pub name: String,
    /// `share`.
    pub share: String,
    /// `keepalive`: `None` = always; `Some(secs)`.
    pub keepalive_secs: Option<u64>,
    /// `via`: another tunnel's name.
    pub via: Option<String>,
    /// `credential`.
    pub credential: Option<String>,
    /// Type-specific attributes.
    pub attrs: Attrs,
    /// The block's span.
    pub span: SourceSpan,
}

/// A rule's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `verdict = "allow"`.
    Allow,
    /// `verdict = "deny"`.
    Deny,
    /// `approve = [...]`: approver references in order, each as `<type>.<name>`
    /// (`builtin.dashboard` for the built-in dashboard).
    Approve(Vec<String>),
}

/// A rule's CEL condition with where it sits in the source.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The expression text.
    pub text: String,
    /// The span of the attribute value.
    pub span: SourceSpan,
    /// The file byte offset of `text[0]` when the text maps 1:1 onto the source (a quoted
    /// string without escapes); CEL error offsets are then shown at their exact position.
    pub content_start: Option<usize>,
}

/// `rule "<name>" { … }` (reference §1.12).
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The name label.
    pub name: String,
    /// Target endpoints as indexes into [`Config::endpoints`] (all of one family).
    pub endpoints: Vec<usize>,
    /// The family inferred from the endpoints.
    pub family: Family,
    /// `priority` (default 0).
    pub priority: i64,
    /// `disabled`.
    pub disabled: bool,
    /// `condition`; `None` (or empty) matches everything.
    pub condition: Option<Condition>,
    /// `credential` pin: the credential's bare name.
    pub credential: Option<String>,
    /// `verdict` or `approve`.
    pub outcome: Outcome,
    /// `reason`.
    pub reason: Option<String>,
    /// The block's span.
    pub span: SourceSpan,
}

/// One credential entry of a profile.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileEntry {
    /// The credential's bare name.
    pub credential: String,
    /// Profile-inline disambiguators.
    pub disambiguators: BTreeMap<String, String>,
}

/// `profile "<name>" { … }` (reference §1.13).
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// The name label.
    pub name: String,
    /// `credentials`, in order.
    pub credentials: Vec<ProfileEntry>,
    /// `hitl_async_grants`.
    pub hitl_async_grants: bool,
    /// The block's span.
    pub span: SourceSpan,
}

impl Config {
    /// Resolves a span to a location for diagnostics.
    pub fn location(&self, span: SourceSpan) -> Option<super::diag::Location> {
        self.sources
            .get(span.file)
            .map(|f| f.location(span.start, span.end))
    }
}
