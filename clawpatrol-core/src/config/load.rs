//! The load pipeline (reference §1.16): parse, schema_version, symbols, decode, cross-check.

use std::ops::Range;
use std::path::Path;

use hcl_edit::structure::{Block, Body, Structure};
use hcl_edit::Span;

use super::decode::{header_span, Ctx};
use super::diag::{ConfigError, Diagnostic};
use super::files::read_path;
use super::gateway;
use super::model::{Config, SourceSpan};
use super::policy::{self, PolicyBlock};
use super::refs::{Decl, Symbols};
use super::source::SourceFile;
use super::types::Kind;
use super::validate;
use super::value::{from_expr, ValKind};

/// The oldest `schema_version` understood.
pub const MIN_SCHEMA_VERSION: i64 = 0;
/// The newest `schema_version` understood.
pub const MAX_SCHEMA_VERSION: i64 = 1;

/// A decoded config and every diagnostic of the load, in source order.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The decoded config (blocks that failed to decode are left out).
    pub config: Config,
    /// Errors and warnings, in source order.
    pub diagnostics: Vec<Diagnostic>,
}

/// Loads a config file, or a directory of `*.hcl` files merged in name order.
pub fn load_path(path: &Path) -> Result<Loaded, ConfigError> {
    let cf = read_path(path)?;
    load_files(cf.files, &cf.dir)
}

/// Loads one in-memory file; `<<file:>>` paths are relative to the working directory.
pub fn load_source(name: &str, text: &str) -> Result<Loaded, ConfigError> {
    load_files(vec![SourceFile::new(name, text)], Path::new("."))
}

fn fatal(d: Diagnostic) -> ConfigError {
    ConfigError {
        diagnostics: vec![d],
    }
}

fn load_files(files: Vec<SourceFile>, dir: &Path) -> Result<Loaded, ConfigError> {
    let mut bodies = Vec::with_capacity(files.len());
    let mut syntax = Vec::new();
    for f in &files {
        match hcl_edit::parser::parse_body(f.text()) {
            Ok(b) => bodies.push(b),
            Err(e) => {
                let off = line_col_offset(f.text(), e.location().line(), e.location().column());
                syntax.push(
                    Diagnostic::error("syntax error")
                        .with_detail(e.message().to_string())
                        .at(Some(f.location(off, off + 1))),
                );
            }
        }
    }
    if !syntax.is_empty() {
        return Err(ConfigError {
            diagnostics: syntax,
        });
    }
    let schema_version = schema_version(&files, &bodies)?;
    let mut ctx = Ctx {
        files: &files,
        dir,
        symbols: Symbols::default(),
        diags: Vec::new(),
    };
    let mut cfg = Config {
        schema_version,
        ..Config::default()
    };
    let (ops, blocks) = walk(&mut ctx, &bodies);
    // Operational items, after pass 1 so `defaults.profile` resolves.
    for (file, b) in ops {
        match b.ident.as_str() {
            "gateway" => cfg.gateway = gateway::gateway(&mut ctx, file, b),
            "defaults" => {
                if let Some(d) = gateway::defaults(&mut ctx, file, b) {
                    cfg.defaults = d;
                }
            }
            _ => {
                let name = b.labels.first().map(|l| l.as_str()).unwrap_or("");
                let r = b.span().unwrap_or(0..0);
                let span = SourceSpan {
                    file,
                    start: r.start,
                    end: r.end,
                };
                if let Some(p) = gateway::plugin(&mut ctx, file, b, name, span) {
                    cfg.plugins.push(p);
                }
            }
        }
    }
    let mut entry_spans = Vec::new();
    let mut via_spans = Vec::new();
    for pb in blocks.iter() {
        match pb.kind {
            Kind::Endpoint => cfg.endpoints.extend(policy::endpoint(&mut ctx, pb)),
            Kind::Credential => cfg.credentials.extend(policy::credential(&mut ctx, pb)),
            Kind::Approver => cfg.approvers.extend(policy::approver(&mut ctx, pb)),
            Kind::Tunnel => {
                if let Some((t, via)) = policy::tunnel(&mut ctx, pb) {
                    cfg.tunnels.push(t);
                    via_spans.push(via);
                }
            }
            Kind::Profile => {
                if let Some((p, spans)) = policy::profile(&mut ctx, pb) {
                    cfg.profiles.push(p);
                    entry_spans.push((pb.file, spans));
                }
            }
            Kind::Rule => {}
        }
    }
    for pb in blocks.iter().filter(|b| b.kind == Kind::Rule) {
        cfg.rules.extend(policy::rule(&mut ctx, pb, &cfg.endpoints));
    }
    validate::profiles(&mut ctx, &cfg, &entry_spans);
    validate::tunnel_cycles(&mut ctx, &cfg, &via_spans);
    validate::async_hitl(&mut ctx, &cfg);
    let mut diags = std::mem::take(&mut ctx.diags);
    diags.sort_by_key(|(k, _)| *k);
    drop(ctx);
    cfg.sources = files;
    Ok(Loaded {
        config: cfg,
        diagnostics: diags.into_iter().map(|(_, d)| d).collect(),
    })
}

