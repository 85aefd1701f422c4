//! Compile errors of CEL conditions.

use std::ops::Range;

/// What kind of problem made a condition fail to compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompileErrorKind {
    /// The text is not CEL.
    Syntax,
    /// An identifier that is neither a facet of the family nor a comprehension variable.
    UnknownVariable,
    /// A select of a field the facet does not declare.
    UnknownField,
    /// The condition does not type to `bool`.
    NotBoolean,
    /// A string-literal regular expression does not compile.
    InvalidRegex,
    /// Operands whose static types no overload accepts.
    Type,
    /// A CEL construct this evaluator does not implement.
    Unsupported,
}

/// Why a condition failed to compile; `span` is a byte range within the condition text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CompileError {
    /// Lower-case message without a trailing period.
    pub message: String,
    /// Byte range of the offending expression within the condition text, when known.
    pub span: Option<Range<usize>>,
    /// The category of the error.
    pub kind: CompileErrorKind,
}

impl CompileError {
    /// An error of `kind` with `message` and no span.
    pub(crate) fn new(kind: CompileErrorKind, message: impl Into<String>) -> CompileError {
        CompileError {
            message: message.into(),
            span: None,
            kind,
        }
    }
}
