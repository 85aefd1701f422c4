//! CEL conditions: parsed with the `cel` crate, compiled to our own typed IR and evaluated
//! three-valued (true, false, unknown, error) over an [`Activation`] (reference §2.1–2.6).

mod errors;
mod eval;
mod inspect;
mod ir;
mod lower;
mod value;

#[cfg(test)]
mod tests;

pub use errors::{CompileError, CompileErrorKind};
pub use inspect::LiteralRegex;

use crate::facts::{Activation, Family, FieldId, UnknownCause};
use errors::CompileErrorKind as K;
use eval::{Ctx, Stop};
use ir::{Node, Ty};

/// The outcome of evaluating a condition against one action.
#[derive(Debug, Clone, PartialEq)]
pub enum Tri {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// The outcome depends on fields that are unknown for this action.
    Unknown(UnknownCause),
    /// Evaluation failed (missing key, type error, non-bool result, …).
    Error(String),
}

/// A condition compiled for one family: shareable across threads, evaluated without parsing.
#[derive(Debug, Clone)]
pub struct CompiledCondition {
    source: String,
    root: Node,
    fields: Vec<FieldId>,
}

/// Compiles the CEL `text` for a rule of `family`.
pub fn compile(text: &str, family: Family) -> Result<CompiledCondition, CompileError> {
    let (ast, info) = cel::parser::Parser::new()
        .parse_with_source_info(text)
        .map_err(|e| syntax_error(text, &e))?;
    let mut lowerer = lower::Lowerer::new(family, text, &info);
    let (root, ty) = lowerer.lower(&ast)?;
    if !matches!(ty, Ty::Bool | Ty::Dyn) {
        return Err(CompileError {
            message: format!("condition must yield bool, got {ty}"),
            span: Some(0..text.len()),
            kind: K::NotBoolean,
        });
    }
    Ok(CompiledCondition {
        source: text.to_string(),
        root,
        fields: lowerer.fields.into_iter().collect(),
    })
}

/// Converts the parser's errors into one `Syntax` error spanning the first error's position.
fn syntax_error(text: &str, e: &cel::ParseErrors) -> CompileError {
    let Some(first) = e.errors.first() else {
        return CompileError::new(K::Syntax, "syntax error");
    };
    let (line, col) = first.pos;
    let line_start: usize = text
        .split_inclusive('\n')
        .take(usize::try_from(line - 1).unwrap_or(0))
        .map(str::len)
        .sum();
    let rest = text.get(line_start..).unwrap_or("");
    let col = usize::try_from(col).unwrap_or(0);
    let start = line_start + rest.char_indices().nth(col).map_or(rest.len(), |(b, _)| b);
    let end = text[start.min(text.len())..]
        .chars()
        .next()
        .map_or(start, |c| start + c.len_utf8());
    CompileError {
        message: format!("syntax error: {}", first.msg),
        span: Some(start.min(text.len())..end.min(text.len())),
        kind: K::Syntax,
    }
}

impl CompiledCondition {
    /// Evaluates the condition against `act`.
    pub fn eval(&self, act: &dyn Activation) -> Tri {
        let mut cx = Ctx {
            act,
            vars: Vec::new(),
        };
        match eval::eval_bool(&self.root, &mut cx, "condition") {
            Ok(true) => Tri::True,
            Ok(false) => Tri::False,
            Err(Stop::Unknown(c)) => Tri::Unknown(c),
            Err(Stop::Error(e)) => Tri::Error(e),
        }
    }

    /// Every fact field the condition reads, sorted and deduplicated.
    pub fn fields(&self) -> &[FieldId] {
        &self.fields
    }

    /// Every literal `matches()` pattern in the condition, with the field it applies to.
    pub fn literal_regexes(&self) -> Vec<LiteralRegex> {
        inspect::literal_regexes(&self.root)
    }

    /// Every string literal the condition compares `field` with (`==`, `!=`, `in [...]`).
    pub fn compared_literals(&self, field: FieldId) -> Vec<String> {
        inspect::compared_literals(&self.root, field)
    }

    /// The condition's value when it reads no fact field (a constant condition), else `None`.
    pub fn constant_value(&self) -> Option<Tri> {
        struct NoFacts;
        impl Activation for NoFacts {
            fn field(&self, _: FieldId) -> crate::facts::FieldValue<'_> {
                crate::facts::FieldValue::Absent
            }
        }
        self.fields.is_empty().then(|| self.eval(&NoFacts))
    }

    /// The condition text as written.
    pub fn source(&self) -> &str {
        &self.source
    }
}