fn line_col_offset(text: &str, line: usize, col: usize) -> usize {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let line_text = text[start.min(text.len())..].lines().next().unwrap_or("");
    start
        + line_text
            .char_indices()
            .nth(col.saturating_sub(1))
            .map(|(i, _)| i)
            .unwrap_or(line_text.len())
}

/// The lenient pre-pass: the first `schema_version`, checked against the window.
fn schema_version(files: &[SourceFile], bodies: &[Body]) -> Result<Option<i64>, ConfigError> {
    for (f, body) in files.iter().zip(bodies) {
        for a in body.attributes() {
            if a.key.as_str() != "schema_version" {
                continue;
            }
            let v = from_expr(&a.value, f.text());
            let loc = Some(f.location(v.span.start, v.span.end));
            let n = match v.kind {
                ValKind::Int(n) => n,
                _ => {
                    return Err(fatal(
                        Diagnostic::error("invalid schema_version")
                            .with_detail(format!("expected an integer, got {}", v.describe()))
                            .with_help(format!("write `schema_version = {MAX_SCHEMA_VERSION}`"))
                            .at(loc),
                    ))
                }
            };
            if n > MAX_SCHEMA_VERSION {
                return Err(fatal(
                    Diagnostic::error("config schema_version too new")
                        .with_detail(format!("schema_version = {n}, but this clawpatrol understands up to {MAX_SCHEMA_VERSION}"))
                        .with_help("upgrade clawpatrol to load this config")
                        .at(loc),
                ));
            }
            if n < MIN_SCHEMA_VERSION {
                return Err(fatal(
                    Diagnostic::error("config schema_version too old")
                        .with_detail(format!("schema_version = {n}, but this clawpatrol understands {MIN_SCHEMA_VERSION} and later"))
                        .at(loc),
                ));
            }
            return Ok(Some(n));
        }
    }
    Ok(None)
}

const TOP_BLOCKS: &str =
    "`approver`, `credential`, `defaults`, `endpoint`, `gateway`, `plugin`, `profile`, `rule`, `tunnel`";

