//! Input encoders: a token embedding for discrete inputs, a linear map for continuous ones
//! (pixels as values, as in S4's sequential CIFAR).

use dfdx::prelude::*;

use super::linear::Linear;
use super::{Ctx, Scope, Seq};
use crate::engine::error::{EngineError, Result};
use crate::engine::ops::EngineDevice;
use crate::engine::params::{Init, ParamId, DEFAULT_GROUP};

/// The kind of input a model reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputKind {
    Tokens { vocab: usize },
    Continuous { channels: usize },
}

/// One batch of inputs, row-major (batch, length[, channels]), padded to a common length.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    pub batch: usize,
    pub seq: usize,
    /// True length of each example; positions at or past it are padding.
    pub lengths: &'a [usize],
    pub data: InputData<'a>,
}

impl<'a> Inputs<'a> {
    /// A batch of token sequences: one length per example, `ids` holding every example's
    /// padded sequence.
    pub fn tokens(ids: &'a [usize], lengths: &'a [usize]) -> Self {
        let batch = lengths.len();
        Inputs {
            batch,
            seq: ids.len() / batch.max(1),
            lengths,
            data: InputData::Tokens(ids),
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub enum InputData<'a> {
    Tokens(&'a [usize]),
    Continuous(&'a [f32]),
}

#[derive(Clone, Debug)]
pub enum InputEncoder {
    Embedding {
        weight: ParamId,
        vocab: usize,
        width: usize,
    },
    Linear(Linear),
}

impl InputEncoder {
    pub fn build<D: EngineDevice>(
        mut scope: Scope<'_, D>,
        kind: InputKind,
        width: usize,
    ) -> Result<Self> {
        Ok(match kind {
            InputKind::Tokens { vocab } => InputEncoder::Embedding {
                // N(0, 1/d): with sinusoidal positions of unit amplitude added, both terms
                // matter at the start of training.
                weight: scope.param(
                    "weight",
                    &[vocab, width],
                    Init::Normal {
                        std: (width as f32).powf(-0.5),
                    },
                    DEFAULT_GROUP,
                )?,
                vocab,
                width,
            },
            InputKind::Continuous { channels } => {
                InputEncoder::Linear(Linear::build(scope, channels, width)?)
            }
        })
    }

    pub fn parameter_count(kind: InputKind, width: usize) -> usize {
        match kind {
            InputKind::Tokens { vocab } => vocab * width,
            InputKind::Continuous { channels } => Linear::parameter_count(channels, width),
        }
    }

    pub fn forward<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        inputs: &Inputs<'_>,
        ctx: &Ctx<'_, D>,
    ) -> Result<Seq<D, T>> {
        let (batch, seq) = (inputs.batch, inputs.seq);
        let wrong = |expected: usize, actual: usize| EngineError::ShapeMismatch {
            op: "input encoder",
            detail: format!(
                "expected {expected} input values for batch {batch} × length {seq}, got {actual}"
            ),
        };
        match (self, inputs.data) {
            (
                InputEncoder::Embedding {
                    weight,
                    vocab,
                    width,
                },
                InputData::Tokens(ids),
            ) => {
                if ids.len() != batch * seq {
                    return Err(wrong(batch * seq, ids.len()));
                }
                if let Some(&bad) = ids.iter().find(|&&id| id >= *vocab) {
                    return Err(EngineError::ShapeMismatch {
                        op: "token embedding",
                        detail: format!("token id {bad} outside the vocabulary of {vocab}"),
                    });
                }
                Ok(D::embedding(ctx.params.matrix::<T>(*weight), ids)?
                    .reshape_like(&(batch, seq, *width)))
            }
            (InputEncoder::Linear(linear), InputData::Continuous(values)) => {
                let channels = linear.inputs;
                if values.len() != batch * seq * channels {
                    return Err(wrong(batch * seq * channels, values.len()));
                }
                let x = ctx
                    .device()
                    .tensor_from_vec(values.to_vec(), (batch * seq, channels));
                Ok(linear.forward(x.retaped::<T>(), ctx)?.reshape_like(&(
                    batch,
                    seq,
                    linear.outputs,
                )))
            }
            _ => Err(EngineError::ShapeMismatch {
                op: "input encoder",
                detail: "token ids given to a continuous encoder or values to an embedding".into(),
            }),
        }
    }
}
