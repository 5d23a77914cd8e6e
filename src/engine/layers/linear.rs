//! Affine map y = x·W + b, W stored as (in, out) so no transpose is needed (PyTorch stores
//! its transpose). Weights: Glorot uniform; biases: zeros, without weight decay.

use dfdx::prelude::*;

use super::{Ctx, Rows, Scope, Seq};
use crate::engine::error::Result;
use crate::engine::ops::projection::Fusion;
use crate::engine::ops::EngineDevice;
use crate::engine::params::{Init, ParamId, DEFAULT_GROUP, NO_DECAY_GROUP};

#[derive(Clone, Debug)]
pub struct Linear {
    pub weight: ParamId,
    pub bias: ParamId,
    pub inputs: usize,
    pub outputs: usize,
}

impl Linear {
    pub fn build<D: EngineDevice>(
        mut scope: Scope<'_, D>,
        inputs: usize,
        outputs: usize,
    ) -> Result<Self> {
        let init = Init::XavierUniform {
            fan_in: inputs,
            fan_out: outputs,
        };
        Ok(Linear {
            weight: scope.param("weight", &[inputs, outputs], init, DEFAULT_GROUP)?,
            bias: scope.param("bias", &[outputs], Init::Zeros, NO_DECAY_GROUP)?,
            inputs,
            outputs,
        })
    }

    pub fn parameter_count(inputs: usize, outputs: usize) -> usize {
        inputs * outputs + outputs
    }

    pub fn forward<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        x: Rows<D, T>,
        ctx: &Ctx<'_, D>,
    ) -> Result<Rows<D, T>> {
        let w = ctx.params.matrix::<T>(self.weight);
        let b = ctx.params.vector::<T>(self.bias);
        D::linear(x, w, b)
    }

    /// Applies the map to every position of a sequence.
    pub(crate) fn forward_seq<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        x: Seq<D, T>,
        ctx: &Ctx<'_, D>,
    ) -> Result<Seq<D, T>> {
        let (batch, seq, _) = *x.shape();
        let rows = x.reshape_like(&(batch * seq, self.inputs));
        Ok(self
            .forward(rows, ctx)?
            .reshape_like(&(batch, seq, self.outputs)))
    }

    /// glu(f(x)·W + b), or f(x)·W + b, at every position of a sequence, as one fused op
    /// (see [`crate::engine::ops::projection`]).
    pub(crate) fn project_seq<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        x: Seq<D, T>,
        fusion: Fusion,
        ctx: &Ctx<'_, D>,
    ) -> Result<Seq<D, T>> {
        let (batch, seq, _) = *x.shape();
        let rows = x.reshape_like(&(batch * seq, self.inputs));
        let w = ctx.params.matrix::<T>(self.weight);
        let b = ctx.params.vector::<T>(self.bias);
        let y = D::projection(rows, w, b, fusion)?;
        let width = y.shape().1;
        Ok(y.reshape_like(&(batch, seq, width)))
    }
}
