//! The compiled policy and `decide()`.