/// Pass 1: top-level structure, label counts, types, and the symbol table.
fn walk<'b>(
    ctx: &mut Ctx<'_>,
    bodies: &'b [Body],
) -> (Vec<(usize, &'b Block)>, Vec<PolicyBlock<'b>>) {
    let mut ops = Vec::new();
    let mut blocks = Vec::new();
    let mut singletons: Vec<(&str, usize, Range<usize>)> = Vec::new();
    let mut schema_seen: Option<(usize, Range<usize>)> = None;
    for (file, body) in bodies.iter().enumerate() {
        for st in body.iter() {
            let b = match st {
                Structure::Attribute(a) => {
                    let key = a.key.span().unwrap_or(0..0);
                    let name = a.key.as_str();
                    if name == "schema_version" {
                        if let Some((f0, s0)) = &schema_seen {
                            let at = ctx.pos(*f0, s0);
                            ctx.report(
                                file,
                                &key,
                                Diagnostic::error("duplicate schema_version")
                                    .with_detail(format!("already set at {at}")),
                            );
                        } else {
                            schema_seen = Some((file, key));
                        }
                    } else {
                        ctx.report(
                            file,
                            &key,
                            Diagnostic::error(format!("unsupported argument `{name}`"))
                                .with_detail("the only top-level argument is `schema_version`"),
                        );
                    }
                    continue;
                }
                Structure::Block(b) => b,
            };
            let kw = b.ident.as_str();
            let hs = header_span(b);
            match kw {
                "gateway" | "defaults" | "plugin" => {
                    let want = usize::from(kw == "plugin");
                    if !label_count(ctx, file, b, kw, want, &hs) {
                        continue;
                    }
                    if kw != "plugin" {
                        if let Some((_, f0, s0)) = singletons.iter().find(|(k, _, _)| *k == kw) {
                            let at = ctx.pos(*f0, s0);
                            ctx.report(
                                file,
                                &hs,
                                Diagnostic::error(format!("duplicate {kw} block"))
                                    .with_detail(format!("the first {kw} block is at {at}"))
                                    .with_help(format!("merge the two `{kw}` blocks into one")),
                            );
                            continue;
                        }
                        singletons.push((kw, file, hs.clone()));
                    }
                    ops.push((file, b));
                }
                _ => match Kind::from_keyword(kw) {
                    Some(kind) => {
                        if let Some(pb) = declare(ctx, file, b, kind, hs) {
                            blocks.push(pb);
                        }
                    }
                    None => ctx.report(
                        file,
                        &hs,
                        Diagnostic::error(format!("unsupported block type `{kw}`"))
                            .with_detail(format!("blocks of type `{kw}` are not expected here"))
                            .with_help(format!("top-level blocks: {TOP_BLOCKS}")),
                    ),
                },
            }
        }
    }
    (ops, blocks)
}

fn label_count(
    ctx: &mut Ctx<'_>,
    file: usize,
    b: &Block,
    kw: &str,
    want: usize,
    hs: &Range<usize>,
) -> bool {
    if b.labels.len() == want {
        return true;
    }
    let what = match want {
        0 => "no labels".to_string(),
        1 => "1 label (the name)".to_string(),
        _ => format!("{want} labels (type and name)"),
    };
    ctx.report(
        file,
        hs,
        Diagnostic::error(format!("wrong label count for {kw} block"))
            .with_detail(format!("{kw} blocks take {what}; got {}", b.labels.len())),
    );
    false
}

fn declare<'b>(
    ctx: &mut Ctx<'_>,
    file: usize,
    b: &'b Block,
    kind: Kind,
    hs: Range<usize>,
) -> Option<PolicyBlock<'b>> {
    let kw = kind.as_str();
    let want = if kind.typed() { 2 } else { 1 };
    if !label_count(ctx, file, b, kw, want, &hs) {
        return None;
    }
    let name_label = b.labels.last()?;
    let name = name_label.as_str().to_string();
    let name_span = name_label.span().unwrap_or(hs.clone());
    let (type_label, ty, display) = if kind.typed() {
        let tl = b.labels.first()?;
        let t = tl.as_str().to_string();
        let display = format!("{kw} \"{t}\" \"{name}\"");
        let ty = kind.type_def(&t);
        if ty.is_none() {
            let mut known: Vec<&str> = kind.types().iter().map(|t| t.name).collect();
            known.sort_unstable();
            ctx.report(
                file,
                &tl.span().unwrap_or(hs.clone()),
                Diagnostic::error(format!("unknown {kw} type `{t}`"))
                    .with_block(display.clone())
                    .with_help(format!(
                        "known {kw} types: {}",
                        known
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
            );
        }
        (t, ty, display)
    } else {
        (kw.to_string(), None, format!("{kw} \"{name}\""))
    };
    let decl = Decl {
        type_label,
        file,
        span: name_span.clone(),
    };
    if let Err(first) = ctx.symbols.declare(kind, &name, decl) {
        let at = ctx.pos(first.file, &first.span);
        ctx.report(
            file,
            &name_span,
            Diagnostic::error(format!("duplicate {kw} name `{name}`"))
                .with_block(display)
                .with_detail(format!("{kw} `{name}` is already declared at {at}"))
                .with_help("names must be unique within a kind; rename one of them"),
        );
        return None;
    }
    if kind.typed() && ty.is_none() {
        return None;
    }
    Some(PolicyBlock {
        kind,
        file,
        block: b,
        ty,
        name,
        header: hs,
        display,
    })
}
