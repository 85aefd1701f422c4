//! The operational items: `gateway`, `defaults` and `plugin` (reference §1.4-§1.6).

use std::net::IpAddr;

use hcl_edit::structure::Block;

use super::decode::{decode_body, header_span, Ctx, Fields};
use super::diag::Diagnostic;
use super::duration;
use super::host::split_host_port;
use super::model::{Defaults, Gateway, Plugin, SourceSpan, Tailscale, UnknownHost, Wireguard};
use super::size;
use super::types::{DEFAULTS_FIELDS, GATEWAY_FIELDS, PLUGIN_FIELDS};

const BLOCK: &str = "gateway";

/// Decodes and validates `gateway { … }`.
pub(crate) fn gateway(ctx: &mut Ctx<'_>, file: usize, b: &Block) -> Option<Gateway> {
    let (f, mut ok) = decode_body(ctx, file, &b.body, header_span(b), &[GATEWAY_FIELDS], BLOCK);
    let mut g = Gateway {
        dashboard_listen: f.str("dashboard_listen").map(str::to_string),
        public_url: f
            .str("public_url")
            .map(|u| u.trim().trim_end_matches('/').to_string()),
        state_dir: f.str("state_dir").map(str::to_string),
        dashboard_session_ttl_secs: 24 * 3600,
        dashboard_config_writes: f.bool("dashboard_config_writes").unwrap_or(false),
        resolver: f.str("resolver").map(str::to_string),
        log_path: f.str("log_path").map(str::to_string),
        telemetry: f.bool("telemetry"),
        session_keep_secs: Some(600),
        actions_keep_secs: Some(720 * 3600),
        body_buffer: 1 << 20,
        body_storage: 4096,
        genai_telemetry: None,
        wireguard: None,
        tailscale: None,
        proxy_listen: f.str("proxy_listen").map(str::to_string),
        transparent_listen: f.str("transparent_listen").map(str::to_string),
        management_listen: f.str("management_listen").map(str::to_string),
    };
    if let Some(s) = f.str("dashboard_session_ttl") {
        g.dashboard_session_ttl_secs = duration::parse(s).map(|d| d.as_secs()).unwrap_or(0);
    }
    for (name, slot) in [
        ("session_keep", &mut g.session_keep_secs),
        ("actions_keep", &mut g.actions_keep_secs),
    ] {
        if let Some(s) = f.str(name) {
            match keep(s) {
                Ok(v) => *slot = v,
                Err(why) => {
                    ctx.report(
                        file,
                        &f.span(name),
                        Diagnostic::error(format!("invalid {name}"))
                            .with_block(BLOCK)
                            .with_detail(why)
                            .with_help("use a duration such as `720h`, or `\"0\"`/`\"off\"`"),
                    );
                    ok = false;
                }
            }
        }
    }
    if let Some(limits) = f.map.get("limits").and_then(|g| g.sub.as_ref()) {
        for (name, slot) in [
            ("body_buffer", &mut g.body_buffer),
            ("body_storage", &mut g.body_storage),
        ] {
            if let Some(s) = limits.str(name) {
                match size::parse(s) {
                    Ok(v) => *slot = v,
                    Err(e) => {
                        ctx.report(
                            file,
                            &limits.span(name),
                            Diagnostic::error(format!("invalid limits.{name}"))
                                .with_block(BLOCK)
                                .with_detail(e.to_string()),
                        );
                        ok = false;
                    }
                }
            }
        }
        if g.body_buffer < g.body_storage {
            ctx.report(
                file,
                &limits.header,
                Diagnostic::warning("limits.body_buffer is smaller than limits.body_storage")
                    .with_block(BLOCK)
                    .with_detail(format!(
                        "body_buffer = {} bytes, body_storage = {} bytes; stored samples cannot exceed the buffer",
                        g.body_buffer, g.body_storage
                    )),
            );
        }
    }
    if let Some(gt) = f.map.get("genai_telemetry").and_then(|g| g.sub.as_ref()) {
        g.genai_telemetry = Some(gt.bool("include_message_content").unwrap_or(false));
    }
    if let Some(wg) = f.map.get("wireguard").and_then(|g| g.sub.as_ref()) {
        ok &= wireguard(ctx, file, wg, &mut g);
    }
    if let Some(ts) = f.map.get("tailscale").and_then(|g| g.sub.as_ref()) {
        ok &= tailscale(ctx, file, ts, &mut g);
    }
    ok.then_some(g)
}

