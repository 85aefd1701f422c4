//! Lowering of the `cel` crate's AST to our typed IR: name resolution, static types, literal
//! lower-casing (reference §2.4) and load-time regex compilation.

use std::collections::BTreeSet;
use std::ops::Range;

use cel::common::ast::{
    operators, ComprehensionExpr, EntryExpr, Expr, IdedExpr, LiteralValue, SourceInfo,
};
use regex::Regex;

use super::errors::{CompileError, CompileErrorKind as K};
use super::ir::{BinOp, Comp, CompKind, Conv, Lit, Node, SetOp, StrOp, Ty};
use crate::facts::{Facet, Family, FieldId, FieldType};

/// A lowered expression and its static type.
type Lowered = (Node, Ty);

/// The static type of a fact field.
fn field_ty(f: FieldId) -> Ty {
    match f.meta().ty {
        FieldType::String => Ty::String,
        FieldType::Int => Ty::Int,
        FieldType::StringList => Ty::List(Box::new(Ty::String)),
        FieldType::StringMap => Ty::Map(Box::new(Ty::String), Box::new(Ty::String)),
        FieldType::StringListMap => Ty::Map(
            Box::new(Ty::String),
            Box::new(Ty::List(Box::new(Ty::String))),
        ),
        FieldType::Json => Ty::Dyn,
    }
}

/// Lowers one parsed condition for one family.
pub(crate) struct Lowerer<'s> {
    family: Family,
    text: &'s str,
    info: &'s SourceInfo,
    /// Comprehension variables in scope, innermost last.
    scope: Vec<(String, Ty)>,
    /// Every fact field read.
    pub(crate) fields: BTreeSet<FieldId>,
}

