//! `decide()` benchmark (filled once the engine lands).
fn main() {}