fn keep(s: &str) -> Result<Option<u64>, String> {
    if s == "0" || s == "off" {
        return Ok(None);
    }
    duration::parse(s)
        .map(|d| Some(d.as_secs()))
        .map_err(|e| e.to_string())
}

fn port(ctx: &mut Ctx<'_>, file: usize, f: &Fields, name: &str, default: u16) -> Option<u16> {
    match f.int(name) {
        None => Some(default),
        Some(p) => match u16::try_from(p) {
            Ok(p) if p > 0 => Some(p),
            _ => {
                ctx.report(
                    file,
                    &f.span(name),
                    Diagnostic::error(format!("invalid wireguard.{name} `{p}`"))
                        .with_block(BLOCK)
                        .with_help("use a port from 1 to 65535"),
                );
                None
            }
        },
    }
}

fn wireguard(ctx: &mut Ctx<'_>, file: usize, f: &Fields, g: &mut Gateway) -> bool {
    let mut ok = true;
    let subnet = f.str("subnet_cidr").unwrap_or("").to_string();
    if subnet.is_empty() {
        ctx.report(
            file,
            &f.header,
            Diagnostic::error("missing wireguard.subnet_cidr")
                .with_block(BLOCK)
                .with_help("add e.g. `subnet_cidr = \"10.55.0.0/24\"`"),
        );
        ok = false;
    } else if !valid_cidr(&subnet) {
        ctx.report(
            file,
            &f.span("subnet_cidr"),
            Diagnostic::error(format!("invalid wireguard.subnet_cidr `{subnet}`"))
                .with_block(BLOCK)
                .with_help("use CIDR notation, e.g. `10.55.0.0/24`"),
        );
        ok = false;
    }
    let listen_port = port(ctx, file, f, "listen_port", 51820);
    let loopback = port(ctx, file, f, "host_loopback_port", 8443);
    let endpoint = f.str("endpoint").map(str::to_string);
    let dial_ok = g.public_url.as_deref().is_some_and(|u| !u.is_empty())
        || endpoint.as_deref().is_some_and(|e| {
            let host = split_host_port(e).map(|(h, _)| h).unwrap_or("");
            !(host.is_empty() || host == "0.0.0.0" || host == "::")
        });
    if !dial_ok {
        ctx.report(
            file,
            &f.header,
            Diagnostic::error("WireGuard client dial target not configured")
                .with_block(BLOCK)
                .with_detail("clients need a host to dial: neither `public_url` nor a non-wildcard `wireguard.endpoint` is set")
                .with_help("set `public_url`, or `endpoint = \"HOST:PORT\"` in the wireguard block"),
        );
        ok = false;
    }
    let (Some(listen_port), Some(host_loopback_port)) = (listen_port, loopback) else {
        return false;
    };
    g.wireguard = Some(Wireguard {
        subnet_cidr: subnet,
        listen_port,
        host_loopback_port,
        endpoint,
        interface: f.str("interface").map(str::to_string),
        server_pub: f.str("server_pub").map(str::to_string),
    });
    ok
}

fn valid_cidr(s: &str) -> bool {
    let Some((addr, bits)) = s.split_once('/') else {
        return false;
    };
    let Ok(ip) = addr.parse::<IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    bits.parse::<u8>().is_ok_and(|b| b <= max)
}

fn operator_problem(op: &str) -> Option<&'static str> {
    let Some((user, domain)) = op.split_once('@') else {
        return Some("missing `@`");
    };
    if user.is_empty() {
        return Some("empty user part");
    }
    if user.contains('*') && user != "*" {
        return Some("`*` must be the whole user part");
    }
    if domain.is_empty() || domain.contains('@') || domain.contains('*') {
        return Some("invalid domain part");
    }
    None
}

