//! Runtime values of the evaluator: borrowed from the facts and the program where possible.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::rc::Rc;

/// A CEL value during evaluation.
#[derive(Debug, Clone)]
pub(crate) enum Val<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Double(f64),
    Str(&'a str),
    OwnedStr(Rc<str>),
    Bytes(Rc<[u8]>),
    StrList(&'a [String]),
    StrMap(&'a BTreeMap<String, String>),
    StrListMap(&'a BTreeMap<String, Vec<String>>),
    /// A JSON array or object (JSON scalars are converted to the scalar variants).
    Json(&'a serde_json::Value),
    List(Rc<Vec<Val<'a>>>),
    Map(Rc<Vec<(Val<'a>, Val<'a>)>>),
}

/// The CEL value of a JSON value: numbers are doubles, as with protobuf `Value`.
pub(crate) fn json_val(v: &serde_json::Value) -> Val<'_> {
    match v {
        serde_json::Value::Null => Val::Null,
        serde_json::Value::Bool(b) => Val::Bool(*b),
        serde_json::Value::Number(n) => Val::Double(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => Val::Str(s),
        serde_json::Value::Array(_) | serde_json::Value::Object(_) => Val::Json(v),
    }
}

impl<'a> Val<'a> {
    /// The CEL type name of the value, for error messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Val::Null => "null_type",
            Val::Bool(_) => "bool",
            Val::Int(_) => "int",
            Val::Uint(_) => "uint",
            Val::Double(_) => "double",
            Val::Str(_) | Val::OwnedStr(_) => "string",
            Val::Bytes(_) => "bytes",
            Val::StrList(_) | Val::List(_) => "list",
            Val::StrMap(_) | Val::StrListMap(_) | Val::Map(_) => "map",
            Val::Json(serde_json::Value::Array(_)) => "list",
            Val::Json(_) => "map",
        }
    }

    /// The string, if the value is one.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) => Some(s),
            Val::OwnedStr(s) => Some(s),
            _ => None,
        }
    }

    /// The number of elements of a list, or `None` for non-lists.
    pub(crate) fn list_len(&self) -> Option<usize> {
        match self {
            Val::StrList(l) => Some(l.len()),
            Val::List(l) => Some(l.len()),
            Val::Json(serde_json::Value::Array(a)) => Some(a.len()),
            _ => None,
        }
    }

    /// Element `i` of a list (the caller checked the bounds).
    pub(crate) fn list_get(&self, i: usize) -> Option<Val<'a>> {
        match self {
            Val::StrList(l) => l.get(i).map(|s| Val::Str(s)),
            Val::List(l) => l.get(i).cloned(),
            Val::Json(serde_json::Value::Array(a)) => a.get(i).map(json_val),
            _ => None,
        }
    }

    /// The number of entries of a map, or `None` for non-maps.
    pub(crate) fn map_len(&self) -> Option<usize> {
        match self {
            Val::StrMap(m) => Some(m.len()),
            Val::StrListMap(m) => Some(m.len()),
            Val::Map(m) => Some(m.len()),
            Val::Json(serde_json::Value::Object(o)) => Some(o.len()),
            _ => None,
        }
    }

    /// Looks `key` up in a map: `Ok(None)` when missing, `Err` when the value is not a map.
    pub(crate) fn map_get(&self, key: &Val<'_>) -> Result<Option<Val<'a>>, ()> {
        match self {
            Val::StrMap(m) => Ok(key.as_str().and_then(|k| m.get(k)).map(|v| Val::Str(v))),
            Val::StrListMap(m) => Ok(key.as_str().and_then(|k| m.get(k)).map(|v| Val::StrList(v))),
            Val::Json(serde_json::Value::Object(o)) => {
                Ok(key.as_str().and_then(|k| o.get(k)).map(json_val))
            }
            Val::Map(m) => Ok(m
                .iter()
                .find(|(k, _)| val_eq(k, key))
                .map(|(_, v)| v.clone())),
            _ => Err(()),
        }
    }

    /// The keys of a map, in iteration order, or `None` for non-maps.
    pub(crate) fn map_keys(&self) -> Option<Vec<Val<'a>>> {
        match self {
            Val::StrMap(m) => Some(m.keys().map(|k| Val::Str(k)).collect()),
            Val::StrListMap(m) => Some(m.keys().map(|k| Val::Str(k)).collect()),
            Val::Json(serde_json::Value::Object(o)) => {
                Some(o.keys().map(|k| Val::Str(k)).collect())
            }
            Val::Map(m) => Some(m.iter().map(|(k, _)| k.clone()).collect()),
            _ => None,
        }
    }
}

