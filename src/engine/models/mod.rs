//! Models assembled from layers, and [`Model`]: the one type the training loop drives,
//! whatever the sequence layer.

pub mod ssm;
pub mod transformer;

use dfdx::prelude::*;

pub use ssm::{SsmConfig, SsmKind, SsmModel};
pub use transformer::{Transformer, TransformerConfig};

use super::error::Result;
use super::layers::encoder::Inputs;
use super::layers::{Rows, Seq};
use super::ops::EngineDevice;
use super::params::ParamStore;

/// A built model of any kind. Every kind encodes sequences to `(batch, length, d_model)`,
/// pools them over true lengths, and classifies one sequence or (retrieval) a pair.
#[derive(Clone, Debug)]
pub enum Model {
    Transformer(Transformer),
    Ssm(SsmModel),
}

impl Model {
    /// Contextual representations of every position, (batch, length, d_model).
    pub fn encode<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        params: &ParamStore<D>,
        inputs: &Inputs<'_>,
        train: bool,
    ) -> Result<Seq<D, T>> {
        match self {
            Model::Transformer(m) => m.encode(params, inputs, train),
            Model::Ssm(m) => m.encode(params, inputs, train),
        }
    }

    /// Class logits, (batch, n_classes).
    pub fn logits<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        params: &ParamStore<D>,
        inputs: &Inputs<'_>,
        train: bool,
    ) -> Result<Rows<D, T>> {
        match self {
            Model::Transformer(m) => m.logits(params, inputs, train),
            Model::Ssm(m) => m.logits(params, inputs, train),
        }
    }

    /// Class logits of document pairs (retrieval's two towers).
    pub fn pair_logits<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        params: &ParamStore<D>,
        first: &Inputs<'_>,
        second: &Inputs<'_>,
        train: bool,
    ) -> Result<Rows<D, T>> {
        match self {
            Model::Transformer(m) => m.pair_logits(params, first, second, train),
            Model::Ssm(m) => m.pair_logits(params, first, second, train),
        }
    }

    /// Width of the representations [`encode`](Self::encode) returns.
    pub fn d_model(&self) -> usize {
        match self {
            Model::Transformer(m) => m.config.d_model,
            Model::Ssm(m) => m.config.d_model,
        }
    }
}
