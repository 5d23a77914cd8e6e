//! Position-wise feed-forward network: Linear(d, ffn) → activation (GELU in Transformers, SiLU
//! in MEGA's normalized feed-forward) → dropout → Linear(ffn, d).

use dfdx::prelude::*;

use super::activation::Activation;
use super::linear::Linear;
use super::{Ctx, Scope, Seq};
use crate::engine::error::Result;
use crate::engine::ops::projection::Fusion;
use crate::engine::ops::EngineDevice;

#[derive(Clone, Debug)]
pub struct FeedForward {
    pub up: Linear,
    pub down: Linear,
    pub activation: Activation,
    pub dropout: f32,
}

impl FeedForward {
    pub fn build<D: EngineDevice>(
        mut scope: Scope<'_, D>,
        width: usize,
        hidden: usize,
        activation: Activation,
        dropout: f32,
    ) -> Result<Self> {
        Ok(FeedForward {
            up: Linear::build(scope.sub("up"), width, hidden)?,
            down: Linear::build(scope.sub("down"), hidden, width)?,
            activation,
            dropout,
        })
    }

    pub fn parameter_count(width: usize, hidden: usize) -> usize {
        Linear::parameter_count(width, hidden) + Linear::parameter_count(hidden, width)
    }

    pub fn forward<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        x: Seq<D, T>,
        ctx: &Ctx<'_, D>,
    ) -> Result<Seq<D, T>> {
        let hidden = self.up.forward_seq(x, ctx)?;
        if !ctx.drops(self.dropout) {
            // The activation as the second product's prologue.
            let fusion = Fusion {
                activation: self.activation.pointwise(),
                glu: false,
            };
            return self.down.project_seq(hidden, fusion, ctx);
        }
        let hidden = self.activation.apply(hidden)?;
        self.down
            .forward_seq(ctx.dropout(hidden, self.dropout), ctx)
    }
}
