//! The compiled form of a condition: a typed expression tree with resolved field reads.

use regex::Regex;

use crate::facts::FieldId;

/// A static CEL type, as far as the compiler tracks it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ty {
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Null,
    List(Box<Ty>),
    Map(Box<Ty>, Box<Ty>),
    Dyn,
}

impl Ty {
    /// Whether the type is `int`, `uint` or `double`.
    pub(crate) fn is_numeric(&self) -> bool {
        matches!(self, Ty::Int | Ty::Uint | Ty::Double)
    }
}

impl std::fmt::Display for Ty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ty::Bool => f.write_str("bool"),
            Ty::Int => f.write_str("int"),
            Ty::Uint => f.write_str("uint"),
            Ty::Double => f.write_str("double"),
            Ty::String => f.write_str("string"),
            Ty::Bytes => f.write_str("bytes"),
            Ty::Null => f.write_str("null_type"),
            Ty::List(e) => write!(f, "list({e})"),
            Ty::Map(k, v) => write!(f, "map({k}, {v})"),
            Ty::Dyn => f.write_str("dyn"),
        }
    }
}

/// A scalar literal owned by the program.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lit {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Double(f64),
    Str(String),
    Bytes(Vec<u8>),
}

/// Strict binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    In,
    Index,
}

impl BinOp {
    /// The CEL operator text, for error messages.
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::In => "in",
            BinOp::Index => "[]",
        }
    }
}

/// String predicates taking a receiver and one string argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StrOp {
    Contains,
    StartsWith,
    EndsWith,
}

/// Type conversions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Conv {
    Int,
    Uint,
    Double,
    String,
    Bool,
}

/// The `sets` extension functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetOp {
    Contains,
    Intersects,
    Equivalent,
}

/// Comprehension macros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CompKind {
    Exists,
    All,
    ExistsOne,
    /// `map` (with optional filter) and `filter`.
    Map,
}

/// One node of the compiled expression.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Const(Lit),
    Field(FieldId),
    /// A comprehension variable, by nesting depth.
    Var(usize),
    Not(Box<Node>),
    Neg(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Cond(Box<Node>, Box<Node>, Box<Node>),
    Bin(BinOp, Box<Node>, Box<Node>),
    /// `x in [string literals]`: a probe of a sorted, deduplicated set.
    InSet(Box<Node>, Box<[Box<str>]>),
    List(Vec<Node>),
    Map(Vec<(Node, Node)>),
    /// `x.name` on a map or JSON object.
    Select(Box<Node>, Box<str>),
    /// `has(x.name)` on a map or JSON object.
    Has(Box<Node>, Box<str>),
    /// `has(facet.field)`: true unless the field is unknown or absent.
    HasField(FieldId),
    Size(Box<Node>),
    Str(StrOp, Box<Node>, Box<Node>),
    /// `matches` with a pattern compiled at load.
    MatchesConst(Box<Node>, Box<Regex>),
    /// `matches` with a pattern computed at run time.
    Matches(Box<Node>, Box<Node>),
    Conv(Conv, Box<Node>),
    Sets(SetOp, Box<Node>, Box<Node>),
    Comp(Box<Comp>),
}

/// A comprehension: iterate `range` (list elements or map keys) binding variable `var`.
#[derive(Debug, Clone)]
pub(crate) struct Comp {
    pub kind: CompKind,
    pub range: Node,
    pub var: usize,
    /// The predicate (`exists`, `all`, `exists_one`), or the filter of `map`/`filter`.
    pub pred: Option<Node>,
    /// The transform of `map` (for `filter`, the variable itself).
    pub transform: Option<Node>,
}
