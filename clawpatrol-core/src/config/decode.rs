//! Strict, schema-driven decoding of a block body into typed values with spans.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use hcl_edit::structure::{Body, Structure};
use hcl_edit::Span;

use super::diag::Diagnostic;
use super::duration;
use super::files::{expand_includes, IncludeError};
use super::host::split_host_port;
use super::model::AttrValue;
use super::refs::{Resolved, Symbols};
use super::source::SourceFile;
use super::types::{Field, Ty};
use super::value::{from_expr, Val, ValKind};

/// The state of one load: sources, symbols and the diagnostics found so far.
pub(crate) struct Ctx<'a> {
    /// The source files.
    pub files: &'a [SourceFile],
    /// The config directory (for `<<file:>>`).
    pub dir: &'a Path,
    /// Declared names.
    pub symbols: Symbols,
    /// Diagnostics with their (file, offset) sort key.
    pub diags: Vec<((usize, usize), Diagnostic)>,
}

impl Ctx<'_> {
    /// Records `d` located at `span` of `file`.
    pub fn report(&mut self, file: usize, span: &Range<usize>, d: Diagnostic) {
        let loc = self
            .files
            .get(file)
            .map(|f| f.location(span.start, span.end));
        self.diags.push(((file, span.start), d.at(loc)));
    }

    /// A file's text.
    pub fn src(&self, file: usize) -> &str {
        self.files.get(file).map(|f| f.text()).unwrap_or("")
    }

    /// `file:line:col` of a span, for "first declared at" details.
    pub fn pos(&self, file: usize, span: &Range<usize>) -> String {
        match self.files.get(file) {
            Some(f) => {
                let l = f.location(span.start, span.end);
                format!("{}:{}:{}", l.file, l.line, l.column)
            }
            None => "?".to_string(),
        }
    }
}

/// One decoded attribute or nested block.
#[derive(Debug, Clone)]
pub(crate) struct Got {
    /// The key's span (the block header for nested blocks).
    pub key: Range<usize>,
    /// The value as written.
    pub val: Val,
    /// The typed value.
    pub value: AttrValue,
    /// Resolved references, for `Ref`/`RefList` fields.
    pub refs: Vec<Resolved>,
    /// A nested block's fields.
    pub sub: Option<Fields>,
}

/// The decoded attributes of one body.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fields {
    /// By name.
    pub map: BTreeMap<&'static str, Got>,
    /// The header span of the block.
    pub header: Range<usize>,
}

