//! Layer normalisation over the model width (γ = 1, β = 0 at start, no weight decay).

use dfdx::prelude::*;

use super::{Ctx, Scope, Seq};
use crate::engine::error::Result;
use crate::engine::ops::EngineDevice;
use crate::engine::params::{Init, ParamId, NO_DECAY_GROUP};

/// PyTorch's `nn.LayerNorm` default.
pub const LAYER_NORM_EPS: f64 = 1e-5;

#[derive(Clone, Debug)]
pub struct LayerNorm {
    pub gamma: ParamId,
    pub beta: ParamId,
    pub width: usize,
}

impl LayerNorm {
    pub fn build<D: EngineDevice>(mut scope: Scope<'_, D>, width: usize) -> Result<Self> {
        Ok(LayerNorm {
            gamma: scope.param("weight", &[width], Init::Ones, NO_DECAY_GROUP)?,
            beta: scope.param("bias", &[width], Init::Zeros, NO_DECAY_GROUP)?,
            width,
        })
    }

    pub fn parameter_count(width: usize) -> usize {
        2 * width
    }

    pub fn forward<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        x: Seq<D, T>,
        ctx: &Ctx<'_, D>,
    ) -> Result<Seq<D, T>> {
        let shape = *x.shape();
        let rows = x.reshape_like(&(shape.0 * shape.1, shape.2));
        let gamma = ctx.params.vector::<T>(self.gamma);
        let beta = ctx.params.vector::<T>(self.beta);
        Ok(D::layer_norm(rows, gamma, beta, LAYER_NORM_EPS)?.reshape_like(&shape))
    }
}
