//! Cross-item checks: profile dispatch uniqueness, tunnel `via` cycles, async-HITL public_url.

use std::collections::BTreeMap;
use std::ops::Range;

use super::decode::Ctx;
use super::diag::Diagnostic;
use super::model::Config;

type Dis = BTreeMap<String, String>;

/// Per-(profile, endpoint) dispatch uniqueness (reference §1.13).
pub(crate) fn profiles(
    ctx: &mut Ctx<'_>,
    cfg: &Config,
    entry_spans: &[(usize, Vec<Range<usize>>)],
) {
    for (p, (file, spans)) in cfg.profiles.iter().zip(entry_spans) {
        let block = format!("profile \"{}\"", p.name);
        // endpoint -> [(entry index, effective disambiguators)]
        let mut by_ep: BTreeMap<&str, Vec<(usize, Dis)>> = BTreeMap::new();
        for (i, e) in p.credentials.iter().enumerate() {
            let Some(c) = cfg.credentials.iter().find(|c| c.name == e.credential) else {
                continue;
            };
            let mut eff = c.disambiguators.clone();
            eff.extend(e.disambiguators.clone());
            for ep in &c.endpoints {
                by_ep.entry(ep).or_default().push((i, eff.clone()));
            }
        }
        for (ep, list) in &by_ep {
            let mut catchall: Option<usize> = None;
            let mut seen: BTreeMap<&BTreeMap<String, String>, usize> = BTreeMap::new();
            for (i, eff) in list {
                let span = spans.get(*i).cloned().unwrap_or(p.span.start..p.span.end);
                if eff.is_empty() {
                    if catchall.is_some() {
                        ctx.report(
                            *file,
                            &span,
                            Diagnostic::error(format!(
                                "profile `{}`: multiple no-constraint credentials bind endpoint `{ep}`",
                                p.name
                            ))
                            .with_block(block.clone())
                            .with_detail("at most one fallback (catchall) credential per (profile, endpoint)")
                            .with_help("give one of them a disambiguator such as `placeholder`"),
                        );
                    }
                    catchall.get_or_insert(*i);
                } else if seen.contains_key(eff) {
                    let shown: Vec<String> =
                        eff.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
                    ctx.report(
                        *file,
                        &span,
                        Diagnostic::error(format!(
                            "profile `{}`: duplicate dispatch constraint <{}> on endpoint `{ep}`",
                            p.name,
                            shown.join(", ")
                        ))
                        .with_block(block.clone()),
                    );
                } else {
                    seen.insert(eff, *i);
                }
            }
        }
        for (i, e) in p.credentials.iter().enumerate() {
            if e.disambiguators.is_empty() {
                continue;
            }
            let Some(c) = cfg.credentials.iter().find(|c| c.name == e.credential) else {
                continue;
            };
            let unique = !c.endpoints.is_empty()
                && c.endpoints
                    .iter()
                    .all(|ep| by_ep.get(ep.as_str()).is_none_or(|l| l.len() <= 1));
            if unique {
                let span = spans.get(i).cloned().unwrap_or(p.span.start..p.span.end);
                ctx.report(
                    *file,
                    &span,
                    Diagnostic::error(format!(
                        "profile `{}`: profile-side disambiguator set on credential `{}` with unique endpoint binding",
                        p.name, e.credential
                    ))
                    .with_block(block.clone())
                    .with_detail("no other credential of this profile binds the same endpoint, so the disambiguator never matters")
                    .with_help(format!("write the plain reference to `{}`", e.credential)),
                );
            }
        }
    }
}

/// `via` chains must not loop; reported once per cycle, on its first-declared tunnel.
pub(crate) fn tunnel_cycles(ctx: &mut Ctx<'_>, cfg: &Config, via_spans: &[Range<usize>]) {
    let index: BTreeMap<&str, usize> = cfg
        .tunnels
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
    let mut reported = vec![false; cfg.tunnels.len()];
    for (start, t) in cfg.tunnels.iter().enumerate() {
        let mut path = vec![start];
        let mut cur = start;
        while let Some(next) = cfg.tunnels[cur].via.as_deref().and_then(|v| index.get(v)) {
            if let Some(pos) = path.iter().position(|p| p == next) {
                let cycle = &path[pos..];
                let first = cycle.iter().copied().min().unwrap_or(start);
                if first == start && !reported[start] {
                    reported[start] = true;
                    let names: Vec<String> = cycle
                        .iter()
                        .chain(std::iter::once(next))
                        .map(|i| format!("`{}`", cfg.tunnels[*i].name))
                        .collect();
                    let span = via_spans
                        .get(start)
                        .cloned()
                        .unwrap_or(t.span.start..t.span.end);
                    ctx.report(
                        t.span.file,
                        &span,
                        Diagnostic::error(format!(
                            "tunnel `{}`: via chain forms a cycle (visits `{}` twice)",
                            t.name, cfg.tunnels[*next].name
                        ))
                        .with_block(format!("tunnel \"{}\" \"{}\"", t.kind, t.name))
                        .with_detail(format!("chain: {}", names.join(" -> "))),
                    );
                }
                break;
            }
            path.push(*next);
            cur = *next;
        }
    }
}

/// Async HITL needs an absolute `public_url` when any profile and approver opt in.
pub(crate) fn async_hitl(ctx: &mut Ctx<'_>, cfg: &Config) {
    let profile_on = cfg.profiles.iter().any(|p| p.hitl_async_grants);
    let approver = cfg.approvers.iter().find(|a| {
        matches!(a.attrs.get("async_grant"), Some(super::model::AttrValue::Block(b))
            if b.get("enabled") == Some(&super::model::AttrValue::Bool(true)))
    });
    let (true, Some(a)) = (profile_on, approver) else {
        return;
    };
    let url = cfg.gateway.as_ref().and_then(|g| g.public_url.as_deref());
    let problem = match url {
        None | Some("") => Some("async HITL public_url not configured"),
        Some(u) => {
            let rest = u
                .strip_prefix("https://")
                .or_else(|| u.strip_prefix("http://"));
            match rest {
                Some(r) if !r.is_empty() && !r.starts_with('/') && !u.contains(['?', '#']) => None,
                _ => Some("invalid async HITL public_url"),
            }
        }
    };
    if let Some(p) = problem {
        ctx.report(
            a.span.file,
            &(a.span.start..a.span.start + 8),
            Diagnostic::error(p)
                .with_block(format!("approver \"{}\" \"{}\"", a.kind, a.name))
                .with_detail("async retry grants send status URLs built from `gateway.public_url`")
                .with_help(
                    "set `public_url = \"https://gateway.example.com\"` in the gateway block",
                ),
        );
    }
}
