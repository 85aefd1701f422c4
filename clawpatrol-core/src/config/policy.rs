//! The policy items: endpoints, credentials, approvers, tunnels, rules and profiles.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use hcl_edit::structure::Block;

use super::decode::{decode_body, want_str, Ctx, Fields};
use super::diag::Diagnostic;
use super::duration;
use super::host::HostPattern;
use super::model::{
    Approver, Condition, Credential, Endpoint, Outcome, Profile, ProfileEntry, Rule, SourceSpan,
    Tunnel,
};
use super::types::{Kind, TypeDef};
use super::value::{Val, ValKind};
use crate::facts::Family;

/// One top-level policy block after pass 1.
pub(crate) struct PolicyBlock<'b> {
    /// Its kind.
    pub kind: Kind,
    /// File index.
    pub file: usize,
    /// The block.
    pub block: &'b Block,
    /// The type (two-label kinds).
    pub ty: Option<&'static TypeDef>,
    /// The name label.
    pub name: String,
    /// The header span.
    pub header: Range<usize>,
    /// `endpoint "https" "x"`, …
    pub display: String,
}

impl PolicyBlock<'_> {
    fn span(&self) -> SourceSpan {
        let r = self.block_span();
        SourceSpan {
            file: self.file,
            start: r.start,
            end: r.end,
        }
    }

    fn block_span(&self) -> Range<usize> {
        use hcl_edit::Span;
        self.block.span().unwrap_or(self.header.clone())
    }

    fn decode(&self, ctx: &mut Ctx<'_>) -> (Fields, bool) {
        let fw = self.kind.framework();
        let own = self.ty.map(|t| t.fields).unwrap_or(&[]);
        decode_body(
            ctx,
            self.file,
            &self.block.body,
            self.header.clone(),
            &[fw, own],
            &self.display,
        )
    }

    fn err(&self, ctx: &mut Ctx<'_>, span: &Range<usize>, d: Diagnostic) {
        ctx.report(self.file, span, d.with_block(self.display.clone()));
    }
}

fn list_items<'v>(f: &'v Fields, name: &str) -> Vec<&'v Val> {
    match f.map.get(name).map(|g| &g.val.kind) {
        Some(ValKind::List(items)) => items.iter().collect(),
        _ => Vec::new(),
    }
}

