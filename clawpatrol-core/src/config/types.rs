//! The schema tables: every block kind and type with its attributes (reference §1.4-§1.14).

use crate::facts::Family;

/// A kind of named, referenceable item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// `endpoint "<type>" "<name>"`.
    Endpoint,
    /// `credential "<type>" "<name>"`.
    Credential,
    /// `approver "<type>" "<name>"`.
    Approver,
    /// `tunnel "<type>" "<name>"`.
    Tunnel,
    /// `rule "<name>"`.
    Rule,
    /// `profile "<name>"`.
    Profile,
}

impl Kind {
    /// All kinds.
    pub const ALL: [Kind; 6] = [
        Kind::Endpoint,
        Kind::Credential,
        Kind::Approver,
        Kind::Tunnel,
        Kind::Rule,
        Kind::Profile,
    ];

    /// The block keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Endpoint => "endpoint",
            Kind::Credential => "credential",
            Kind::Approver => "approver",
            Kind::Tunnel => "tunnel",
            Kind::Rule => "rule",
            Kind::Profile => "profile",
        }
    }

    /// The kind for a top-level block keyword.
    pub fn from_keyword(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// `an endpoint`, `a credential`, …
    pub fn with_article(self) -> &'static str {
        match self {
            Kind::Endpoint => "an endpoint",
            Kind::Credential => "a credential",
            Kind::Approver => "an approver",
            Kind::Tunnel => "a tunnel",
            Kind::Rule => "a rule",
            Kind::Profile => "a profile",
        }
    }

    /// Whether blocks of this kind take a type label before the name.
    pub fn typed(self) -> bool {
        !matches!(self, Kind::Rule | Kind::Profile)
    }

    /// The known types of a two-label kind.
    pub fn types(self) -> &'static [TypeDef] {
        match self {
            Kind::Endpoint => ENDPOINT_TYPES,
            Kind::Credential => CREDENTIAL_TYPES,
            Kind::Approver => APPROVER_TYPES,
            Kind::Tunnel => TUNNEL_TYPES,
            Kind::Rule | Kind::Profile => &[],
        }
    }

    /// Attributes accepted on every block of the kind.
    pub fn framework(self) -> &'static [Field] {
        match self {
            Kind::Endpoint => ENDPOINT_FRAMEWORK,
            Kind::Credential => CREDENTIAL_FRAMEWORK,
            Kind::Tunnel => TUNNEL_FRAMEWORK,
            Kind::Approver => &[],
            Kind::Rule => RULE_FIELDS,
            Kind::Profile => PROFILE_FIELDS,
        }
    }

    /// The type definition named `ty`.
    pub fn type_def(self, ty: &str) -> Option<&'static TypeDef> {
        self.types().iter().find(|t| t.name == ty)
    }
}

/// The kind whose types include `root` as a reference root (`https` → endpoint,
/// `rule` → rule, `builtin` → approver).
pub(crate) fn kind_of_root(root: &str) -> Option<Kind> {
    match root {
        "rule" => return Some(Kind::Rule),
        "profile" => return Some(Kind::Profile),
        "builtin" => return Some(Kind::Approver),
        _ => {}
    }
    Kind::ALL
        .into_iter()
        .find(|k| k.types().iter().any(|t| t.name == root))
}

/// The type of an attribute value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ty {
    /// A string (quoted or heredoc).
    Str,
    /// An integer.
    Int,
    /// A bool.
    Bool,
    /// A list of strings.
    StrList,
    /// A map of strings.
    StrMap,
    /// A Go duration string, validated (must be > 0).
    Duration,
    /// A `host:port` string, validated.
    HostPort,
    /// A string in which `<<file:NAME>>` markers are inlined.
    FileStr,
    /// A string from a fixed set.
    OneOf(&'static [&'static str]),
    /// A reference to an item of a kind.
    Ref(Kind),
    /// A list of references.
    RefList(Kind),
    /// A nested block.
    Block(&'static [Field]),
    /// Anything: decoded by the item's own code.
    Raw,
}

