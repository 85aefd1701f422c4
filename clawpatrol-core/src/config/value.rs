//! HCL expressions reduced to the few value shapes a config may hold, each with its span.

use std::ops::Range;

use hcl_edit::expr::{Expression, ObjectKey, TraversalOperator, UnaryOperator};
use hcl_edit::template::Element;
use hcl_edit::Span;

/// A value as written, with its byte range in its file.
#[derive(Debug, Clone)]
pub(crate) struct Val {
    /// What it is.
    pub kind: ValKind,
    /// Where it is.
    pub span: Range<usize>,
}

/// The value shapes of a config.
#[derive(Debug, Clone)]
pub(crate) enum ValKind {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer (including `-n`).
    Int(i64),
    /// A non-integer number.
    Float(f64),
    /// A quoted string; `content_start` is the byte offset of its first character when the
    /// value maps 1:1 onto the source (no escapes).
    Str {
        /// The unescaped text.
        text: String,
        /// Offset of `text[0]` in the file, if 1:1.
        content_start: Option<usize>,
    },
    /// A heredoc without interpolation.
    Heredoc(String),
    /// A string with `${…}` or `%{…}`: not supported.
    Template,
    /// `[a, b]`.
    List(Vec<Val>),
    /// `{ k = v }`: key, key span, value.
    Object(Vec<(String, Range<usize>, Val)>),
    /// `root.attr.attr…`.
    Traversal(Vec<String>),
    /// A bare identifier.
    Var(String),
    /// Anything else (function call, operator, conditional, …), named.
    Other(&'static str),
}

impl Val {
    /// The string content of a quoted string or heredoc.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            ValKind::Str { text, .. } | ValKind::Heredoc(text) => Some(text),
            _ => None,
        }
    }

    /// A short name of the shape, for "expected X, got Y" messages.
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            ValKind::Null => "null",
            ValKind::Bool(_) => "a bool",
            ValKind::Int(_) => "an integer",
            ValKind::Float(_) => "a number",
            ValKind::Str { .. } | ValKind::Heredoc(_) => "a string",
            ValKind::Template => "a string template",
            ValKind::List(_) => "a list",
            ValKind::Object(_) => "an object",
            ValKind::Traversal(_) => "a reference",
            ValKind::Var(_) => "a bare name",
            ValKind::Other(what) => what,
        }
    }
}

fn span_of(e: &impl Span) -> Range<usize> {
    e.span().unwrap_or(0..0)
}

/// Reduces an expression to a [`Val`]; `src` is the file text (to detect escapes).
pub(crate) fn from_expr(expr: &Expression, src: &str) -> Val {
    let span = span_of(expr);
    let kind = match expr {
        Expression::Null(_) => ValKind::Null,
        Expression::Bool(b) => ValKind::Bool(*b.value()),
        Expression::Number(n) => match n.value().as_i64() {
            Some(i) if !n.value().is_f64() => ValKind::Int(i),
            _ => ValKind::Float(n.value().as_f64().unwrap_or(f64::NAN)),
        },
        Expression::String(s) => {
            let text = s.value().to_string();
            let one_to_one = src.get(span.clone()).is_some_and(|raw| {
                raw.len() == text.len() + 2 && raw.get(1..raw.len() - 1) == Some(text.as_str())
            });
            ValKind::Str {
                text,
                content_start: one_to_one.then_some(span.start + 1),
            }
        }
        Expression::StringTemplate(_) => ValKind::Template,
        Expression::HeredocTemplate(h) => {
            let mut text = String::new();
            let mut literal = true;
            for el in h.template.iter() {
                match el {
                    Element::Literal(l) => text.push_str(l.value()),
                    _ => literal = false,
                }
            }
            if literal {
                ValKind::Heredoc(text)
            } else {
                ValKind::Template
            }
        }
        Expression::Array(a) => ValKind::List(a.iter().map(|e| from_expr(e, src)).collect()),
        Expression::Object(o) => ValKind::Object(
            o.iter()
                .map(|(k, v)| {
                    let key = match k {
                        ObjectKey::Ident(i) => i.as_str().to_string(),
                        ObjectKey::Expression(e) => match from_expr(e, src).kind {
                            ValKind::Str { text, .. } => text,
                            ValKind::Var(name) => name,
                            _ => String::new(),
                        },
                    };
                    (key, span_of(k), from_expr(v.expr(), src))
                })
                .collect(),
        ),
        Expression::Parenthesis(p) => return from_expr(p.inner(), src),
        Expression::Variable(v) => ValKind::Var(v.as_str().to_string()),
        Expression::Traversal(t) => {
            let mut parts = Vec::new();
            if let Expression::Variable(v) = &t.expr {
                parts.push(v.as_str().to_string());
                for op in &t.operators {
                    match op.value() {
                        TraversalOperator::GetAttr(a) => parts.push(a.as_str().to_string()),
                        _ => {
                            parts.clear();
                            break;
                        }
                    }
                }
            }
            if parts.is_empty() {
                ValKind::Other("an index or splat expression")
            } else {
                ValKind::Traversal(parts)
            }
        }
        Expression::UnaryOp(u) => {
            let inner = from_expr(&u.expr, src);
            match (u.operator.value(), inner.kind) {
                (UnaryOperator::Neg, ValKind::Int(i)) => ValKind::Int(-i),
                (UnaryOperator::Neg, ValKind::Float(f)) => ValKind::Float(-f),
                (UnaryOperator::Not, ValKind::Bool(b)) => ValKind::Bool(!b),
                _ => ValKind::Other("an operator expression"),
            }
        }
        Expression::BinaryOp(_) => ValKind::Other("an operator expression"),
        Expression::Conditional(_) => ValKind::Other("a conditional expression"),
        Expression::FuncCall(_) => ValKind::Other("a function call"),
        Expression::ForExpr(_) => ValKind::Other("a `for` expression"),
    };
    Val { kind, span }
}