/// Decodes an endpoint.
pub(crate) fn endpoint(ctx: &mut Ctx<'_>, pb: &PolicyBlock<'_>) -> Option<Endpoint> {
    let ty = pb.ty?;
    let (f, mut ok) = pb.decode(ctx);
    if !ok {
        return None;
    }
    let name = &pb.name;
    // (entry, span) pairs
    let mut entries: Vec<(String, Range<usize>)> = match ty.name {
        "postgres" => f
            .str("host")
            .map(|h| vec![(h.to_string(), f.span("host"))])
            .unwrap_or_default(),
        "kubernetes" if f.list("hosts").is_none_or(|l| l.is_empty()) => f
            .str("server")
            .map(|h| vec![(h.to_string(), f.span("server"))])
            .unwrap_or_default(),
        _ => list_items(&f, "hosts")
            .into_iter()
            .filter_map(|v| v.as_str().map(|s| (s.to_string(), v.span.clone())))
            .collect(),
    };
    if entries.is_empty() {
        let help = match ty.name {
            "kubernetes" => "set `hosts = [\"…\"]` or `server = \"host:port\"`",
            _ => "list at least one host: `hosts = [\"api.example.com\"]`",
        };
        pb.err(
            ctx,
            &f.span("hosts"),
            Diagnostic::error(format!("endpoint `{name}` has no hosts")).with_help(help),
        );
        return None;
    }
    if ty.name == "clickhouse_native" {
        let tls = f.bool("tls").unwrap_or(false);
        if f.bool("accept_invalid_certificate") == Some(true) && !tls {
            pb.err(
                ctx,
                &f.span("accept_invalid_certificate"),
                Diagnostic::error(format!(
                    "accept_invalid_certificate set without tls on clickhouse_native endpoint `{name}`"
                ))
                .with_help("set `tls = true` or drop `accept_invalid_certificate`"),
            );
            ok = false;
        }
        let port = f.int("port").unwrap_or(if tls { 9440 } else { 9000 });
        if !(1..=65535).contains(&port) {
            pb.err(
                ctx,
                &f.span("port"),
                Diagnostic::error(format!("invalid port `{port}` on endpoint `{name}`"))
                    .with_help("use a port from 1 to 65535"),
            );
            ok = false;
        }
        for (e, _) in &mut entries {
            if HostPattern::parse(e).is_ok_and(|h| h.port.is_none()) {
                *e = if e.matches(':').count() >= 2 {
                    format!("[{e}]:{port}")
                } else {
                    format!("{e}:{port}")
                };
            }
        }
    }
    let mut hosts: Vec<HostPattern> = Vec::new();
    let mut seen: BTreeMap<String, Range<usize>> = BTreeMap::new();
    for (e, span) in &entries {
        match HostPattern::parse(e) {
            Ok(h) => {
                let key = h.key().to_ascii_lowercase();
                if let Some(first) = seen.get(&key) {
                    let at = ctx.pos(pb.file, first);
                    pb.err(
                        ctx,
                        span,
                        Diagnostic::error(format!("duplicate host on endpoint `{name}`"))
                            .with_detail(format!("`{e}` is already listed at {at}"))
                            .with_help("host entries are compared case-insensitively; drop one"),
                    );
                    ok = false;
                } else {
                    seen.insert(key, span.clone());
                    hosts.push(h);
                }
            }
            Err(why) => {
                pb.err(
                    ctx,
                    span,
                    Diagnostic::error(format!("malformed host on endpoint `{name}`"))
                        .with_detail(why.to_string())
                        .with_help("use `name`, `name:port`, an IP, `[v6]:port` or `*.suffix`"),
                );
                ok = false;
            }
        }
    }
    let retention_secs = match f.str("retention") {
        None => None,
        Some("0" | "off" | "0s") => Some(None),
        Some(s) => {
            match duration::parse(s) {
                Ok(d) if d.is_zero() => Some(None),
                Ok(d) => Some(Some(d.as_secs())),
                Err(e) => {
                    pb.err(
                    ctx,
                    &f.span("retention"),
                    Diagnostic::error(format!("invalid retention on endpoint `{name}`"))
                        .with_detail(e.to_string())
                        .with_help("use a duration such as `720h`, or `\"0\"`/`\"off\"` to keep forever"),
                );
                    ok = false;
                    None
                }
            }
        }
    };
    let family = ty.family?;
    ok.then(|| Endpoint {
        kind: ty.name.to_string(),
        name: name.clone(),
        family,
        hosts,
        tunnel: f.str("tunnel").map(str::to_string),
        description: f.str("description").map(str::to_string),
        retention_secs,
        attrs: f.attrs(&["hosts", "tunnel", "description", "retention"]),
        span: pb.span(),
    })
}

