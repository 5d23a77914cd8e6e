//! Models assembled from layers, and [`Model`]: the one type the training loop drives,
//! whatever the sequence layer. Pooling and the heads are [`SequenceClassifier`]'s, written
//! once for every kind.

mod classifier;
pub mod ssm;
pub mod transformer;

use dfdx::prelude::*;

pub use classifier::SequenceClassifier;
pub use ssm::{SsmConfig, SsmKind, SsmModel};
pub use transformer::{Transformer, TransformerConfig};

use super::error::Result;
use super::layers::encoder::Inputs;
use super::layers::heads::ClassifierHead;
use super::layers::pool::PoolKind;
use super::layers::Seq;
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
    /// Width of the representations [`SequenceClassifier::encode`] returns.
    pub fn d_model(&self) -> usize {
        match self {
            Model::Transformer(m) => m.config.d_model,
            Model::Ssm(m) => m.config.d_model,
        }
    }
}

impl SequenceClassifier for Model {
    fn encode<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
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

    fn pool_kind(&self) -> PoolKind {
        match self {
            Model::Transformer(m) => m.config.pool,
            Model::Ssm(m) => m.config.pool,
        }
    }

    fn head(&self) -> &ClassifierHead {
        match self {
            Model::Transformer(m) => &m.head,
            Model::Ssm(m) => &m.head,
        }
    }

    fn two_tower(&self) -> bool {
        match self {
            Model::Transformer(m) => m.config.two_tower,
            Model::Ssm(m) => m.config.two_tower,
        }
    }
}
