//! The three-valued evaluator over the compiled IR (reference §2.6).

use std::cmp::Ordering;
use std::rc::Rc;

use regex::Regex;

use super::ir::{BinOp, Comp, CompKind, Conv, Lit, Node, SetOp, StrOp};
use super::value::{fmt_double, json_val, val_cmp, val_eq, Val};
use crate::facts::{Activation, FieldId, FieldValue, UnknownCause};

/// Why evaluation produced no value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stop {
    /// Depends on a field that is unknown for this action.
    Unknown(UnknownCause),
    /// A runtime error.
    Error(String),
}

type R<'a> = Result<Val<'a>, Stop>;

/// Evaluation state: the activation and the comprehension variables.
pub(crate) struct Ctx<'a> {
    pub(crate) act: &'a dyn Activation,
    pub(crate) vars: Vec<Val<'a>>,
}

fn err<T>(msg: impl Into<String>) -> Result<T, Stop> {
    Err(Stop::Error(msg.into()))
}

fn no_overload<T>(op: &str, a: &Val<'_>, b: &Val<'_>) -> Result<T, Stop> {
    err(format!(
        "no such overload: {} {op} {}",
        a.type_name(),
        b.type_name()
    ))
}

/// Combines two stops: unknown beats error, unknown causes merge, the first error wins.
fn merge(a: Stop, b: Stop) -> Stop {
    match (a, b) {
        (Stop::Unknown(x), Stop::Unknown(y)) => Stop::Unknown(x.union(y)),
        (u @ Stop::Unknown(_), _) | (_, u @ Stop::Unknown(_)) => u,
        (e, _) => e,
    }
}

fn both<'a>(a: R<'a>, b: R<'a>) -> Result<(Val<'a>, Val<'a>), Stop> {
    match (a, b) {
        (Ok(x), Ok(y)) => Ok((x, y)),
        (Err(x), Err(y)) => Err(merge(x, y)),
        (Err(x), _) | (_, Err(x)) => Err(x),
    }
}

/// The value of one fact field.
pub(crate) fn field_val(act: &dyn Activation, f: FieldId) -> R<'_> {
    match act.field(f) {
        FieldValue::Str(s) => Ok(Val::Str(s)),
        FieldValue::Int(i) => Ok(Val::Int(i)),
        FieldValue::StrList(l) => Ok(Val::StrList(l)),
        FieldValue::StrMap(m) => Ok(Val::StrMap(m)),
        FieldValue::StrListMap(m) => Ok(Val::StrListMap(m)),
        FieldValue::Json(j) => Ok(json_val(j)),
        FieldValue::Unknown(c) => Err(Stop::Unknown(c)),
        FieldValue::Absent => err(format!("no such attribute: {}", f.path())),
    }
}

fn lit(l: &Lit) -> Val<'_> {
    match l {
        Lit::Null => Val::Null,
        Lit::Bool(b) => Val::Bool(*b),
        Lit::Int(i) => Val::Int(*i),
        Lit::Uint(u) => Val::Uint(*u),
        Lit::Double(d) => Val::Double(*d),
        Lit::Str(s) => Val::Str(s),
        Lit::Bytes(b) => Val::Bytes(Rc::from(b.as_slice())),
    }
}

fn as_bool(r: R<'_>, op: &str) -> Result<bool, Stop> {
    match r? {
        Val::Bool(b) => Ok(b),
        v if op == "condition" => err(format!("condition yielded {}, not bool", v.type_name())),
        v => err(format!("no such overload: {op} on {}", v.type_name())),
    }
}