/// One attribute or nested block of a schema.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    /// The attribute name.
    pub name: &'static str,
    /// Its type.
    pub ty: Ty,
    /// Whether it must be given.
    pub required: bool,
}

const fn f(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: false,
    }
}

const fn req(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: true,
    }
}

/// One type of a two-label kind.
#[derive(Debug)]
pub(crate) struct TypeDef {
    /// The type label.
    pub name: &'static str,
    /// Its own attributes (framework attributes come on top).
    pub fields: &'static [Field],
    /// The family (endpoints only).
    pub family: Option<Family>,
    /// Allowed disambiguators (credentials only).
    pub disambiguators: &'static [&'static str],
}

const fn ty(name: &'static str, fields: &'static [Field]) -> TypeDef {
    TypeDef {
        name,
        fields,
        family: None,
        disambiguators: &[],
    }
}

const fn ep(name: &'static str, family: Family, fields: &'static [Field]) -> TypeDef {
    TypeDef {
        name,
        fields,
        family: Some(family),
        disambiguators: &[],
    }
}

const fn cred(
    name: &'static str,
    fields: &'static [Field],
    disambiguators: &'static [&'static str],
) -> TypeDef {
    TypeDef {
        name,
        fields,
        family: None,
        disambiguators,
    }
}

/// `sslmode` values of a `postgres` endpoint.
pub(crate) const SSLMODES: &[&str] = &["disable", "prefer", "require", "verify-full"];
/// Tunnel `share` values.
pub(crate) const SHARES: &[&str] = &["singleton", "per_endpoint", "per_conn"];

const ENDPOINT_FRAMEWORK: &[Field] = &[
    f("tunnel", Ty::Ref(Kind::Tunnel)),
    f("description", Ty::Str),
    f("retention", Ty::Str),
];

const HTTPS_FIELDS: &[Field] = &[req("hosts", Ty::StrList), f("ca_cert", Ty::FileStr)];

/// Endpoint types.
pub(crate) const ENDPOINT_TYPES: &[TypeDef] = &[
    ep("https", Family::Http, HTTPS_FIELDS),
    ep("openai_codex_https", Family::Http, HTTPS_FIELDS),
    ep(
        "kubernetes",
        Family::K8s,
        &[
            f("hosts", Ty::StrList),
            f("server", Ty::Str),
            f("ca_cert", Ty::FileStr),
            f("cluster_name", Ty::Str),
            f("region", Ty::Str),
        ],
    ),
    ep(
        "postgres",
        Family::Sql,
        &[
            req("host", Ty::Str),
            f("sslmode", Ty::OneOf(SSLMODES)),
            f("listen", Ty::HostPort),
            f("agent_tls", Ty::Bool),
            f("ca_cert", Ty::FileStr),
        ],
    ),
    ep(
        "clickhouse_native",
        Family::Sql,
        &[
            req("hosts", Ty::StrList),
            f("port", Ty::Int),
            f("tls", Ty::Bool),
            f("accept_invalid_certificate", Ty::Bool),
            f("listen", Ty::HostPort),
        ],
    ),
    ep(
        "clickhouse_https",
        Family::Sql,
        &[req("hosts", Ty::StrList)],
    ),
    ep(
        "ssh",
        Family::Ssh,
        &[req("hosts", Ty::StrList), f("listen", Ty::HostPort)],
    ),
];

const CREDENTIAL_FRAMEWORK: &[Field] = &[
    f("endpoint", Ty::Ref(Kind::Endpoint)),
    f("endpoints", Ty::RefList(Kind::Endpoint)),
    f("placeholder", Ty::Str),
    f("description", Ty::Str),
];

const PH: &[&str] = &["placeholder"];