impl<'s> Lowerer<'s> {
    /// A lowerer for `text` (whose parse produced `info`) in `family`.
    pub(crate) fn new(family: Family, text: &'s str, info: &'s SourceInfo) -> Lowerer<'s> {
        Lowerer {
            family,
            text,
            info,
            scope: Vec::new(),
            fields: BTreeSet::new(),
        }
    }

    /// Byte span of the node `id`.
    fn span(&self, id: u64) -> Option<Range<usize>> {
        let (start, stop) = self.info.offset_for(id)?;
        let byte = |c: u32| {
            self.text
                .char_indices()
                .nth(c as usize)
                .map_or(self.text.len(), |(b, _)| b)
        };
        let (s, e) = (byte(start), byte(stop.saturating_add(1)));
        Some(s..e.max(s))
    }

    fn err(&self, id: u64, kind: K, message: impl Into<String>) -> CompileError {
        CompileError {
            message: message.into(),
            span: self.span(id),
            kind,
        }
    }

    fn in_scope(&self, name: &str) -> Option<usize> {
        self.scope.iter().rposition(|(n, _)| n == name)
    }

    fn facet_names(&self) -> String {
        self.family
            .facets()
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The facet named `name` if the family may read it, else an `UnknownVariable` error.
    fn facet(&self, id: u64, name: &str) -> Result<Facet, CompileError> {
        match Facet::from_name(name) {
            Some(f) if self.family.facets().contains(&f) => Ok(f),
            _ => Err(self.err(
                id,
                K::UnknownVariable,
                format!(
                    "undeclared reference to `{name}` (rules on {} endpoints can read: {})",
                    self.family,
                    self.facet_names()
                ),
            )),
        }
    }

    /// The field read by `e` when it is a direct select off a facet variable.
    fn direct_field(&self, e: &IdedExpr) -> Option<FieldId> {
        match &e.expr {
            Expr::Select(s) if !s.test => match &s.operand.expr {
                Expr::Ident(name) if self.in_scope(name).is_none() => {
                    let facet = Facet::from_name(name)?;
                    if !self.family.facets().contains(&facet) {
                        return None;
                    }
                    facet.field(&s.field)
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// Whether `e` is a direct select of a lower-cased string field.
    fn is_lowercased(&self, e: &IdedExpr) -> bool {
        self.direct_field(e)
            .is_some_and(|f| f.meta().lowercased && f.meta().ty == FieldType::String)
    }

    /// Lowers `e`, lower-casing it if it is a string literal or a list literal's string elements.
    fn lower_lc(&mut self, e: &IdedExpr) -> Result<Lowered, CompileError> {
        match &e.expr {
            Expr::Literal(LiteralValue::String(s)) => {
                Ok((Node::Const(Lit::Str(s.inner().to_lowercase())), Ty::String))
            }
            Expr::List(l) => {
                let mut nodes = Vec::with_capacity(l.elements.len());
                let mut tys = Vec::with_capacity(l.elements.len());
                for el in &l.elements {
                    let (n, t) = match &el.expr {
                        Expr::Literal(LiteralValue::String(_)) => self.lower_lc(el)?,
                        _ => self.lower(el)?,
                    };
                    nodes.push(n);
                    tys.push(t);
                }
                Ok((Node::List(nodes), Ty::List(Box::new(common_ty(tys)))))
            }
            _ => self.lower(e),
        }
    }

    /// Lowers `e` and requires a bool (or dyn) result.
    fn lower_bool(&mut self, e: &IdedExpr, what: &str) -> Result<Node, CompileError> {
        let (n, t) = self.lower(e)?;
        if matches!(t, Ty::Bool | Ty::Dyn) {
            Ok(n)
        } else {
            Err(self.err(e.id, K::Type, format!("{what} requires bool, got {t}")))
        }
    }

    /// Lowers one expression.
    pub(crate) fn lower(&mut self, e: &IdedExpr) -> Result<Lowered, CompileError> {
        match &e.expr {
            Expr::Unspecified => Err(self.err(e.id, K::Syntax, "empty expression")),
            Expr::Literal(l) => Ok(lower_lit(l)),
            Expr::Ident(name) => {
                if let Some(i) = self.in_scope(name) {
                    let ty = self.scope[i].1.clone();
                    return Ok((Node::Var(i), ty));
                }
                let facet = self.facet(e.id, name)?;
                Err(self.err(
                    e.id,
                    K::Unsupported,
                    format!(
                        "`{}` must be used with a field select (e.g. `{}.{}`)",
                        facet.as_str(),
                        facet.as_str(),
                        facet.fields().next().map_or("", |f| f.name())
                    ),
                ))
            }
            Expr::Select(s) => {
                if let Expr::Ident(name) = &s.operand.expr {
                    if self.in_scope(name).is_none() {
                        let facet = self.facet(s.operand.id, name)?;
                        let Some(f) = facet.field(&s.field) else {
                            let names: Vec<&str> = facet.fields().map(|f| f.name()).collect();
                            return Err(self.err(
                                e.id,
                                K::UnknownField,
                                format!(
                                    "undefined field `{}` on `{}` (fields: {})",
                                    s.field,
                                    facet.as_str(),
                                    names.join(", ")
                                ),
                            ));
                        };
                        self.fields.insert(f);
                        return Ok(if s.test {
                            (Node::HasField(f), Ty::Bool)
                        } else {
                            (Node::Field(f), field_ty(f))
                        });
                    }
                }
                let (n, t) = self.lower(&s.operand)?;
                let vt = match &t {
                    Ty::Map(_, v) => (**v).clone(),
                    Ty::Dyn => Ty::Dyn,
                    other => {
                        return Err(self.err(
                            e.id,
                            K::Type,
                            format!("type `{other}` does not support field selection"),
                        ))
                    }
                };
                let name: Box<str> = s.field.as_str().into();
                Ok(if s.test {
                    (Node::Has(Box::new(n), name), Ty::Bool)
                } else {
                    (Node::Select(Box::new(n), name), vt)
                })
            }
            Expr::List(l) => {
                if !l.optional_indices.is_empty() {
                    return Err(self.err(
                        e.id,
                        K::Unsupported,
                        "optional list elements are not supported",
                    ));
                }
                let mut nodes = Vec::with_capacity(l.elements.len());
                let mut tys = Vec::with_capacity(l.elements.len());
                for el in &l.elements {
                    let (n, t) = self.lower(el)?;
                    nodes.push(n);
                    tys.push(t);
                }
                Ok((Node::List(nodes), Ty::List(Box::new(common_ty(tys)))))
            }
            Expr::Map(m) => {
                let mut entries = Vec::with_capacity(m.entries.len());
                let mut kts = Vec::new();
                let mut vts = Vec::new();
                for entry in &m.entries {
                    let EntryExpr::MapEntry(me) = &entry.expr else {
                        return Err(self.err(
                            entry.id,
                            K::Unsupported,
                            "struct fields in a map literal",
                        ));
                    };
                    if me.optional {
                        return Err(self.err(
                            entry.id,
                            K::Unsupported,
                            "optional map entries are not supported",
                        ));
                    }
                    let (k, kt) = self.lower(&me.key)?;
                    if !matches!(kt, Ty::Int | Ty::Uint | Ty::Bool | Ty::String | Ty::Dyn) {
                        return Err(self.err(
                            me.key.id,
                            K::Type,
                            format!("unsupported map key type {kt}"),
                        ));
                    }
                    let (v, vt) = self.lower(&me.value)?;
                    entries.push((k, v));
                    kts.push(kt);
                    vts.push(vt);
                }
                Ok((
                    Node::Map(entries),
                    Ty::Map(Box::new(common_ty(kts)), Box::new(common_ty(vts))),
                ))
            }
            Expr::Struct(_) => Err(self.err(
                e.id,
                K::Unsupported,
                "message construction is not supported",
            )),
            Expr::Comprehension(c) => self.lower_comprehension(e.id, c),
            Expr::Call(call) => {
                self.lower_call(e, &call.func_name, call.target.as_deref(), &call.args)
            }
        }
    }

    fn lower_call(
        &mut self,
        e: &IdedExpr,
        func: &str,
        target: Option<&IdedExpr>,
        args: &[IdedExpr],
    ) -> Result<Lowered, CompileError> {
        let id = e.id;
        let arity = |n: usize| args.len() == n;
        match (func, target) {
            (operators::LOGICAL_AND | operators::LOGICAL_OR, None) if arity(2) => {
                let a = self.lower_bool(&args[0], func_op(func))?;
                let b = self.lower_bool(&args[1], func_op(func))?;
                let node = if func == operators::LOGICAL_AND {
                    Node::And(Box::new(a), Box::new(b))
                } else {
                    Node::Or(Box::new(a), Box::new(b))
                };
                Ok((node, Ty::Bool))
            }
            (operators::LOGICAL_NOT, None) if arity(1) => {
                let a = self.lower_bool(&args[0], "!")?;
                Ok((Node::Not(Box::new(a)), Ty::Bool))
            }
            (operators::NEGATE, None) if arity(1) => {
                let (a, t) = self.lower(&args[0])?;
                match (a, t) {
                    (Node::Const(Lit::Int(i)), Ty::Int) => match i.checked_neg() {
                        Some(v) => Ok((Node::Const(Lit::Int(v)), Ty::Int)),
                        None => Err(self.err(id, K::Type, "int overflow")),
                    },
                    (Node::Const(Lit::Double(d)), Ty::Double) => {
                        Ok((Node::Const(Lit::Double(-d)), Ty::Double))
                    }
                    (a, t @ (Ty::Int | Ty::Double | Ty::Dyn)) => Ok((Node::Neg(Box::new(a)), t)),
                    (_, t) => {
                        Err(self.err(id, K::Type, format!("no matching overload for `-` on {t}")))
                    }
                }
            }
            (operators::CONDITIONAL, None) if arity(3) => {
                let c = self.lower_bool(&args[0], "?:")?;
                let (a, ta) = self.lower(&args[1])?;
                let (b, tb) = self.lower(&args[2])?;
                let t = if ta == tb { ta } else { Ty::Dyn };
                Ok((Node::Cond(Box::new(c), Box::new(a), Box::new(b)), t))
            }
            (operators::EQUALS | operators::NOT_EQUALS, None) if arity(2) => {
                let (l, r) = (&args[0], &args[1]);
                let (a, ta) = if self.is_lowercased(r) && is_str_lit(l) {
                    self.lower_lc(l)?
                } else {
                    self.lower(l)?
                };
                let (b, tb) = if self.is_lowercased(l) && is_str_lit(r) {
                    self.lower_lc(r)?
                } else {
                    self.lower(r)?
                };
                if !eq_compatible(&ta, &tb) {
                    return Err(self.overload(id, func, &ta, &tb));
                }
                let op = if func == operators::EQUALS {
                    BinOp::Eq
                } else {
                    BinOp::Ne
                };
                Ok((Node::Bin(op, Box::new(a), Box::new(b)), Ty::Bool))
            }
            (
                operators::LESS
                | operators::LESS_EQUALS
                | operators::GREATER
                | operators::GREATER_EQUALS,
                None,
            ) if arity(2) => {
                let (a, ta) = self.lower(&args[0])?;
                let (b, tb) = self.lower(&args[1])?;
                if !ord_compatible(&ta, &tb) {
                    return Err(self.overload(id, func, &ta, &tb));
                }
                let op = match func {
                    operators::LESS => BinOp::Lt,
                    operators::LESS_EQUALS => BinOp::Le,
                    operators::GREATER => BinOp::Gt,
                    _ => BinOp::Ge,
                };
                Ok((Node::Bin(op, Box::new(a), Box::new(b)), Ty::Bool))
            }
            (
                operators::ADD
                | operators::SUBSTRACT
                | operators::MULTIPLY
                | operators::DIVIDE
                | operators::MODULO,
                None,
            ) if arity(2) => {
                let (a, ta) = self.lower(&args[0])?;
                let (b, tb) = self.lower(&args[1])?;
                let op = match func {
                    operators::ADD => BinOp::Add,
                    operators::SUBSTRACT => BinOp::Sub,
                    operators::MULTIPLY => BinOp::Mul,
                    operators::DIVIDE => BinOp::Div,
                    _ => BinOp::Mod,
                };
                let Some(t) = arith_ty(op, &ta, &tb) else {
                    return Err(self.overload(id, func, &ta, &tb));
                };
                Ok((Node::Bin(op, Box::new(a), Box::new(b)), t))
            }
            (operators::IN, None) if arity(2) => {
                let (a, ta) = self.lower(&args[0])?;
                let (b, tb) = if self.is_lowercased(&args[0]) {
                    self.lower_lc(&args[1])?
                } else {
                    self.lower(&args[1])?
                };
                match &tb {
                    Ty::List(_) | Ty::Map(_, _) | Ty::Dyn => {}
                    _ => return Err(self.overload(id, func, &ta, &tb)),
                }
                if let Node::List(items) = &b {
                    let strs: Option<Vec<Box<str>>> = items
                        .iter()
                        .map(|n| match n {
                            Node::Const(Lit::Str(s)) => Some(s.as_str().into()),
                            _ => None,
                        })
                        .collect();
                    if let Some(mut set) = strs {
                        set.sort();
                        set.dedup();
                        return Ok((Node::InSet(Box::new(a), set.into_boxed_slice()), Ty::Bool));
                    }
                }
                Ok((Node::Bin(BinOp::In, Box::new(a), Box::new(b)), Ty::Bool))
            }
            (operators::INDEX, None) if arity(2) => {
                let (a, ta) = self.lower(&args[0])?;
                let (b, tb) = self.lower(&args[1])?;
                let t = match (&ta, &tb) {
                    (Ty::List(el), Ty::Int | Ty::Uint | Ty::Double | Ty::Dyn) => (**el).clone(),
                    (Ty::Map(_, v), _) => (**v).clone(),
                    (Ty::Dyn, _) => Ty::Dyn,
                    _ => return Err(self.overload(id, "_[_]", &ta, &tb)),
                };
                Ok((Node::Bin(BinOp::Index, Box::new(a), Box::new(b)), t))
            }
            ("size", None) if arity(1) => self.lower_size(id, &args[0]),
            ("size", Some(t)) if arity(0) => self.lower_size(id, t),
            ("contains" | "intersects" | "equivalent", Some(t)) if arity(2) && self.is_sets(t) => {
                let (a, ta) = self.lower(&args[0])?;
                let (b, tb) = self.lower(&args[1])?;
                for (x, tx) in [(&args[0], &ta), (&args[1], &tb)] {
                    if !matches!(tx, Ty::List(_) | Ty::Dyn) {
                        return Err(self.err(
                            x.id,
                            K::Type,
                            format!("sets.{func} requires lists, got {tx}"),
                        ));
                    }
                }
                let op = match func {
                    "contains" => SetOp::Contains,
                    "intersects" => SetOp::Intersects,
                    _ => SetOp::Equivalent,
                };
                Ok((Node::Sets(op, Box::new(a), Box::new(b)), Ty::Bool))
            }
            ("contains" | "startsWith" | "endsWith", Some(t)) if arity(1) => {
                let (recv, tr) = self.lower(t)?;
                let (arg, ta) = if self.is_lowercased(t) && is_str_lit(&args[0]) {
                    self.lower_lc(&args[0])?
                } else {
                    self.lower(&args[0])?
                };
                self.require_str(t.id, func, &tr)?;
                self.require_str(args[0].id, func, &ta)?;
                let op = match func {
                    "contains" => StrOp::Contains,
                    "startsWith" => StrOp::StartsWith,
                    _ => StrOp::EndsWith,
                };
                Ok((Node::Str(op, Box::new(recv), Box::new(arg)), Ty::Bool))
            }
            ("matches", Some(t)) if arity(1) => self.lower_matches(t, &args[0]),
            ("matches", None) if arity(2) => self.lower_matches(&args[0], &args[1]),
            ("int" | "uint" | "double" | "string" | "bool", None) if arity(1) => {
                let (a, ta) = self.lower(&args[0])?;
                let (conv, ty) = match func {
                    "int" => (Conv::Int, Ty::Int),
                    "uint" => (Conv::Uint, Ty::Uint),
                    "double" => (Conv::Double, Ty::Double),
                    "string" => (Conv::String, Ty::String),
                    _ => (Conv::Bool, Ty::Bool),
                };
                let ok = match conv {
                    Conv::Int | Conv::Uint | Conv::Double => {
                        ta.is_numeric() || matches!(ta, Ty::String | Ty::Dyn)
                    }
                    Conv::String => {
                        ta.is_numeric() || matches!(ta, Ty::String | Ty::Bool | Ty::Bytes | Ty::Dyn)
                    }
                    Conv::Bool => matches!(ta, Ty::String | Ty::Bool | Ty::Dyn),
                };
                if !ok {
                    return Err(self.err(
                        id,
                        K::Type,
                        format!("found no matching overload for `{func}` applied to ({ta})"),
                    ));
                }
                Ok((Node::Conv(conv, Box::new(a)), ty))
            }
            ("dyn", None) if arity(1) => {
                let (a, _) = self.lower(&args[0])?;
                Ok((a, Ty::Dyn))
            }
            _ => {
                let name = match target {
                    Some(t) => match &t.expr {
                        Expr::Ident(n)
                            if self.in_scope(n).is_none() && Facet::from_name(n).is_none() =>
                        {
                            format!("{n}.{func}")
                        }
                        _ => func.to_string(),
                    },
                    None => func.to_string(),
                };
                Err(self.err(
                    id,
                    K::Unsupported,
                    format!(
                        "unsupported function `{name}` with {} argument(s)",
                        args.len()
                    ),
                ))
            }
        }
    }

    fn is_sets(&self, t: &IdedExpr) -> bool {
        matches!(&t.expr, Expr::Ident(n) if n == "sets" && self.in_scope(n).is_none())
    }

    fn overload(&self, id: u64, func: &str, a: &Ty, b: &Ty) -> CompileError {
        self.err(
            id,
            K::Type,
            format!(
                "found no matching overload for `{}` applied to ({a}, {b})",
                func_op(func)
            ),
        )
    }

    fn require_str(&self, id: u64, func: &str, t: &Ty) -> Result<(), CompileError> {
        if matches!(t, Ty::String | Ty::Dyn) {
            Ok(())
        } else {
            Err(self.err(id, K::Type, format!("`{func}` requires a string, got {t}")))
        }
    }

    fn lower_size(&mut self, id: u64, x: &IdedExpr) -> Result<Lowered, CompileError> {
        let (a, t) = self.lower(x)?;
        match t {
            Ty::String | Ty::Bytes | Ty::List(_) | Ty::Map(_, _) | Ty::Dyn => {
                Ok((Node::Size(Box::new(a)), Ty::Int))
            }
            t => Err(self.err(
                id,
                K::Type,
                format!("found no matching overload for `size` applied to ({t})"),
            )),
        }
    }

    fn lower_matches(&mut self, s: &IdedExpr, pat: &IdedExpr) -> Result<Lowered, CompileError> {
        let (recv, tr) = self.lower(s)?;
        self.require_str(s.id, "matches", &tr)?;
        if let Expr::Literal(LiteralValue::String(p)) = &pat.expr {
            return match Regex::new(p.inner()) {
                Ok(re) => Ok((Node::MatchesConst(Box::new(recv), Box::new(re)), Ty::Bool)),
                Err(e) => Err(self.err(
                    pat.id,
                    K::InvalidRegex,
                    format!("invalid regular expression: {}", first_line(&e.to_string())),
                )),
            };
        }
        let (p, tp) = self.lower(pat)?;
        self.require_str(pat.id, "matches", &tp)?;
        Ok((Node::Matches(Box::new(recv), Box::new(p)), Ty::Bool))
    }

    fn lower_comprehension(
        &mut self,
        id: u64,
        c: &ComprehensionExpr,
    ) -> Result<Lowered, CompileError> {
        let unsupported = || self.err(id, K::Unsupported, "unsupported comprehension");
        if c.iter_var2.is_some() {
            return Err(unsupported());
        }
        let accu = c.accu_var.as_str();
        let is_accu = |e: &IdedExpr| matches!(&e.expr, Expr::Ident(n) if n == accu);
        // Recognise the expansions of the standard macros: (kind, predicate, transform).
        // `@result + [t]` → `t`.
        let append = |e: &IdedExpr| -> Option<IdedExpr> {
            let (f, a) = call(e)?;
            if f != operators::ADD || a.len() != 2 || !is_accu(&a[0]) {
                return None;
            }
            match &a[1].expr {
                Expr::List(one) if one.elements.len() == 1 => Some(one.elements[0].clone()),
                _ => None,
            }
        };
        let shape: Option<(CompKind, Option<IdedExpr>, Option<IdedExpr>)> =
            match (&c.accu_init.expr, call(&c.loop_step)) {
                (Expr::Literal(LiteralValue::Boolean(b)), Some((f, args)))
                    if args.len() == 2 && is_accu(&args[0]) =>
                {
                    match (**b, f) {
                        (false, operators::LOGICAL_OR) => {
                            Some((CompKind::Exists, Some(args[1].clone()), None))
                        }
                        (true, operators::LOGICAL_AND) => {
                            Some((CompKind::All, Some(args[1].clone()), None))
                        }
                        _ => None,
                    }
                }
                (Expr::Literal(LiteralValue::Int(i)), Some((f, args)))
                    if **i == 0 && f == operators::CONDITIONAL && args.len() == 3 =>
                {
                    Some((CompKind::ExistsOne, Some(args[0].clone()), None))
                }
                (Expr::List(l), Some((f, args))) if l.elements.is_empty() => {
                    if f == operators::ADD {
                        append(&c.loop_step).map(|t| (CompKind::Map, None, Some(t)))
                    } else if f == operators::CONDITIONAL && args.len() == 3 && is_accu(&args[2]) {
                        append(&args[1]).map(|t| (CompKind::Map, Some(args[0].clone()), Some(t)))
                    } else {
                        None
                    }
                }
                _ => None,
            };
        let Some((kind, pred, transform)) = shape else {
            return Err(unsupported());
        };
        let (range, rt) = self.lower(&c.iter_range)?;
        let var_ty = match &rt {
            Ty::List(el) => (**el).clone(),
            Ty::Map(k, _) => (**k).clone(),
            Ty::Dyn => Ty::Dyn,
            other => {
                return Err(self.err(
                    c.iter_range.id,
                    K::Type,
                    format!("cannot iterate over {other}"),
                ))
            }
        };
        let var = self.scope.len();
        self.scope.push((c.iter_var.clone(), var_ty));
        let result = (|| {
            let pred = match &pred {
                Some(p) => Some(self.lower_bool(p, "comprehension predicate")?),
                None => None,
            };
            let transform = match &transform {
                Some(t) => Some(self.lower(t)?),
                None => None,
            };
            Ok((pred, transform))
        })();
        self.scope.pop();
        let (pred, transform) = result?;
        let ty = match (&kind, &transform) {
            (CompKind::Map, Some((_, t))) => Ty::List(Box::new(t.clone())),
            _ => Ty::Bool,
        };
        Ok((
            Node::Comp(Box::new(Comp {
                kind,
                range,
                var,
                pred,
                transform: transform.map(|(n, _)| n),
            })),
            ty,
        ))
    }
}

/// The function name and arguments of a global call.
fn call(e: &IdedExpr) -> Option<(&str, &[IdedExpr])> {
    match &e.expr {
        Expr::Call(c) if c.target.is_none() => Some((c.func_name.as_str(), c.args.as_slice())),
        _ => None,
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn func_op(func: &str) -> &str {
    match func {
        operators::LOGICAL_AND => "&&",
        operators::LOGICAL_OR => "||",
        operators::EQUALS => "==",
        operators::NOT_EQUALS => "!=",
        operators::LESS => "<",
        operators::LESS_EQUALS => "<=",
        operators::GREATER => ">",
        operators::GREATER_EQUALS => ">=",
        operators::ADD => "+",
        operators::SUBSTRACT => "-",
        operators::MULTIPLY => "*",
        operators::DIVIDE => "/",
        operators::MODULO => "%",
        operators::IN => "in",
        other => other,
    }
}

fn is_str_lit(e: &IdedExpr) -> bool {
    matches!(
        &e.expr,
        Expr::Literal(LiteralValue::String(_)) | Expr::List(_)
    )
}

fn lower_lit(l: &LiteralValue) -> Lowered {
    match l {
        LiteralValue::Boolean(b) => (Node::Const(Lit::Bool(**b)), Ty::Bool),
        LiteralValue::Bytes(b) => (Node::Const(Lit::Bytes(b.inner().to_vec())), Ty::Bytes),
        LiteralValue::Double(d) => (Node::Const(Lit::Double(**d)), Ty::Double),
        LiteralValue::Int(i) => (Node::Const(Lit::Int(**i)), Ty::Int),
        LiteralValue::Null => (Node::Const(Lit::Null), Ty::Null),
        LiteralValue::String(s) => (Node::Const(Lit::Str(s.inner().to_string())), Ty::String),
        LiteralValue::UInt(u) => (Node::Const(Lit::Uint(**u)), Ty::Uint),
    }
}

/// The element type of a literal list (or key/value type of a map) with these member types.
fn common_ty(tys: Vec<Ty>) -> Ty {
    let mut it = tys.into_iter();
    let Some(first) = it.next() else {
        return Ty::Dyn;
    };
    if it.all(|t| t == first) {
        first
    } else {
        Ty::Dyn
    }
}

fn eq_compatible(a: &Ty, b: &Ty) -> bool {
    match (a, b) {
        (Ty::Dyn, _) | (_, Ty::Dyn) | (Ty::Null, _) | (_, Ty::Null) => true,
        (x, y) if x.is_numeric() && y.is_numeric() => true,
        (Ty::List(x), Ty::List(y)) => eq_compatible(x, y),
        (Ty::Map(k1, v1), Ty::Map(k2, v2)) => eq_compatible(k1, k2) && eq_compatible(v1, v2),
        (x, y) => x == y,
    }
}

fn ord_compatible(a: &Ty, b: &Ty) -> bool {
    match (a, b) {
        (Ty::Dyn, _) | (_, Ty::Dyn) => true,
        (x, y) if x.is_numeric() && y.is_numeric() => true,
        (Ty::String, Ty::String) | (Ty::Bool, Ty::Bool) | (Ty::Bytes, Ty::Bytes) => true,
        _ => false,
    }
}

/// The result type of an arithmetic operator, or `None` when no overload applies.
fn arith_ty(op: BinOp, a: &Ty, b: &Ty) -> Option<Ty> {
    let addable =
        |t: &Ty| t.is_numeric() || matches!(t, Ty::String | Ty::Bytes | Ty::List(_) | Ty::Dyn);
    let numeric = |t: &Ty| match op {
        BinOp::Mod => matches!(t, Ty::Int | Ty::Uint | Ty::Dyn),
        _ => t.is_numeric() || *t == Ty::Dyn,
    };
    let ok = |t: &Ty| {
        if op == BinOp::Add {
            addable(t)
        } else {
            numeric(t)
        }
    };
    match (a, b) {
        (Ty::Dyn, t) | (t, Ty::Dyn) => ok(t).then_some(Ty::Dyn),
        (Ty::List(x), Ty::List(y)) if op == BinOp::Add => Some(Ty::List(Box::new(if x == y {
            (**x).clone()
        } else {
            Ty::Dyn
        }))),
        (x, y) if x == y && ok(x) => Some(x.clone()),
        _ => None,
    }
}