impl Fields {
    /// A string attribute.
    pub fn str(&self, name: &str) -> Option<&str> {
        match self.map.get(name).map(|g| &g.value) {
            Some(AttrValue::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// A bool attribute.
    pub fn bool(&self, name: &str) -> Option<bool> {
        match self.map.get(name).map(|g| &g.value) {
            Some(AttrValue::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    /// An integer attribute.
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.map.get(name).map(|g| &g.value) {
            Some(AttrValue::Int(i)) => Some(*i),
            _ => None,
        }
    }

    /// A string-list attribute.
    pub fn list(&self, name: &str) -> Option<&[String]> {
        match self.map.get(name).map(|g| &g.value) {
            Some(AttrValue::List(l)) => Some(l),
            _ => None,
        }
    }

    /// The value span of an attribute (else the header).
    pub fn span(&self, name: &str) -> Range<usize> {
        self.map
            .get(name)
            .map(|g| g.val.span.clone())
            .unwrap_or_else(|| self.header.clone())
    }

    /// The first resolved reference of an attribute.
    pub fn reference(&self, name: &str) -> Option<&Resolved> {
        self.map.get(name).and_then(|g| g.refs.first())
    }

    /// All attributes as a model attribute map, minus `skip`.
    pub fn attrs(&self, skip: &[&str]) -> BTreeMap<String, AttrValue> {
        self.map
            .iter()
            .filter(|(k, _)| !skip.contains(k))
            .map(|(k, g)| (k.to_string(), g.value.clone()))
            .collect()
    }
}

fn find<'f>(schema: &[&'f [Field]], name: &str) -> Option<&'f Field> {
    schema
        .iter()
        .flat_map(|s| s.iter())
        .find(|f| f.name == name)
}

fn known(schema: &[&[Field]], blocks: bool) -> String {
    let mut names: Vec<&str> = schema
        .iter()
        .flat_map(|s| s.iter())
        .filter(|f| matches!(f.ty, Ty::Block(_)) == blocks)
        .map(|f| f.name)
        .collect();
    names.sort_unstable();
    if names.is_empty() {
        "none".to_string()
    } else {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The span of a block header: keyword through last label.
pub(crate) fn header_span(b: &hcl_edit::structure::Block) -> Range<usize> {
    let start = b.ident.span().map(|s| s.start).unwrap_or(0);
    let end = b
        .labels
        .last()
        .and_then(|l| l.span())
        .or_else(|| b.ident.span())
        .map(|s| s.end)
        .unwrap_or(start);
    start..end
}

/// Decodes `body` strictly against `schema`; returns the fields and whether it was clean.
pub(crate) fn decode_body(
    ctx: &mut Ctx<'_>,
    file: usize,
    body: &Body,
    header: Range<usize>,
    schema: &[&[Field]],
    block: &str,
) -> (Fields, bool) {
    let mut out = Fields {
        map: BTreeMap::new(),
        header: header.clone(),
    };
    let mut ok = true;
    for st in body.iter() {
        match st {
            Structure::Attribute(a) => {
                let name = a.key.as_str();
                let key = a.key.span().unwrap_or(0..0);
                let field = find(schema, name);
                let Some(field) = field.filter(|f| !matches!(f.ty, Ty::Block(_))) else {
                    let help = if field.is_some() {
                        format!("`{name}` is a block: write `{name} {{ … }}`")
                    } else {
                        format!("arguments allowed here: {}", known(schema, false))
                    };
                    ctx.report(
                        file,
                        &key,
                        Diagnostic::error(format!("unsupported argument `{name}`"))
                            .with_block(block)
                            .with_detail(format!("an argument named `{name}` is not expected here"))
                            .with_help(help),
                    );
                    ok = false;
                    continue;
                };
                if let Some(first) = out.map.get(field.name) {
                    let at = ctx.pos(file, &first.key);
                    ctx.report(
                        file,
                        &key,
                        Diagnostic::error(format!("duplicate argument `{name}`"))
                            .with_block(block)
                            .with_detail(format!("`{name}` was already set at {at}")),
                    );
                    ok = false;
                    continue;
                }
                let val = from_expr(&a.value, ctx.src(file));
                match convert(ctx, file, field, &val, block) {
                    Some((value, refs)) => {
                        out.map.insert(
                            field.name,
                            Got {
                                key,
                                val,
                                value,
                                refs,
                                sub: None,
                            },
                        );
                    }
                    None => ok = false,
                }
            }
            Structure::Block(b) => {
                let name = b.ident.as_str();
                let hs = header_span(b);
                let field = find(schema, name);
                let Some((field, sub_schema)) = field.and_then(|f| match f.ty {
                    Ty::Block(s) => Some((f, s)),
                    _ => None,
                }) else {
                    let help = if field.is_some() {
                        format!("`{name}` is an argument: write `{name} = …`")
                    } else {
                        format!("blocks allowed here: {}", known(schema, true))
                    };
                    ctx.report(
                        file,
                        &hs,
                        Diagnostic::error(format!("unsupported block type `{name}`"))
                            .with_block(block)
                            .with_detail(format!("blocks of type `{name}` are not expected here"))
                            .with_help(help),
                    );
                    ok = false;
                    continue;
                };
                if !b.labels.is_empty() {
                    ctx.report(
                        file,
                        &hs,
                        Diagnostic::error(format!("wrong label count for `{name}` block"))
                            .with_block(block)
                            .with_detail(format!(
                                "`{name}` blocks take no labels; got {}",
                                b.labels.len()
                            )),
                    );
                    ok = false;
                    continue;
                }
                if let Some(first) = out.map.get(field.name) {
                    let at = ctx.pos(file, &first.key);
                    ctx.report(
                        file,
                        &hs,
                        Diagnostic::error(format!("duplicate `{name}` block"))
                            .with_block(block)
                            .with_detail(format!("the first `{name}` block is at {at}")),
                    );
                    ok = false;
                    continue;
                }
                let inner_block = format!("{block} > {name}");
                let (sub, sub_ok) =
                    decode_body(ctx, file, &b.body, hs.clone(), &[sub_schema], &inner_block);
                ok &= sub_ok;
                let value = AttrValue::Block(sub.attrs(&[]));
                out.map.insert(
                    field.name,
                    Got {
                        key: hs.clone(),
                        val: Val {
                            kind: ValKind::Null,
                            span: b.span().unwrap_or(hs),
                        },
                        value,
                        refs: Vec::new(),
                        sub: Some(sub),
                    },
                );
            }
        }
    }
    for field in schema.iter().flat_map(|s| s.iter()) {
        if field.required && !out.map.contains_key(field.name) && !body.has_attribute(field.name) {
            ctx.report(
                file,
                &header,
                Diagnostic::error(format!("missing required argument `{}`", field.name))
                    .with_block(block)
                    .with_help(format!("add `{} = …` to the block", field.name)),
            );
            ok = false;
        }
    }
    (out, ok)
}

fn type_name(ty: &Ty) -> &'static str {
    match ty {
        Ty::Str | Ty::Duration | Ty::HostPort | Ty::FileStr | Ty::OneOf(_) => "a string",
        Ty::Int => "an integer",
        Ty::Bool => "a bool",
        Ty::StrList => "a list of strings",
        Ty::StrMap => "a map of strings",
        Ty::Ref(_) => "a reference",
        Ty::RefList(_) => "a list of references",
        Ty::Block(_) => "a block",
        Ty::Raw => "a value",
    }
}

/// A string value, or a reported error.
pub(crate) fn want_str(
    ctx: &mut Ctx<'_>,
    file: usize,
    name: &str,
    val: &Val,
    block: &str,
) -> Option<String> {
    match &val.kind {
        ValKind::Str { text, .. } | ValKind::Heredoc(text) => Some(text.clone()),
        ValKind::Template => {
            ctx.report(
                file,
                &val.span,
                Diagnostic::error(format!("string templates are not supported in `{name}`"))
                    .with_block(block)
                    .with_detail("`${…}` interpolation and `%{…}` directives are not evaluated")
                    .with_help("write a plain string; for a literal `${` write `$${`"),
            );
            None
        }
        _ => {
            wrong_type(ctx, file, name, "a string", val, block);
            None
        }
    }
}

fn wrong_type(ctx: &mut Ctx<'_>, file: usize, name: &str, want: &str, val: &Val, block: &str) {
    ctx.report(
        file,
        &val.span,
        Diagnostic::error(format!(
            "invalid value for `{name}`: expected {want}, got {}",
            val.describe()
        ))
        .with_block(block),
    );
}

type Converted = (AttrValue, Vec<Resolved>);

fn convert(
    ctx: &mut Ctx<'_>,
    file: usize,
    field: &Field,
    val: &Val,
    block: &str,
) -> Option<Converted> {
    let name = field.name;
    let plain = |v: AttrValue| Some((v, Vec::new()));
    match field.ty {
        Ty::Str => want_str(ctx, file, name, val, block).and_then(|s| plain(AttrValue::Str(s))),
        Ty::Int => match val.kind {
            ValKind::Int(i) => plain(AttrValue::Int(i)),
            _ => {
                wrong_type(ctx, file, name, "an integer", val, block);
                None
            }
        },
        Ty::Bool => match val.kind {
            ValKind::Bool(b) => plain(AttrValue::Bool(b)),
            _ => {
                wrong_type(ctx, file, name, "a bool", val, block);
                None
            }
        },
        Ty::StrList => {
            let ValKind::List(items) = &val.kind else {
                wrong_type(ctx, file, name, "a list of strings", val, block);
                return None;
            };
            let mut out = Vec::new();
            let mut ok = true;
            for it in items {
                match want_str(ctx, file, &format!("{name}[{}]", out.len()), it, block) {
                    Some(s) => out.push(s),
                    None => ok = false,
                }
            }
            ok.then_some((AttrValue::List(out), Vec::new()))
        }
        Ty::StrMap => {
            let ValKind::Object(items) = &val.kind else {
                wrong_type(ctx, file, name, "a map of strings", val, block);
                return None;
            };
            let mut out = BTreeMap::new();
            let mut ok = true;
            for (k, _, v) in items {
                match want_str(ctx, file, &format!("{name}.{k}"), v, block) {
                    Some(s) => {
                        out.insert(k.clone(), s);
                    }
                    None => ok = false,
                }
            }
            ok.then_some((AttrValue::Map(out), Vec::new()))
        }
        Ty::Duration => {
            let s = want_str(ctx, file, name, val, block)?;
            match duration::parse(&s) {
                Ok(d) if !d.is_zero() => plain(AttrValue::Str(s)),
                Ok(_) => {
                    ctx.report(
                        file,
                        &val.span,
                        Diagnostic::error(format!("invalid duration for `{name}`"))
                            .with_block(block)
                            .with_detail(format!("`{s}` must be greater than zero")),
                    );
                    None
                }
                Err(e) => {
                    ctx.report(
                        file,
                        &val.span,
                        Diagnostic::error(format!("invalid duration for `{name}`"))
                            .with_block(block)
                            .with_detail(e.to_string()),
                    );
                    None
                }
            }
        }
        Ty::HostPort => {
            let s = want_str(ctx, file, name, val, block)?;
            if let Err(why) = check_host_port(&s) {
                ctx.report(
                    file,
                    &val.span,
                    Diagnostic::error(format!("invalid address `{s}` for `{name}`"))
                        .with_block(block)
                        .with_detail(why)
                        .with_help("use `host:port`, e.g. `127.0.0.1:5433`"),
                );
                return None;
            }
            plain(AttrValue::Str(s))
        }
        Ty::FileStr => {
            let s = want_str(ctx, file, name, val, block)?;
            let (text, errors) = expand_includes(&s, ctx.dir);
            let ok = errors.is_empty();
            for e in errors {
                let mut d = Diagnostic::error(e.to_string()).with_block(block);
                if let IncludeError::Unreadable { why, .. } = &e {
                    d = d.with_detail(why.clone());
                } else {
                    d = d.with_help("close the marker: `<<file:NAME>>`");
                }
                ctx.report(file, &val.span, d);
            }
            ok.then_some((AttrValue::Str(text), Vec::new()))
        }
        Ty::OneOf(allowed) => {
            let s = want_str(ctx, file, name, val, block)?;
            if !allowed.contains(&s.as_str()) {
                ctx.report(
                    file,
                    &val.span,
                    Diagnostic::error(format!("invalid {name} `{s}`"))
                        .with_block(block)
                        .with_help(format!(
                            "use one of: {}",
                            allowed
                                .iter()
                                .map(|a| format!("`{a}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                );
                return None;
            }
            plain(AttrValue::Str(s))
        }
        Ty::Ref(kind) => match ctx.symbols.resolve(kind, val) {
            Ok(r) => Some((AttrValue::Str(r.name.clone()), vec![r])),
            Err(d) => {
                ctx.report(file, &val.span, (*d).with_block(block));
                None
            }
        },
        Ty::RefList(kind) => {
            let ValKind::List(items) = &val.kind else {
                let d = Diagnostic::error(format!(
                    "invalid value for `{name}`: expected a list of references, got {}",
                    val.describe()
                ))
                .with_block(block);
                let d = match ctx.symbols.resolve(kind, val) {
                    Ok(r) => d.with_help(format!("write `[{}]`", r.typed())),
                    Err(_) => d,
                };
                ctx.report(file, &val.span, d);
                return None;
            };
            let mut refs = Vec::new();
            let mut ok = true;
            for it in items {
                match ctx.symbols.resolve(kind, it) {
                    Ok(r) => refs.push(r),
                    Err(d) => {
                        ctx.report(file, &it.span, (*d).with_block(block));
                        ok = false;
                    }
                }
            }
            let names = refs.iter().map(|r| r.name.clone()).collect();
            ok.then_some((AttrValue::List(names), refs))
        }
        Ty::Block(_) => {
            wrong_type(ctx, file, name, type_name(&field.ty), val, block);
            None
        }
        Ty::Raw => plain(AttrValue::Str(String::new())),
    }
}

/// Checks a `host:port` listener/dial address (port required).
pub(crate) fn check_host_port(s: &str) -> Result<(), String> {
    match split_host_port(s) {
        Ok((host, Some(_))) if !host.is_empty() => Ok(()),
        Ok((_, Some(_))) => Err(format!("`{s}` has no host")),
        Ok((_, None)) => Err(format!("`{s}` has no port")),
        Err(e) => Err(e.to_string()),
    }
}