/// Credential types.
pub(crate) const CREDENTIAL_TYPES: &[TypeDef] = &[
    cred("anthropic_manual_key", &[], PH),
    cred("anthropic_oauth_subscription", &[], PH),
    cred("aws_credential", &[], &[]),
    cred("basic_auth", &[req("username", Ty::Str)], PH),
    cred("bearer_token", &[f("idempotency_key", Ty::Bool)], PH),
    cred(
        "clickhouse_credential",
        &[f("user", Ty::Str), f("database", Ty::Str)],
        &["database", "user"],
    ),
    cred("cookie_token", &[f("cookie_name", Ty::Str)], PH),
    cred("discord_bot_token", &[], PH),
    cred("gemini_api_key", &[], PH),
    cred("github_oauth", &[], PH),
    cred("google_gke_credential", &[], &[]),
    cred(
        "header_token",
        &[req("header", Ty::Str), f("prefix", Ty::Str)],
        PH,
    ),
    cred("mtls_credential", &[], &[]),
    cred("notion_mcp_oauth", &[], PH),
    cred("notion_oauth", &[], PH),
    cred("openai_codex_oauth", &[], PH),
    cred("passthrough", &[], &[]),
    cred(
        "postgres_credential",
        &[f("user", Ty::Str), f("database", Ty::Str)],
        &["user", "database"],
    ),
    cred("slack_tokens", &[], PH),
    cred("ssh_key", &[], &["user"]),
    cred("tailscale_auth", &[], &[]),
    cred("telegram_bot_token", &[], PH),
];

/// `async_grant { … }` of a human approver.
pub(crate) const ASYNC_GRANT_FIELDS: &[Field] = &[
    f("enabled", Ty::Bool),
    f("approved_retry_ttl", Ty::Str),
    f("fingerprint_body", Ty::Str),
    f("max_body_bytes", Ty::Int),
];

/// Approver types.
pub(crate) const APPROVER_TYPES: &[TypeDef] = &[
    ty(
        "human_approver",
        &[
            req("channel", Ty::Str),
            f("credential", Ty::Ref(Kind::Credential)),
            f("timeout", Ty::Int),
            f("require_approvers", Ty::Int),
            f("interactive", Ty::Bool),
            f("classifier", Ty::Ref(Kind::Approver)),
            f("message", Ty::Str),
            f("webhook_url", Ty::Str),
            f("sync_wait_timeout", Ty::Str),
            f("async_grant", Ty::Block(ASYNC_GRANT_FIELDS)),
        ],
    ),
    ty(
        "llm_approver",
        &[
            req("model", Ty::Str),
            req("credential", Ty::Ref(Kind::Credential)),
            f("policy", Ty::Str),
            f("base_url", Ty::Str),
            f("timeout", Ty::Int),
            f("ca_cert", Ty::FileStr),
        ],
    ),
];

const TUNNEL_FRAMEWORK: &[Field] = &[
    f("share", Ty::OneOf(SHARES)),
    f("keepalive", Ty::Str),
    f("via", Ty::Ref(Kind::Tunnel)),
    f("credential", Ty::Ref(Kind::Credential)),
];

/// Tunnel types.
pub(crate) const TUNNEL_TYPES: &[TypeDef] = &[
    ty(
        "local_command",
        &[
            req("command", Ty::StrList),
            req("listen", Ty::HostPort),
            f("ready_probe", Ty::OneOf(&["tcp", "none"])),
            f("ready_timeout", Ty::Duration),
            f("env", Ty::StrMap),
        ],
    ),
    ty(
        "ssh_port_forward",
        &[f("bastion", Ty::HostPort), req("user", Ty::Str)],
    ),
    ty(
        "kubernetes_port_forward",
        &[
            req("port", Ty::Int),
            f("pod", Ty::Str),
            f("service", Ty::Str),
            f("selector", Ty::StrMap),
            f("template", Ty::Str),
            f("context", Ty::Str),
            f("namespace", Ty::Str),
            f("cleanup", Ty::OneOf(&["delete", "keep"])),
            f("server", Ty::Str),
            f("ca_cert", Ty::FileStr),
            f("cluster_name", Ty::Str),
            f("region", Ty::Str),
        ],
    ),
    ty(
        "tailscale",
        &[
            f("authkey", Ty::Str),
            f("oauth_client_secret", Ty::Str),
            f("control_url", Ty::Str),
            f("hostname", Ty::Str),
            f("state_dir", Ty::Str),
            f("tags", Ty::StrList),
        ],
    ),
];

