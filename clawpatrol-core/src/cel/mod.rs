//! CEL conditions: parsed with the `cel` crate, compiled to our three-valued evaluator.
