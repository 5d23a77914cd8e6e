//! Models assembled from layers.

pub mod transformer;

pub use transformer::{Transformer, TransformerConfig};