/// Evaluates `n`.
pub(crate) fn eval<'a>(n: &'a Node, cx: &mut Ctx<'a>) -> R<'a> {
    match n {
        Node::Const(l) => Ok(lit(l)),
        Node::Field(f) => field_val(cx.act, *f),
        Node::Var(i) => match cx.vars.get(*i) {
            Some(v) => Ok(v.clone()),
            None => err("unbound comprehension variable"),
        },
        Node::Not(a) => Ok(Val::Bool(!eval_bool(a, cx, "!")?)),
        Node::Neg(a) => match eval(a, cx)? {
            Val::Int(i) => match i.checked_neg() {
                Some(v) => Ok(Val::Int(v)),
                None => err("int overflow"),
            },
            Val::Double(d) => Ok(Val::Double(-d)),
            v => err(format!("no such overload: -{}", v.type_name())),
        },
        Node::And(..) | Node::Or(..) => eval_bool(n, cx, "&&").map(Val::Bool),
        Node::Cond(c, t, f) => {
            if as_bool(eval(c, cx), "?:")? {
                eval(t, cx)
            } else {
                eval(f, cx)
            }
        }
        Node::Bin(op, l, r) => {
            let (a, b) = both(eval(l, cx), eval(r, cx))?;
            if let (BinOp::Eq | BinOp::Ne, Some(x), Some(y)) = (op, a.as_str(), b.as_str()) {
                return Ok(Val::Bool((x == y) == (*op == BinOp::Eq)));
            }
            binop(*op, a, b)
        }
        Node::InSet(x, set) => {
            let v = eval(x, cx)?;
            Ok(Val::Bool(match v.as_str() {
                Some(s) => set.binary_search_by(|e| (**e).cmp(s)).is_ok(),
                None => false,
            }))
        }
        Node::Select(x, name) => {
            let v = eval(x, cx)?;
            select(v, name)
        }
        Node::Has(x, name) => {
            let v = eval(x, cx)?;
            has(v, name)
        }
        Node::Size(x) => size(eval(x, cx)?),
        Node::Matches(x, p) => {
            let (a, b) = both(eval(x, cx), eval(p, cx))?;
            matches_dyn(a, b)
        }
        Node::HasField(f) => field_val(cx.act, *f).map(|_| Val::Bool(true)),
        Node::Str(op, recv, arg) => {
            let (a, b) = both(eval(recv, cx), eval(arg, cx))?;
            let (Some(s), Some(t)) = (a.as_str(), b.as_str()) else {
                return no_overload(str_op_name(*op), &a, &b);
            };
            Ok(Val::Bool(match op {
                StrOp::Contains => s.contains(t),
                StrOp::StartsWith => s.starts_with(t),
                StrOp::EndsWith => s.ends_with(t),
            }))
        }
        Node::MatchesConst(x, re) => {
            let v = eval(x, cx)?;
            match v.as_str() {
                Some(s) => Ok(Val::Bool(re.is_match(s))),
                None => err(format!(
                    "no such overload: {}.matches(string)",
                    v.type_name()
                )),
            }
        }
        Node::Conv(c, x) => convert(*c, eval(x, cx)?),

        Node::Comp(c) => comprehension(c, cx),
        Node::List(items) => eval_list(items, cx),
        Node::Map(entries) => eval_map(entries, cx),
        Node::Sets(op, a, b) => {
            let (a, b) = both(eval(a, cx), eval(b, cx))?;
            sets(*op, a, b)
        }
    }
}

#[inline(never)]
fn eval_list<'a>(items: &'a [Node], cx: &mut Ctx<'a>) -> R<'a> {
    let mut out = Vec::with_capacity(items.len());
    let mut stop: Option<Stop> = None;
    for it in items {
        match eval(it, cx) {
            Ok(v) => out.push(v),
            Err(e) => stop = Some(stop.map_or(e.clone(), |s| merge(s, e))),
        }
    }
    match stop {
        Some(s) => Err(s),
        None => Ok(Val::List(Rc::new(out))),
    }
}

#[inline(never)]
fn eval_map<'a>(entries: &'a [(Node, Node)], cx: &mut Ctx<'a>) -> R<'a> {
    let mut out: Vec<(Val<'a>, Val<'a>)> = Vec::with_capacity(entries.len());
    let mut stop: Option<Stop> = None;
    for (k, v) in entries {
        match both(eval(k, cx), eval(v, cx)) {
            Ok((k, v)) => {
                if !matches!(k, Val::Int(_) | Val::Uint(_) | Val::Bool(_)) && k.as_str().is_none() {
                    return err(format!("unsupported key type: {}", k.type_name()));
                }
                if out.iter().any(|(e, _)| val_eq(e, &k)) {
                    return err(format!("duplicate map key: {}", display(&k)));
                }
                out.push((k, v));
            }
            Err(e) => stop = Some(stop.map_or(e.clone(), |s| merge(s, e))),
        }
    }
    match stop {
        Some(s) => Err(s),
        None => Ok(Val::Map(Rc::new(out))),
    }
}

