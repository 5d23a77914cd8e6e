//! Phase 1: source text → typed AST with spans. Entry point: [`parse`].

pub mod ast;
mod brackets;
mod error;
mod parse;

pub use error::SyntaxError;
pub use parse::{parse, parse_value, MAX_NESTING};
