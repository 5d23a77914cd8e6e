//! Position-wise feed-forward network: Linear(d, ffn) → GELU → dropout → Linear(ffn, d).

use dfdx::prelude::*;

use super::linear::Linear;
use super::{Ctx, Scope, Seq};
use crate::engine::error::Result;
use crate::engine::ops::EngineDevice;

#[derive(Clone, Debug)]
pub struct FeedForward {
    pub up: Linear,
    pub down: Linear,
    pub dropout: f32,
}

impl FeedForward {
    pub fn build<D: EngineDevice>(
        mut scope: Scope<'_, D>,
        width: usize,
        hidden: usize,
        dropout: f32,
    ) -> Result<Self> {
        Ok(FeedForward {
            up: Linear::build(scope.sub("up"), width, hidden)?,
            down: Linear::build(scope.sub("down"), hidden, width)?,
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
        let hidden = D::gelu(self.up.forward_seq(x, ctx)?)?;
        self.down
            .forward_seq(ctx.dropout(hidden, self.dropout), ctx)
    }
}