/// Numeric view of a value, for cross-type comparison.
#[derive(Clone, Copy)]
enum Num {
    I(i64),
    U(u64),
    D(f64),
}

fn num(v: &Val<'_>) -> Option<Num> {
    match v {
        Val::Int(i) => Some(Num::I(*i)),
        Val::Uint(u) => Some(Num::U(*u)),
        Val::Double(d) => Some(Num::D(*d)),
        _ => None,
    }
}

/// Compares an integer with a double exactly; `None` when the double is NaN.
fn cmp_i_d(i: i128, d: f64) -> Option<Ordering> {
    if d.is_nan() {
        return None;
    }
    // Doubles beyond the i128 range order trivially; otherwise compare via the integral part.
    if d >= 1.7e38 {
        return Some(Ordering::Less);
    }
    if d <= -1.7e38 {
        return Some(Ordering::Greater);
    }
    let t = d.trunc();
    let ti = t as i128;
    match i.cmp(&ti) {
        Ordering::Equal => {
            let frac = d - t;
            if frac > 0.0 {
                Some(Ordering::Less)
            } else if frac < 0.0 {
                Some(Ordering::Greater)
            } else {
                Some(Ordering::Equal)
            }
        }
        o => Some(o),
    }
}

fn cmp_num(a: Num, b: Num) -> Option<Ordering> {
    match (a, b) {
        (Num::I(x), Num::I(y)) => Some(x.cmp(&y)),
        (Num::U(x), Num::U(y)) => Some(x.cmp(&y)),
        (Num::I(x), Num::U(y)) => Some(i128::from(x).cmp(&i128::from(y))),
        (Num::U(x), Num::I(y)) => Some(i128::from(x).cmp(&i128::from(y))),
        (Num::D(x), Num::D(y)) => x.partial_cmp(&y),
        (Num::I(x), Num::D(y)) => cmp_i_d(i128::from(x), y),
        (Num::U(x), Num::D(y)) => cmp_i_d(i128::from(x), y),
        (Num::D(x), Num::I(y)) => cmp_i_d(i128::from(y), x).map(Ordering::reverse),
        (Num::D(x), Num::U(y)) => cmp_i_d(i128::from(y), x).map(Ordering::reverse),
    }
}

/// CEL equality (heterogeneous: values of different kinds are unequal, numbers compare by value).
pub(crate) fn val_eq(a: &Val<'_>, b: &Val<'_>) -> bool {
    if let (Some(x), Some(y)) = (num(a), num(b)) {
        return cmp_num(x, y) == Some(Ordering::Equal);
    }
    if let (Some(x), Some(y)) = (a.as_str(), b.as_str()) {
        return x == y;
    }
    match (a, b) {
        (Val::Null, Val::Null) => true,
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Bytes(x), Val::Bytes(y)) => x == y,
        _ => {
            if let (Some(n), Some(m)) = (a.list_len(), b.list_len()) {
                return n == m
                    && (0..n).all(|i| match (a.list_get(i), b.list_get(i)) {
                        (Some(x), Some(y)) => val_eq(&x, &y),
                        _ => false,
                    });
            }
            if let (Some(n), Some(m)) = (a.map_len(), b.map_len()) {
                if n != m {
                    return false;
                }
                let Some(keys) = a.map_keys() else {
                    return false;
                };
                return keys.iter().all(|k| match (a.map_get(k), b.map_get(k)) {
                    (Ok(Some(x)), Ok(Some(y))) => val_eq(&x, &y),
                    _ => false,
                });
            }
            false
        }
    }
}

/// CEL ordering: `Ok(None)` when incomparable numbers (NaN), `Err` for no overload.
pub(crate) fn val_cmp(a: &Val<'_>, b: &Val<'_>) -> Result<Option<Ordering>, ()> {
    if let (Some(x), Some(y)) = (num(a), num(b)) {
        return Ok(cmp_num(x, y));
    }
    if let (Some(x), Some(y)) = (a.as_str(), b.as_str()) {
        return Ok(Some(x.cmp(y)));
    }
    match (a, b) {
        (Val::Bool(x), Val::Bool(y)) => Ok(Some(x.cmp(y))),
        (Val::Bytes(x), Val::Bytes(y)) => Ok(Some(x.cmp(y))),
        _ => Err(()),
    }
}

/// Formats a double as cel-go's `string()` does (shortest round-trip form).
pub(crate) fn fmt_double(d: f64) -> String {
    if d.is_nan() {
        "NaN".to_string()
    } else if d.is_infinite() {
        if d > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else if d == d.trunc() && d.abs() < 1e21 {
        format!("{d:.0}")
    } else {
        format!("{d}")
    }
}