#[inline(never)]
fn sets<'a>(op: SetOp, a: Val<'a>, b: Val<'a>) -> R<'a> {
    let (Some(na), Some(nb)) = (a.list_len(), b.list_len()) else {
        return no_overload("sets", &a, &b);
    };
    let contains = |x: &Val<'a>, nx: usize, y: &Val<'a>, ny: usize| {
        (0..ny).all(|j| {
            y.list_get(j)
                .is_some_and(|e| (0..nx).any(|i| x.list_get(i).is_some_and(|f| val_eq(&e, &f))))
        })
    };
    Ok(Val::Bool(match op {
        SetOp::Contains => contains(&a, na, &b, nb),
        SetOp::Equivalent => contains(&a, na, &b, nb) && contains(&b, nb, &a, na),
        SetOp::Intersects => (0..na).any(|i| {
            a.list_get(i)
                .is_some_and(|e| (0..nb).any(|j| b.list_get(j).is_some_and(|f| val_eq(&e, &f))))
        }),
    }))
}

#[inline(never)]
fn select<'a>(v: Val<'a>, name: &str) -> R<'a> {
    match v.map_get(&Val::Str(name)) {
        Ok(Some(found)) => Ok(found),
        Ok(None) => err(format!("no such key: {name}")),
        Err(()) => err(format!(
            "type {} does not support field selection",
            v.type_name()
        )),
    }
}

#[inline(never)]
fn has<'a>(v: Val<'a>, name: &str) -> R<'a> {
    match v.map_get(&Val::Str(name)) {
        Ok(found) => Ok(Val::Bool(found.is_some())),
        Err(()) => err(format!(
            "type {} does not support field selection",
            v.type_name()
        )),
    }
}

#[inline(never)]
fn size(v: Val<'_>) -> R<'_> {
    let n = match &v {
        Val::Bytes(b) => b.len(),
        _ => match v.as_str() {
            Some(s) => s.chars().count(),
            None => match v.list_len().or_else(|| v.map_len()) {
                Some(n) => n,
                None => return err(format!("no such overload: size({})", v.type_name())),
            },
        },
    };
    Ok(Val::Int(i64::try_from(n).unwrap_or(i64::MAX)))
}

#[inline(never)]
fn matches_dyn<'a>(a: Val<'a>, b: Val<'a>) -> R<'a> {
    let (Some(s), Some(pat)) = (a.as_str(), b.as_str()) else {
        return no_overload("matches", &a, &b);
    };
    match Regex::new(pat) {
        Ok(re) => Ok(Val::Bool(re.is_match(s))),
        Err(e) => err(format!(
            "invalid regular expression: {}",
            e.to_string().lines().last().unwrap_or("").trim()
        )),
    }
}

fn str_op_name(op: StrOp) -> &'static str {
    match op {
        StrOp::Contains => "contains",
        StrOp::StartsWith => "startsWith",
        StrOp::EndsWith => "endsWith",
    }
}

/// A short rendering of a value for error messages.
fn display(v: &Val<'_>) -> String {
    match v {
        Val::Int(i) => i.to_string(),
        Val::Uint(u) => format!("{u}u"),
        Val::Double(d) => fmt_double(*d),
        Val::Bool(b) => b.to_string(),
        Val::Null => "null".to_string(),
        _ => match v.as_str() {
            Some(s) => s.to_string(),
            None => v.type_name().to_string(),
        },
    }
}

#[inline(never)]
fn comprehension<'a>(c: &'a Comp, cx: &mut Ctx<'a>) -> R<'a> {
    let range = eval(&c.range, cx)?;
    let keys = if range.list_len().is_some() {
        None
    } else {
        match range.map_keys() {
            Some(k) => Some(k),
            None => return err(format!("cannot iterate over {}", range.type_name())),
        }
    };
    let n = range
        .list_len()
        .unwrap_or_else(|| keys.as_ref().map_or(0, Vec::len));
    cx.vars.truncate(c.var);
    cx.vars.push(Val::Null);
    let out = iterate(c, cx, &range, keys.as_deref(), n);
    cx.vars.truncate(c.var);
    out
}

