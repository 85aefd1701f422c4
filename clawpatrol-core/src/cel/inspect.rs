//! Static facts about a compiled condition, for tooling (`clawpatrol lint`).

use super::ir::{BinOp, Comp, Lit, Node};
use crate::facts::FieldId;

/// A literal `matches()` pattern and the field it is applied to, when that is a fact field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiteralRegex {
    /// The field the pattern is matched against (`None` for other expressions).
    pub field: Option<FieldId>,
    /// The pattern text.
    pub pattern: String,
}

/// Calls `f` on every node of the tree, parents first.
fn walk<'a>(n: &'a Node, f: &mut dyn FnMut(&'a Node)) {
    f(n);
    match n {
        Node::Const(_) | Node::Field(_) | Node::Var(_) | Node::HasField(_) => {}
        Node::Not(a) | Node::Neg(a) | Node::Size(a) | Node::Conv(_, a) => walk(a, f),
        Node::Select(a, _) | Node::Has(a, _) | Node::InSet(a, _) | Node::MatchesConst(a, _) => {
            walk(a, f)
        }
        Node::And(a, b)
        | Node::Or(a, b)
        | Node::Bin(_, a, b)
        | Node::Str(_, a, b)
        | Node::Matches(a, b)
        | Node::Sets(_, a, b) => {
            walk(a, f);
            walk(b, f);
        }
        Node::Cond(a, b, c) => {
            walk(a, f);
            walk(b, f);
            walk(c, f);
        }
        Node::List(items) => items.iter().for_each(|i| walk(i, f)),
        Node::Map(entries) => entries.iter().for_each(|(k, v)| {
            walk(k, f);
            walk(v, f);
        }),
        Node::Comp(c) => walk_comp(c, f),
    }
}

fn walk_comp<'a>(c: &'a Comp, f: &mut dyn FnMut(&'a Node)) {
    walk(&c.range, f);
    if let Some(p) = &c.pred {
        walk(p, f);
    }
    if let Some(t) = &c.transform {
        walk(t, f);
    }
}

/// Every literal `matches()` pattern of the tree.
pub(crate) fn literal_regexes(root: &Node) -> Vec<LiteralRegex> {
    let mut out = Vec::new();
    walk(root, &mut |n| {
        if let Node::MatchesConst(x, re) = n {
            out.push(LiteralRegex {
                field: match &**x {
                    Node::Field(f) => Some(*f),
                    _ => None,
                },
                pattern: re.as_str().to_string(),
            });
        }
    });
    out
}

/// Every string literal compared with `field` by `==`, `!=` or `in [...]` (after the literal
/// lower-casing of reference §2.4).
pub(crate) fn compared_literals(root: &Node, field: FieldId) -> Vec<String> {
    let mut out = Vec::new();
    walk(root, &mut |n| match n {
        Node::Bin(BinOp::Eq | BinOp::Ne, a, b) => {
            for (x, y) in [(a, b), (b, a)] {
                if let (Node::Field(f), Node::Const(Lit::Str(s))) = (&**x, &**y) {
                    if *f == field {
                        out.push(s.clone());
                    }
                }
            }
        }
        Node::InSet(x, set) => {
            if matches!(&**x, Node::Field(f) if *f == field) {
                out.extend(set.iter().map(|s| s.to_string()));
            }
        }
        Node::Bin(BinOp::In, x, list) => {
            if let (Node::Field(f), Node::List(items)) = (&**x, &**list) {
                if *f == field {
                    out.extend(items.iter().filter_map(|i| match i {
                        Node::Const(Lit::Str(s)) => Some(s.clone()),
                        _ => None,
                    }));
                }
            }
        }
        _ => {}
    });
    out
}
