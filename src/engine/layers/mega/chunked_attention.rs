//! MEGA's single-head attention (Ma et al. 2023, §3.2), restricted to non-overlapping chunks
//! (§3.5, "Mega-chunk": each chunk attends to itself only, so the cost is O(L·c); the EMA
//! carries information across chunks). `chunk: None` attends over the whole sequence.
//!
//! The sequence is cut into chunks that become the rows of the fused op
//! ([`crate::engine::ops::mega_attention`]): f(Q·Kᵀ/√z + B) for softmax, f(Q·Kᵀ/n + B) for
//! laplace (eq. 14, n the number of keys a query sees), B the learned relative position bias
//! of the reference's `SimpleRelativePositionalBias` (facebookresearch/mega,
//! `fairseq/modules/relative_positional_bias.py`): B_ij = w[j − i + P − 1], one scalar per
//! offset within a chunk. As in the reference, P is the chunk size, or the longest input
//! when attention is not chunked (the reference's `max_positions`); here a chunk longer than
//! the longest input is clamped to it, so P = min(chunk, max_len). Attention dropout (the
//! reference's `attention_dropout`) drops attention weights in training.

use dfdx::prelude::*;

use crate::engine::error::{EngineError, Result};
use crate::engine::layers::{Ctx, Seq};
pub use crate::engine::ops::mega_attention::AttentionFunction;
use crate::engine::ops::{ChunkSpec, EngineDevice};

#[derive(Clone, Debug)]
pub struct ChunkedAttention {
    pub chunk: Option<usize>,
    pub function: AttentionFunction,
    pub causal: bool,
    /// Dropout probability of the attention weights (training only).
    pub dropout: f32,
    /// P: the bias table holds 2P − 1 offsets; no chunk may be longer.
    pub positions: usize,
}

impl ChunkedAttention {
    /// P for a chunk length (`None`: the whole sequence) and the longest input.
    pub fn positions(chunk: Option<usize>, max_len: usize) -> usize {
        chunk.unwrap_or(max_len).min(max_len).max(1)
    }

    /// The size of the bias table: 2P − 1.
    pub(crate) fn bias_len(&self) -> usize {
        2 * self.positions - 1
    }

    /// q, k (B, L, z), v (B, L, v) and the bias table (2P − 1) → (B, L, v).
    pub fn forward<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        q: Seq<D, T>,
        k: Seq<D, T>,
        v: Seq<D, T>,
        bias: Tensor<(usize,), f32, D, T>,
        ctx: &Ctx<'_, D>,
    ) -> Result<Seq<D, T>> {
        let (batch, len, _) = *q.shape();
        let e = v.shape().2;
        let chunk = self.chunk.unwrap_or(len).clamp(1, len.max(1));
        if chunk > self.positions {
            return Err(EngineError::ShapeMismatch {
                op: "mega attention",
                detail: format!(
                    "chunks of {chunk} positions, longer than the {} the relative position bias was built for",
                    self.positions
                ),
            });
        }
        let padded = len.div_ceil(chunk) * chunk;
        let chunks = padded / chunk;
        // Each chunk's true length: what is left of its example after the chunks before it.
        let lengths: Vec<usize> = (0..batch * chunks)
            .map(|i| {
                let (b, c) = (i / chunks, i % chunks);
                ctx.lengths[b].min(len).saturating_sub(c * chunk).min(chunk)
            })
            .collect();
        let as_chunks = |x: Seq<D, T>| {
            let width = x.shape().2;
            pad_time(x, padded).reshape_like(&(batch * chunks, chunk, width))
        };
        let (q, k, v) = (as_chunks(q), as_chunks(k), as_chunks(v));
        let dropout = if ctx.train { self.dropout } else { 0.0 };
        let spec = ChunkSpec {
            function: self.function,
            causal: self.causal,
            dropout,
            // A fresh mask per call, from the device's generator (as dfdx's own dropout).
            seed: if dropout > 0.0 {
                ctx.device().random_u64()
            } else {
                0
            },
        };
        let out = D::mega_attention(q, k, v, bias, &spec, &lengths)?;
        let out = out.reshape_like(&(batch, padded, e));
        Ok(if padded > len {
            out.slice((.., ..len, ..))
        } else {
            out
        })
    }
}

/// x (B, L, W) with zeros appended up to `len` positions.
fn pad_time<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(x: Seq<D, T>, len: usize) -> Seq<D, T> {
    let (b, l, w) = *x.shape();
    if len == l {
        return x;
    }
    let zeros = x.device().zeros_like(&(b, len - l, w)).retaped::<T>();
    (x, zeros).concat_along(Axis::<1>)
}

#[cfg(test)]
mod tests;