fn iterate<'a>(
    c: &'a Comp,
    cx: &mut Ctx<'a>,
    range: &Val<'a>,
    keys: Option<&[Val<'a>]>,
    n: usize,
) -> R<'a> {
    let mut pending: Option<Stop> = None;
    let mut count = 0usize;
    let mut mapped: Vec<Val<'a>> = Vec::new();
    for i in 0..n {
        let item = match keys {
            Some(k) => k.get(i).cloned(),
            None => range.list_get(i),
        };
        let Some(item) = item else {
            return err("comprehension index out of range");
        };
        if let Some(slot) = cx.vars.get_mut(c.var) {
            *slot = item;
        }
        let p = c.pred.as_ref().map(|p| as_bool(eval(p, cx), "predicate"));
        match c.kind {
            CompKind::Exists | CompKind::All => {
                let absorb = c.kind == CompKind::Exists;
                match p {
                    Some(Ok(b)) if b == absorb => return Ok(Val::Bool(absorb)),
                    Some(Ok(_)) | None => {}
                    Some(Err(e)) => pending = Some(pending.map_or(e.clone(), |s| merge(s, e))),
                }
            }
            CompKind::ExistsOne => match p {
                Some(Ok(true)) => count += 1,
                Some(Ok(false)) | None => {}
                Some(Err(e)) => return Err(e),
            },
            CompKind::Map => {
                let keep = match p {
                    Some(r) => r?,
                    None => true,
                };
                if keep {
                    let v = match &c.transform {
                        Some(t) => eval(t, cx)?,
                        None => return err("map without transform"),
                    };
                    mapped.push(v);
                }
            }
        }
    }
    match c.kind {
        CompKind::Exists | CompKind::All => match pending {
            Some(s) => Err(s),
            None => Ok(Val::Bool(c.kind == CompKind::All)),
        },
        CompKind::ExistsOne => Ok(Val::Bool(count == 1)),
        CompKind::Map => Ok(Val::List(Rc::new(mapped))),
    }
}

fn arith_int(op: BinOp, a: i64, b: i64) -> R<'static> {
    let r = match op {
        BinOp::Add => a.checked_add(b),
        BinOp::Sub => a.checked_sub(b),
        BinOp::Mul => a.checked_mul(b),
        BinOp::Div if b == 0 => return err("division by zero"),
        BinOp::Div => a.checked_div(b),
        BinOp::Mod if b == 0 => return err("modulus by zero"),
        BinOp::Mod => a.checked_rem(b),
        _ => None,
    };
    r.map(Val::Int)
        .ok_or_else(|| Stop::Error("int overflow".into()))
}

fn arith_uint(op: BinOp, a: u64, b: u64) -> R<'static> {
    let r = match op {
        BinOp::Add => a.checked_add(b),
        BinOp::Sub => a.checked_sub(b),
        BinOp::Mul => a.checked_mul(b),
        BinOp::Div if b == 0 => return err("division by zero"),
        BinOp::Div => a.checked_div(b),
        BinOp::Mod if b == 0 => return err("modulus by zero"),
        BinOp::Mod => a.checked_rem(b),
        _ => None,
    };
    r.map(Val::Uint)
        .ok_or_else(|| Stop::Error("uint overflow".into()))
}