/// `rule "<name>" { … }`.
pub(crate) const RULE_FIELDS: &[Field] = &[
    f("endpoint", Ty::Ref(Kind::Endpoint)),
    f("endpoints", Ty::RefList(Kind::Endpoint)),
    f("priority", Ty::Int),
    f("disabled", Ty::Bool),
    f("condition", Ty::Str),
    f("credential", Ty::Ref(Kind::Credential)),
    f("verdict", Ty::Str),
    f("approve", Ty::RefList(Kind::Approver)),
    f("reason", Ty::Str),
];

/// `profile "<name>" { … }`.
pub(crate) const PROFILE_FIELDS: &[Field] = &[
    req("credentials", Ty::Raw),
    f("hitl_async_grants", Ty::Bool),
];

/// `gateway { limits { … } }`.
pub(crate) const LIMITS_FIELDS: &[Field] = &[f("body_buffer", Ty::Str), f("body_storage", Ty::Str)];

/// `gateway { wireguard { … } }`.
pub(crate) const WIREGUARD_FIELDS: &[Field] = &[
    f("subnet_cidr", Ty::Str),
    f("listen_port", Ty::Int),
    f("host_loopback_port", Ty::Int),
    f("endpoint", Ty::HostPort),
    f("interface", Ty::Str),
    f("server_pub", Ty::Str),
];

/// `gateway { tailscale { … } }`.
pub(crate) const TAILSCALE_FIELDS: &[Field] = &[
    f("authkey", Ty::Str),
    f("hostname", Ty::Str),
    f("control_url", Ty::Str),
    f("tags", Ty::StrList),
    f("operators", Ty::StrList),
    f("funnel", Ty::Bool),
    f("oauth_client_id", Ty::Str),
    f("oauth_client_secret", Ty::Str),
];

/// `gateway { … }`.
pub(crate) const GATEWAY_FIELDS: &[Field] = &[
    f("dashboard_listen", Ty::HostPort),
    f("public_url", Ty::Str),
    f("state_dir", Ty::Str),
    f("dashboard_session_ttl", Ty::Duration),
    f("dashboard_config_writes", Ty::Bool),
    f("resolver", Ty::HostPort),
    f("log_path", Ty::Str),
    f("telemetry", Ty::Bool),
    f("session_keep", Ty::Str),
    f("actions_keep", Ty::Str),
    f("limits", Ty::Block(LIMITS_FIELDS)),
    f(
        "genai_telemetry",
        Ty::Block(&[f("include_message_content", Ty::Bool)]),
    ),
    f("wireguard", Ty::Block(WIREGUARD_FIELDS)),
    f("tailscale", Ty::Block(TAILSCALE_FIELDS)),
    f("proxy_listen", Ty::HostPort),
    f("transparent_listen", Ty::HostPort),
    f("management_listen", Ty::HostPort),
];

/// `defaults { … }`.
pub(crate) const DEFAULTS_FIELDS: &[Field] = &[
    f("unknown_host", Ty::OneOf(&["passthrough", "deny"])),
    f("llm_fail_mode", Ty::OneOf(&["closed"])),
    f("llm_cache_ttl", Ty::Int),
    f("human_timeout", Ty::Int),
    f("human_on_timeout", Ty::OneOf(&["deny"])),
    f("profile", Ty::Ref(Kind::Profile)),
];

/// `plugin "<name>" { … }`.
pub(crate) const PLUGIN_FIELDS: &[Field] = &[
    req("source", Ty::Str),
    f("version", Ty::Str),
    f("provenance", Ty::OneOf(&["warn", "require", "off"])),
    f("network", Ty::OneOf(&["none", "outbound"])),
    f("sandbox", Ty::OneOf(&["enforce", "off"])),
    f("read_paths", Ty::StrList),
];