fn allowed_list(ty: &TypeDef) -> String {
    if ty.disambiguators.is_empty() {
        "(none — this credential type cannot disambiguate when multiple bind the same endpoint)"
            .to_string()
    } else {
        let mut v: Vec<&str> = ty.disambiguators.to_vec();
        v.sort_unstable();
        format!(
            "allowed: {}",
            v.iter()
                .map(|d| format!("`{d}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// Decodes a credential.
pub(crate) fn credential(ctx: &mut Ctx<'_>, pb: &PolicyBlock<'_>) -> Option<Credential> {
    let ty = pb.ty?;
    let (f, mut ok) = pb.decode(ctx);
    if !ok {
        return None;
    }
    let name = &pb.name;
    if f.map.contains_key("endpoint") && f.map.contains_key("endpoints") {
        pb.err(
            ctx,
            &f.span("endpoints"),
            Diagnostic::error(format!(
                "both endpoint and endpoints set on credential `{name}`"
            ))
            .with_help("use `endpoints = [...]` alone"),
        );
        ok = false;
    }
    if f.map.contains_key("placeholder") && !ty.disambiguators.contains(&"placeholder") {
        pb.err(
            ctx,
            &f.span("placeholder"),
            Diagnostic::error(format!(
                "credential `{name}`: `placeholder` is not a disambiguator for type `{}`",
                ty.name
            ))
            .with_detail(allowed_list(ty)),
        );
        ok = false;
    }
    let endpoints: Vec<String> = ["endpoint", "endpoints"]
        .iter()
        .filter_map(|k| f.map.get(k))
        .flat_map(|g| g.refs.iter().map(|r| r.name.clone()))
        .collect();
    let mut disambiguators = BTreeMap::new();
    for d in ty.disambiguators {
        if let Some(v) = f.str(d).filter(|v| !v.is_empty()) {
            disambiguators.insert(d.to_string(), v.to_string());
        }
    }
    ok.then(|| Credential {
        kind: ty.name.to_string(),
        name: name.clone(),
        endpoints,
        disambiguators,
        description: f.str("description").map(str::to_string),
        attrs: f.attrs(&["endpoint", "endpoints", "placeholder", "description"]),
        span: pb.span(),
    })
}

/// Decodes an approver.
pub(crate) fn approver(ctx: &mut Ctx<'_>, pb: &PolicyBlock<'_>) -> Option<Approver> {
    let ty = pb.ty?;
    let (f, mut ok) = pb.decode(ctx);
    if !ok {
        return None;
    }
    let name = &pb.name;
    if let Some(c) = f.reference("classifier") {
        if c.root != "llm_approver" {
            pb.err(
                ctx,
                &f.span("classifier"),
                Diagnostic::error(format!(
                    "classifier of approver `{name}` must be an llm_approver, got `{}`",
                    c.typed()
                )),
            );
            ok = false;
        }
    }
    for n in ["timeout", "require_approvers"] {
        if let Some(v) = f.int(n).filter(|v| *v <= 0) {
            pb.err(
                ctx,
                &f.span(n),
                Diagnostic::error(format!("invalid {n} `{v}` on approver `{name}`"))
                    .with_help("use a positive number"),
            );
            ok = false;
        }
    }
    if let Some(url) = f.str("base_url") {
        if let Err(e) = crate::approval::BaseUrl::parse(url) {
            pb.err(
                ctx,
                &f.span("base_url"),
                Diagnostic::error(e.to_string()).with_help(
                    "use the API root of an OpenAI-compatible server, e.g. \
                     `https://llm.internal/v1` or `http://127.0.0.1:11434/v1`",
                ),
            );
            ok = false;
        }
    }
    let ag = f.map.get("async_grant").and_then(|g| g.sub.as_ref());
    if let Some(ag) = ag.filter(|a| a.bool("enabled") == Some(true)) {
        ok &= async_grant(ctx, pb, &f, ag);
    }
    ok.then(|| Approver {
        kind: ty.name.to_string(),
        name: name.clone(),
        attrs: f.attrs(&[]),
        span: pb.span(),
    })
}

fn async_grant(ctx: &mut Ctx<'_>, pb: &PolicyBlock<'_>, f: &Fields, ag: &Fields) -> bool {
    let mut ok = true;
    let mut bad = |ctx: &mut Ctx<'_>, span: Range<usize>, summary: String, detail: String| {
        pb.err(ctx, &span, Diagnostic::error(summary).with_detail(detail));
        ok = false;
    };
    if let Some(fp) = ag.str("fingerprint_body").filter(|v| *v != "raw") {
        bad(
            ctx,
            ag.span("fingerprint_body"),
            "invalid async_grant.fingerprint_body".into(),
            format!("`{fp}` is not supported; the only mode is `raw`"),
        );
    }
    if let Some(m) = ag.int("max_body_bytes") {
        if m < 1 {
            bad(
                ctx,
                ag.span("max_body_bytes"),
                "async_grant.max_body_bytes must be positive".into(),
                format!("got {m}"),
            );
        } else if m > 8_388_608 {
            bad(
                ctx,
                ag.span("max_body_bytes"),
                "async_grant.max_body_bytes exceeds hard maximum".into(),
                format!("{m} > 8388608"),
            );
        }
    }
    for (blk, n, label) in [
        (ag, "approved_retry_ttl", "async_grant.approved_retry_ttl"),
        (f, "sync_wait_timeout", "sync_wait_timeout"),
    ] {
        if let Some(s) = blk.str(n) {
            match duration::parse(s) {
                Ok(d) if !d.is_zero() => {}
                Ok(_) => bad(
                    ctx,
                    blk.span(n),
                    format!("invalid {label}"),
                    "must be greater than zero".into(),
                ),
                Err(e) => bad(ctx, blk.span(n), format!("invalid {label}"), e.to_string()),
            }
        }
    }
    ok
}

/// Decodes a tunnel; also returns the span of `via`.
pub(crate) fn tunnel(ctx: &mut Ctx<'_>, pb: &PolicyBlock<'_>) -> Option<(Tunnel, Range<usize>)> {
    let ty = pb.ty?;
    let (f, mut ok) = pb.decode(ctx);
    if !ok {
        return None;
    }
    let name = &pb.name;
    let share = f
        .str("share")
        .unwrap_or(if ty.name == "kubernetes_port_forward" {
            "per_endpoint"
        } else {
            "singleton"
        })
        .to_string();
    let keepalive_secs = match f.str("keepalive") {
        None | Some("") => Some(300),
        Some("always") => None,
        Some(s) => match duration::parse(s) {
            Ok(d) => Some(d.as_secs()),
            Err(e) => {
                pb.err(
                    ctx,
                    &f.span("keepalive"),
                    Diagnostic::error(format!("invalid keepalive on tunnel `{name}`"))
                        .with_detail(e.to_string())
                        .with_help("use `\"always\"`, `\"0\"` or a duration such as `10m`"),
                );
                ok = false;
                None
            }
        },
    };
    let mut missing = |ctx: &mut Ctx<'_>, what: &str, why: String| {
        pb.err(
            ctx,
            &f.header,
            Diagnostic::error(format!("missing required argument `{what}`")).with_detail(why),
        );
        ok = false;
    };
    match ty.name {
        "ssh_port_forward" => {
            if !f.map.contains_key("bastion") && !f.map.contains_key("via") {
                missing(ctx, "bastion", "an ssh_port_forward tunnel needs `bastion = \"host:port\"` unless it goes `via` another tunnel".into());
            }
            if !f.map.contains_key("credential") {
                missing(
                    ctx,
                    "credential",
                    "an ssh_port_forward tunnel authenticates with an `ssh_key` credential".into(),
                );
            }
        }
        "kubernetes_port_forward" => {
            let given: Vec<&str> = ["pod", "service", "selector", "template"]
                .into_iter()
                .filter(|k| f.map.contains_key(k))
                .collect();
            if given.len() != 1 {
                pb.err(
                    ctx,
                    &f.header,
                    Diagnostic::error(format!(
                        "tunnel `{name}` needs exactly one of pod, service, selector, template"
                    ))
                    .with_detail(if given.is_empty() {
                        "none is set".to_string()
                    } else {
                        format!("set: {}", given.join(", "))
                    }),
                );
                ok = false;
            }
            if let Some(p) = f.int("port").filter(|p| !(1..=65535).contains(p)) {
                pb.err(
                    ctx,
                    &f.span("port"),
                    Diagnostic::error(format!("invalid port `{p}` on tunnel `{name}`"))
                        .with_help("use a port from 1 to 65535"),
                );
                ok = false;
            }
        }
        "tailscale"
            if f.map.contains_key("oauth_client_secret")
                && f.list("tags").is_none_or(|t| t.is_empty()) =>
        {
            pb.err(
                ctx,
                &f.span("oauth_client_secret"),
                Diagnostic::error(format!(
                    "oauth_client_secret on tunnel `{name}` requires tags"
                ))
                .with_help("add `tags = [\"tag:…\"]`"),
            );
            ok = false;
        }
        _ => {}
    }
    let via_span = f.span("via");
    ok.then(|| {
        (
            Tunnel {
                kind: ty.name.to_string(),
                name: name.clone(),
                share,
                keepalive_secs,
                via: f.str("via").map(str::to_string),
                credential: f.str("credential").map(str::to_string),
                attrs: f.attrs(&["share", "keepalive", "via", "credential"]),
                span: pb.span(),
            },
            via_span,
        )
    })
}

/// Decodes a rule against the decoded endpoints.
pub(crate) fn rule(
    ctx: &mut Ctx<'_>,
    pb: &PolicyBlock<'_>,
    endpoints: &[Endpoint],
) -> Option<Rule> {
    let (f, mut ok) = pb.decode(ctx);
    let name = &pb.name;
    let has_one = f.map.contains_key("endpoint");
    let has_many = f.map.contains_key("endpoints");
    let refs: Vec<String> = ["endpoint", "endpoints"]
        .iter()
        .filter_map(|k| f.map.get(k))
        .flat_map(|g| g.refs.iter().map(|r| r.name.clone()))
        .collect();
    if has_one && has_many {
        pb.err(
            ctx,
            &f.span("endpoints"),
            Diagnostic::error(format!("both endpoint and endpoints set on rule `{name}`"))
                .with_help("use `endpoints = [...]` alone"),
        );
        ok = false;
    } else if ok && refs.is_empty() {
        pb.err(
            ctx,
            &f.header,
            Diagnostic::error(format!("rule `{name}` has no endpoints"))
                .with_help("add `endpoint = <type>.<name>`"),
        );
        ok = false;
    }
    // Family from the declared types (even of endpoints that failed to decode).
    let mut families: BTreeSet<Family> = BTreeSet::new();
    for r in &refs {
        if let Some(fam) = ctx
            .symbols
            .get(Kind::Endpoint, r)
            .and_then(|d| Kind::Endpoint.type_def(&d.type_label))
            .and_then(|t| t.family)
        {
            families.insert(fam);
        }
    }
    if families.len() > 1 {
        let names: Vec<&str> = families.iter().map(|f| f.as_str()).collect();
        pb.err(
            ctx,
            &f.span("endpoints"),
            Diagnostic::error(format!("rule `{name}` targets endpoints from mixed families"))
                .with_detail(format!(
                    "endpoints span families [{}]; a rule's condition is evaluated against one family's variables",
                    names.join(" ")
                ))
                .with_help("split into one rule per family"),
        );
        ok = false;
    }
    let verdict = f.str("verdict");
    let approve: Vec<String> = f
        .map
        .get("approve")
        .map(|g| g.refs.iter().map(|r| r.typed()).collect())
        .unwrap_or_default();
    let approve_set = f.map.contains_key("approve") && !approve.is_empty();
    let outcome = match (verdict, approve_set) {
        (Some(_), true) => {
            pb.err(
                ctx,
                &f.span("approve"),
                Diagnostic::error(format!("both verdict and approve set on rule `{name}`"))
                    .with_help("a rule either decides (`verdict`) or asks approvers (`approve`)"),
            );
            None
        }
        (Some("allow"), false) => Some(Outcome::Allow),
        (Some("deny"), false) => Some(Outcome::Deny),
        (Some(v), false) => {
            pb.err(
                ctx,
                &f.span("verdict"),
                Diagnostic::error(format!("invalid verdict `{v}` on rule `{name}`"))
                    .with_help("use `\"allow\"` or `\"deny\"`"),
            );
            None
        }
        (None, true) => Some(Outcome::Approve(approve)),
        (None, false) => {
            let approve_failed =
                pb.block.body.has_attribute("approve") && !f.map.contains_key("approve");
            if !approve_failed {
                pb.err(
                    ctx,
                    &f.header,
                    Diagnostic::error(format!("rule `{name}` has no outcome"))
                        .with_help("add `verdict = \"allow\"`/`\"deny\"` or `approve = [...]`"),
                );
            }
            None
        }
    };
    let condition = f.map.get("condition").and_then(|g| {
        let (text, content_start) = match &g.val.kind {
            ValKind::Str {
                text,
                content_start,
            } => (text.clone(), *content_start),
            ValKind::Heredoc(text) => (text.clone(), None),
            _ => return None,
        };
        (!text.trim().is_empty()).then_some(Condition {
            text,
            span: SourceSpan {
                file: pb.file,
                start: g.val.span.start,
                end: g.val.span.end,
            },
            content_start,
        })
    });
    let outcome = outcome?;
    if !ok {
        return None;
    }
    let idx: Vec<usize> = refs
        .iter()
        .filter_map(|r| endpoints.iter().position(|e| &e.name == r))
        .collect();
    let family = idx.first().map(|i| endpoints[*i].family)?;
    Some(Rule {
        name: name.clone(),
        endpoints: idx,
        family,
        priority: f.int("priority").unwrap_or(0),
        disabled: f.bool("disabled").unwrap_or(false),
        condition,
        credential: f.str("credential").map(str::to_string),
        outcome,
        reason: f.str("reason").map(str::to_string),
        span: pb.span(),
    })
}

/// Decodes a profile; also returns each entry's span.
pub(crate) fn profile(
    ctx: &mut Ctx<'_>,
    pb: &PolicyBlock<'_>,
) -> Option<(Profile, Vec<Range<usize>>)> {
    let (f, mut ok) = pb.decode(ctx);
    let name = &pb.name;
    let mut entries = Vec::new();
    let mut spans = Vec::new();
    if let Some(g) = f.map.get("credentials") {
        let items = match &g.val.kind {
            ValKind::List(items) => items.clone(),
            _ => {
                pb.err(
                    ctx,
                    &g.val.span,
                    Diagnostic::error(format!("invalid profile `{name}` credentials"))
                        .with_detail(format!("expected a list; got {}", g.val.describe()))
                        .with_help("write `credentials = [bearer_token.x, …]`"),
                );
                return None;
            }
        };
        for it in &items {
            match entry(ctx, pb, it) {
                Some(e) => {
                    entries.push(e);
                    spans.push(it.span.clone());
                }
                None => ok = false,
            }
        }
    }
    ok.then(|| {
        (
            Profile {
                name: name.clone(),
                credentials: entries,
                hitl_async_grants: f.bool("hitl_async_grants").unwrap_or(false),
                span: pb.span(),
            },
            spans,
        )
    })
}

fn entry(ctx: &mut Ctx<'_>, pb: &PolicyBlock<'_>, it: &Val) -> Option<ProfileEntry> {
    let name = &pb.name;
    let ValKind::Object(fields) = &it.kind else {
        return match ctx.symbols.resolve(Kind::Credential, it) {
            Ok(r) => Some(ProfileEntry {
                credential: r.name,
                disambiguators: BTreeMap::new(),
            }),
            Err(d) => {
                pb.err(ctx, &it.span, *d);
                None
            }
        };
    };
    let Some((_, _, cv)) = fields.iter().find(|(k, _, _)| k == "credential") else {
        pb.err(
            ctx,
            &it.span,
            Diagnostic::error(format!(
                "invalid profile `{name}` credentials entry: missing `credential`"
            ))
            .with_help("write `{ credential = <type>.<name>, <disambiguator> = \"value\" }`"),
        );
        return None;
    };
    let r = match ctx.symbols.resolve(Kind::Credential, cv) {
        Ok(r) => r,
        Err(d) => {
            pb.err(ctx, &cv.span, *d);
            return None;
        }
    };
    let ty = Kind::Credential.type_def(&r.root);
    let mut ok = true;
    let mut dis = BTreeMap::new();
    for (k, ks, v) in fields.iter().filter(|(k, _, _)| k != "credential") {
        if let Some(ty) = ty {
            if !ty.disambiguators.contains(&k.as_str()) {
                pb.err(
                    ctx,
                    ks,
                    Diagnostic::error(format!(
                        "profile `{name}`: `{k}` is not a disambiguator for credential `{}` (type `{}`)",
                        r.name, ty.name
                    ))
                    .with_detail(allowed_list(ty)),
                );
                ok = false;
                continue;
            }
        }
        let Some(s) = want_str(ctx, pb.file, k, v, &pb.display) else {
            ok = false;
            continue;
        };
        if s.is_empty() {
            pb.err(
                ctx,
                &v.span,
                Diagnostic::error(format!(
                    "profile `{name}`: disambiguator `{k}` must be a non-empty string"
                ))
                .with_help("drop the field when no value applies"),
            );
            ok = false;
            continue;
        }
        dis.insert(k.clone(), s);
    }
    ok.then_some(ProfileEntry {
        credential: r.name,
        disambiguators: dis,
    })
}