fn tailscale(ctx: &mut Ctx<'_>, file: usize, f: &Fields, g: &mut Gateway) -> bool {
    let mut ok = true;
    let operators = f.list("operators").unwrap_or_default().to_vec();
    for (i, op) in operators.iter().enumerate() {
        if let Some(why) = operator_problem(op) {
            ctx.report(
                file,
                &f.span("operators"),
                Diagnostic::error("invalid operators entry")
                    .with_block(BLOCK)
                    .with_detail(format!("operators[{i}] = `{op}`: {why}"))
                    .with_help("use `user@domain` or `*@domain`"),
            );
            ok = false;
        }
    }
    g.tailscale = Some(Tailscale {
        authkey: f.str("authkey").map(str::to_string),
        hostname: f
            .str("hostname")
            .unwrap_or("clawpatrol-gateway")
            .to_string(),
        control_url: f.str("control_url").map(str::to_string),
        tags: f.list("tags").unwrap_or_default().to_vec(),
        operators,
        funnel: f.bool("funnel").unwrap_or(false),
        oauth_client_id: f.str("oauth_client_id").map(str::to_string),
        oauth_client_secret: f.str("oauth_client_secret").map(str::to_string),
    });
    ok
}

/// Decodes `defaults { … }`.
pub(crate) fn defaults(ctx: &mut Ctx<'_>, file: usize, b: &Block) -> Option<Defaults> {
    let (f, ok) = decode_body(
        ctx,
        file,
        &b.body,
        header_span(b),
        &[DEFAULTS_FIELDS],
        "defaults",
    );
    let d0 = Defaults::default();
    let mut secs = |name: &str, default: u64| match f.int(name) {
        None => Some(default),
        Some(v) => match u64::try_from(v) {
            Ok(v) => Some(v),
            Err(_) => {
                ctx.report(
                    file,
                    &f.span(name),
                    Diagnostic::error(format!("invalid {name} `{v}`"))
                        .with_block("defaults")
                        .with_help("give a number of seconds, zero or more"),
                );
                None
            }
        },
    };
    let llm_cache_ttl_secs = secs("llm_cache_ttl", d0.llm_cache_ttl_secs);
    let human_timeout_secs = secs("human_timeout", d0.human_timeout_secs);
    let d = Defaults {
        unknown_host: match f.str("unknown_host") {
            Some("deny") => UnknownHost::Deny,
            _ => UnknownHost::Passthrough,
        },
        llm_fail_mode: f.str("llm_fail_mode").unwrap_or("closed").to_string(),
        llm_cache_ttl_secs: llm_cache_ttl_secs?,
        human_timeout_secs: human_timeout_secs?,
        human_on_timeout: f.str("human_on_timeout").unwrap_or("deny").to_string(),
        profile: f.str("profile").map(str::to_string),
    };
    ok.then_some(d)
}

/// Decodes `plugin "<name>" { … }`.
pub(crate) fn plugin(
    ctx: &mut Ctx<'_>,
    file: usize,
    b: &Block,
    name: &str,
    span: SourceSpan,
) -> Option<Plugin> {
    let block = format!("plugin \"{name}\"");
    let (f, mut ok) = decode_body(ctx, file, &b.body, header_span(b), &[PLUGIN_FIELDS], &block);
    let source = f.str("source").unwrap_or("").to_string();
    let github = source.starts_with("github.com/");
    if f.str("version").is_some() && !github {
        ctx.report(
            file,
            &f.span("version"),
            Diagnostic::error(format!("`version` set on non-GitHub plugin `{name}`"))
                .with_block(&block)
                .with_detail(
                    "version constraints apply to `github.com/<owner>/<repo>` sources only",
                ),
        );
        ok = false;
    }
    let read_paths = f.list("read_paths").unwrap_or_default().to_vec();
    for p in &read_paths {
        if !(p.starts_with('/') || p.starts_with("~/")) {
            ctx.report(
                file,
                &f.span("read_paths"),
                Diagnostic::error(format!("invalid read_paths entry `{p}`"))
                    .with_block(&block)
                    .with_help("use an absolute path or one starting with `~/`"),
            );
            ok = false;
        }
    }
    ok.then(|| Plugin {
        name: name.to_string(),
        source,
        version: f.str("version").map(str::to_string),
        provenance: f.str("provenance").unwrap_or("warn").to_string(),
        network: f.str("network").map(str::to_string),
        sandbox: f.str("sandbox").unwrap_or("enforce").to_string(),
        read_paths,
        span,
    })
}
