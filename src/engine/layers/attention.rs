//! Multi-head self-attention: projections q, k, v, the fused attention op, projection o.

use dfdx::prelude::*;

use super::linear::Linear;
use super::position::Rotary;
use super::{Ctx, Scope, Seq};
use crate::engine::error::Result;
use crate::engine::ops::{AttentionSpec, EngineDevice};

#[derive(Clone, Debug)]
pub struct MultiHeadAttention {
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub o: Linear,
    pub spec: AttentionSpec,
    /// Rotary position embedding of queries and keys, if the model uses it.
    pub rotary: Option<Rotary>,
}

impl MultiHeadAttention {
    pub fn build<D: EngineDevice>(
        mut scope: Scope<'_, D>,
        width: usize,
        spec: AttentionSpec,
        rotary: Option<Rotary>,
    ) -> Result<Self> {
        Ok(MultiHeadAttention {
            q: Linear::build(scope.sub("q"), width, width)?,
            k: Linear::build(scope.sub("k"), width, width)?,
            v: Linear::build(scope.sub("v"), width, width)?,
            o: Linear::build(scope.sub("o"), width, width)?,
            spec,
            rotary,
        })
    }

    pub fn parameter_count(width: usize) -> usize {
        4 * Linear::parameter_count(width, width)
    }

    pub fn forward<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        x: Seq<D, T>,
        ctx: &Ctx<'_, D>,
    ) -> Result<Seq<D, T>> {
        let mut q = self.q.forward_seq(x.with_empty_tape(), ctx)?;
        let mut k = self.k.forward_seq(x.with_empty_tape(), ctx)?;
        let v = self.v.forward_seq(x, ctx)?;
        if let Some(rotary) = &self.rotary {
            q = rotary.apply(q, ctx);
            k = rotary.apply(k, ctx);
        }
        let mixed = D::attention(q, k, v, &self.spec, ctx.lengths)?;
        self.o.forward_seq(mixed, ctx)
    }
}