#[inline(never)]
fn binop<'a>(op: BinOp, a: Val<'a>, b: Val<'a>) -> R<'a> {
    match op {
        BinOp::Eq => Ok(Val::Bool(val_eq(&a, &b))),
        BinOp::Ne => Ok(Val::Bool(!val_eq(&a, &b))),
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => match val_cmp(&a, &b) {
            Ok(None) => Ok(Val::Bool(false)),
            Ok(Some(o)) => Ok(Val::Bool(match op {
                BinOp::Lt => o == Ordering::Less,
                BinOp::Le => o != Ordering::Greater,
                BinOp::Gt => o == Ordering::Greater,
                _ => o != Ordering::Less,
            })),
            Err(()) => no_overload(op.symbol(), &a, &b),
        },
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => match (&a, &b) {
            (Val::Int(x), Val::Int(y)) => arith_int(op, *x, *y),
            (Val::Uint(x), Val::Uint(y)) => arith_uint(op, *x, *y),
            (Val::Double(x), Val::Double(y)) => match op {
                BinOp::Add => Ok(Val::Double(x + y)),
                BinOp::Sub => Ok(Val::Double(x - y)),
                BinOp::Mul => Ok(Val::Double(x * y)),
                BinOp::Div => Ok(Val::Double(x / y)),
                _ => no_overload(op.symbol(), &a, &b),
            },
            (Val::Bytes(x), Val::Bytes(y)) if op == BinOp::Add => {
                let mut v = x.to_vec();
                v.extend_from_slice(y);
                Ok(Val::Bytes(Rc::from(v)))
            }
            _ if op == BinOp::Add => {
                if let (Some(x), Some(y)) = (a.as_str(), b.as_str()) {
                    let mut s = String::with_capacity(x.len() + y.len());
                    s.push_str(x);
                    s.push_str(y);
                    return Ok(Val::OwnedStr(Rc::from(s)));
                }
                if let (Some(n), Some(m)) = (a.list_len(), b.list_len()) {
                    let mut out = Vec::with_capacity(n + m);
                    out.extend((0..n).filter_map(|i| a.list_get(i)));
                    out.extend((0..m).filter_map(|i| b.list_get(i)));
                    return Ok(Val::List(Rc::new(out)));
                }
                no_overload(op.symbol(), &a, &b)
            }
            _ => no_overload(op.symbol(), &a, &b),
        },
        BinOp::In => {
            if let Some(n) = b.list_len() {
                return Ok(Val::Bool(
                    (0..n).any(|i| b.list_get(i).is_some_and(|e| val_eq(&a, &e))),
                ));
            }
            match b.map_get(&a) {
                Ok(found) => Ok(Val::Bool(found.is_some())),
                Err(()) => no_overload("in", &a, &b),
            }
        }
        BinOp::Index => {
            if let Some(n) = a.list_len() {
                let idx = match b {
                    Val::Int(i) => i128::from(i),
                    Val::Uint(u) => i128::from(u),
                    Val::Double(d) if d.fract() == 0.0 && d.abs() < 1e18 => d as i128,
                    _ => return no_overload("[]", &a, &b),
                };
                return match usize::try_from(idx).ok().filter(|i| *i < n) {
                    Some(i) => a
                        .list_get(i)
                        .ok_or_else(|| Stop::Error(format!("index out of bounds: {idx}"))),
                    None => err(format!("index out of bounds: {idx}")),
                };
            }
            match a.map_get(&b) {
                Ok(Some(v)) => Ok(v),
                Ok(None) => err(format!("no such key: {}", display(&b))),
                Err(()) => no_overload("[]", &a, &b),
            }
        }
    }
}

const I64_LIMIT: f64 = 9_223_372_036_854_775_808.0;
const U64_LIMIT: f64 = 18_446_744_073_709_551_616.0;

#[inline(never)]
fn convert(c: Conv, v: Val<'_>) -> R<'_> {
    let bad = |v: &Val<'_>, to: &str| -> R<'static> {
        err(format!("no such overload: {to}({})", v.type_name()))
    };
    match c {
        Conv::Int => match v {
            Val::Int(i) => Ok(Val::Int(i)),
            Val::Uint(u) => i64::try_from(u)
                .map(Val::Int)
                .map_err(|_| Stop::Error("int overflow".into())),
            Val::Double(d) if d.is_finite() && d > -I64_LIMIT && d < I64_LIMIT => {
                Ok(Val::Int(d.trunc() as i64))
            }
            Val::Double(_) => err("double out of int range"),
            _ => match v.as_str() {
                Some(s) => s
                    .parse::<i64>()
                    .map(Val::Int)
                    .map_err(|_| Stop::Error(format!("cannot convert string {s:?} to int"))),
                None => bad(&v, "int"),
            },
        },
        Conv::Uint => match v {
            Val::Uint(u) => Ok(Val::Uint(u)),
            Val::Int(i) => u64::try_from(i)
                .map(Val::Uint)
                .map_err(|_| Stop::Error("uint overflow".into())),
            Val::Double(d) if d.is_finite() && d > -1.0 && d < U64_LIMIT => {
                Ok(Val::Uint(d.trunc() as u64))
            }
            Val::Double(_) => err("double out of uint range"),
            _ => match v.as_str() {
                Some(s) => s
                    .parse::<u64>()
                    .map(Val::Uint)
                    .map_err(|_| Stop::Error(format!("cannot convert string {s:?} to uint"))),
                None => bad(&v, "uint"),
            },
        },
        Conv::Double => match v {
            Val::Double(d) => Ok(Val::Double(d)),
            Val::Int(i) => Ok(Val::Double(i as f64)),
            Val::Uint(u) => Ok(Val::Double(u as f64)),
            _ => match v.as_str() {
                Some(s) => s
                    .parse::<f64>()
                    .map(Val::Double)
                    .map_err(|_| Stop::Error(format!("cannot convert string {s:?} to double"))),
                None => bad(&v, "double"),
            },
        },
        Conv::String => match v {
            Val::Str(_) | Val::OwnedStr(_) => Ok(v),
            Val::Int(i) => Ok(Val::OwnedStr(Rc::from(i.to_string()))),
            Val::Uint(u) => Ok(Val::OwnedStr(Rc::from(u.to_string()))),
            Val::Double(d) => Ok(Val::OwnedStr(Rc::from(fmt_double(d)))),
            Val::Bool(b) => Ok(Val::Str(if b { "true" } else { "false" })),
            Val::Bytes(ref b) => match std::str::from_utf8(b) {
                Ok(s) => Ok(Val::OwnedStr(Rc::from(s))),
                Err(_) => err("invalid utf-8 in bytes"),
            },
            _ => bad(&v, "string"),
        },
        Conv::Bool => match v {
            Val::Bool(b) => Ok(Val::Bool(b)),
            _ => match v.as_str() {
                Some("1" | "t" | "T" | "TRUE" | "true" | "True") => Ok(Val::Bool(true)),
                Some("0" | "f" | "F" | "FALSE" | "false" | "False") => Ok(Val::Bool(false)),
                Some(s) => err(format!("cannot convert string {s:?} to bool")),
                None => bad(&v, "bool"),
            },
        },
    }
}

/// `&&`/`||` over booleans with CEL's commutative absorption (see [`logic`]).
fn logic_bool(a: Result<bool, Stop>, b: Result<bool, Stop>, absorb: bool) -> Result<bool, Stop> {
    match (a, b) {
        (Ok(x), _) | (_, Ok(x)) if x == absorb => Ok(absorb),
        (Ok(_), Ok(_)) => Ok(!absorb),
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
        (Err(x), Err(y)) => Err(merge(x, y)),
    }
}

/// A string fact field's value, when the field is one for this action: `Ok(None)` means
/// "not a plain string here, take the general path".
fn str_field<'a>(cx: &Ctx<'a>, n: &Node) -> Result<Option<&'a str>, Stop> {
    let Node::Field(f) = n else { return Ok(None) };
    match cx.act.field(*f) {
        FieldValue::Str(s) => Ok(Some(s)),
        FieldValue::Unknown(c) => Err(Stop::Unknown(c)),
        _ => Ok(None),
    }
}

