//! Output heads: the classification MLP (one pooled vector, or the NLI features
//! [u, v, u − v, u ⊙ v] of two towers for retrieval) and the per-position prediction head of
//! self-pretraining.

use dfdx::prelude::*;

use super::linear::Linear;
use super::{Ctx, Rows, Scope, Seq};
use crate::engine::error::Result;
use crate::engine::ops::EngineDevice;

/// Linear(inputs, hidden) → GELU → Linear(hidden, classes).
#[derive(Clone, Debug)]
pub struct ClassifierHead {
    pub dense: Linear,
    pub out: Linear,
}

impl ClassifierHead {
    pub fn build<D: EngineDevice>(
        mut scope: Scope<'_, D>,
        inputs: usize,
        hidden: usize,
        classes: usize,
    ) -> Result<Self> {
        Ok(ClassifierHead {
            dense: Linear::build(scope.sub("dense"), inputs, hidden)?,
            out: Linear::build(scope.sub("out"), hidden, classes)?,
        })
    }

    pub fn parameter_count(inputs: usize, hidden: usize, classes: usize) -> usize {
        Linear::parameter_count(inputs, hidden) + Linear::parameter_count(hidden, classes)
    }

    pub fn forward<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        x: Rows<D, T>,
        ctx: &Ctx<'_, D>,
    ) -> Result<Rows<D, T>> {
        let hidden = D::gelu(self.dense.forward(x, ctx)?)?;
        self.out.forward(hidden, ctx)
    }
}

/// The retrieval features of two pooled documents (Conneau et al. 2017's NLI combination).
pub(crate) fn pair_features<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
    u: Rows<D, T>,
    v: Rows<D, T>,
) -> Rows<D, T> {
    let diff = u.with_empty_tape() - v.with_empty_tape();
    let prod = u.with_empty_tape() * v.with_empty_tape();
    let uv = (u, v).concat_along(Axis::<1>);
    let dp = (diff, prod).concat_along(Axis::<1>);
    (uv, dp).concat_along(Axis::<1>)
}

/// Per-position logits (or values, for the L1 objective) of the pretraining objective.
#[derive(Clone, Debug)]
pub struct PredictionHead {
    pub out: Linear,
}

impl PredictionHead {
    /// Parameters are named `<scope>.out.*` (e.g. `pretrain_head.out.weight`), so fine-tuning
    /// can load a pretrained checkpoint without them.
    pub fn build<D: EngineDevice>(
        mut scope: Scope<'_, D>,
        width: usize,
        outputs: usize,
    ) -> Result<Self> {
        Ok(PredictionHead {
            out: Linear::build(scope.sub("out"), width, outputs)?,
        })
    }

    /// (batch·length, outputs), row b·L + i for position i of example b.
    pub fn forward<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        x: Seq<D, T>,
        ctx: &Ctx<'_, D>,
    ) -> Result<Rows<D, T>> {
        let (batch, seq, width) = *x.shape();
        self.out.forward(x.reshape_like(&(batch * seq, width)), ctx)
    }
}