/// Evaluates a boolean node. Equivalent to `eval` followed by a bool check, with fast paths
/// for the shapes most conditions are made of (a string field compared with a literal, a
/// field in a literal set, a literal regex on a field), which skip building values.
pub(crate) fn eval_bool<'a>(n: &'a Node, cx: &mut Ctx<'a>, op: &str) -> Result<bool, Stop> {
    match n {
        Node::And(l, r) => {
            let a = eval_bool(l, cx, "&&");
            if let Ok(false) = a {
                return Ok(false);
            }
            logic_bool(a, eval_bool(r, cx, "&&"), false)
        }
        Node::Or(l, r) => {
            let a = eval_bool(l, cx, "||");
            if let Ok(true) = a {
                return Ok(true);
            }
            logic_bool(a, eval_bool(r, cx, "||"), true)
        }
        Node::Not(a) => eval_bool(a, cx, "!").map(|b| !b),
        Node::Bin(bop @ (BinOp::Eq | BinOp::Ne), l, r) => {
            if let Node::Const(Lit::Str(lit)) = &**r {
                if let Some(s) = str_field(cx, l)? {
                    return Ok((s == lit) == (*bop == BinOp::Eq));
                }
            }
            general_bool(n, cx, op)
        }
        Node::InSet(x, set) => match str_field(cx, x)? {
            Some(s) => Ok(set.binary_search_by(|e| (**e).cmp(s)).is_ok()),
            None => general_bool(n, cx, op),
        },
        Node::Str(sop, recv, arg) => {
            if let Node::Const(Lit::Str(t)) = &**arg {
                if let Some(s) = str_field(cx, recv)? {
                    return Ok(match sop {
                        StrOp::Contains => s.contains(t.as_str()),
                        StrOp::StartsWith => s.starts_with(t.as_str()),
                        StrOp::EndsWith => s.ends_with(t.as_str()),
                    });
                }
            }
            general_bool(n, cx, op)
        }
        Node::MatchesConst(x, re) => match str_field(cx, x)? {
            Some(s) => Ok(re.is_match(s)),
            None => general_bool(n, cx, op),
        },
        _ => general_bool(n, cx, op),
    }
}

fn general_bool<'a>(n: &'a Node, cx: &mut Ctx<'a>, op: &str) -> Result<bool, Stop> {
    as_bool(eval(n, cx), op)
}
