//! MEGA's single-head attention (Ma et al. 2023, §3.2), restricted to non-overlapping chunks
//! (§3.5, "Mega-chunk": each chunk attends to itself only, so the cost is O(L·c); the EMA
//! carries information across chunks). `chunk: None` attends over the whole sequence.
//!
//! Two attention functions, as the reference (`moving_average_gated_attention.py`):
//! - softmax(Q·Kᵀ/√z)·V. It runs on the engine's fused attention op, chunks becoming batch
//!   rows. The op wants one width for Q, K and V and splits it into heads, so the single
//!   head is presented as ⌈v/z⌉ heads that share Q and K (tiled) and each take z columns of V
//!   (zero-padded to a multiple of z): every head then computes the same softmax(Q·Kᵀ/√z), and
//!   the heads' outputs side by side are the single head's.
//! - laplace(Q·Kᵀ/n)·V (eq. 14), n the number of keys a query sees, padded and (causal)
//!   future keys contributing zero. Composed from dfdx ops per chunk: O(L·c) memory.
//!
//! No relative position bias: the reference adds a learned Toeplitz bias to the scores; here
//! order comes from the EMA alone, which keeps the softmax path on the fused kernel.

use dfdx::prelude::*;
use serde::{Deserialize, Serialize};

use crate::engine::error::Result;
use crate::engine::layers::{Ctx, Seq};
use crate::engine::ops::{AttentionSpec, EngineDevice};

/// The attention function f of f(Q·Kᵀ)·V.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttentionFunction {
    Softmax,
    Laplace,
}

#[derive(Clone, Debug)]
pub struct ChunkedAttention {
    pub chunk: Option<usize>,
    pub function: AttentionFunction,
    pub causal: bool,
}

impl ChunkedAttention {
    /// q, k (B, L, z) and v (B, L, v) → (B, L, v).
    pub fn forward<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        q: Seq<D, T>,
        k: Seq<D, T>,
        v: Seq<D, T>,
        ctx: &Ctx<'_, D>,
    ) -> Result<Seq<D, T>> {
        let (batch, len, z) = *q.shape();
        let e = v.shape().2;
        let chunk = self.chunk.unwrap_or(len).clamp(1, len.max(1));
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
        let out = match self.function {
            AttentionFunction::Softmax => self.softmax(q, k, v, z, e, &lengths)?,
            AttentionFunction::Laplace => self.laplace(q, k, v, &lengths, ctx)?,
        };
        let out = out.reshape_like(&(batch, padded, e));
        Ok(if padded > len {
            out.slice((.., ..len, ..))
        } else {
            out
        })
    }

    fn softmax<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        q: Seq<D, T>,
        k: Seq<D, T>,
        v: Seq<D, T>,
        z: usize,
        e: usize,
        lengths: &[usize],
    ) -> Result<Seq<D, T>> {
        let (rows, chunk, _) = *q.shape();
        let heads = e.div_ceil(z);
        let tiled = (rows, chunk, heads, z);
        let tile = |x: Seq<D, T>| {
            x.broadcast_like::<_, Axis<2>>(&tiled)
                .reshape_like(&(rows, chunk, heads * z))
        };
        let v = pad_width(v, heads * z);
        let spec = AttentionSpec {
            heads,
            causal: self.causal,
            window: None,
        };
        let out = D::attention(tile(q), tile(k), v, &spec, lengths)?;
        Ok(if heads * z > e {
            out.slice((.., .., ..e))
        } else {
            out
        })
    }

    fn laplace<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        q: Seq<D, T>,
        k: Seq<D, T>,
        v: Seq<D, T>,
        lengths: &[usize],
        ctx: &Ctx<'_, D>,
    ) -> Result<Seq<D, T>> {
        let (rows, chunk, _) = *q.shape();
        // Which keys each query sees (1/0), and 1/n for its n visible keys.
        let mut keep = vec![0.0f32; rows * chunk * chunk];
        let mut inverse_count = vec![0.0f32; rows * chunk];
        for (r, &len) in lengths.iter().enumerate() {
            for i in 0..chunk {
                let seen = if self.causal { len.min(i + 1) } else { len };
                keep[(r * chunk + i) * chunk..][..seen].fill(1.0);
                if seen > 0 {
                    inverse_count[r * chunk + i] = 1.0 / seen as f32;
                }
            }
        }
        let scores_shape = (rows, chunk, chunk);
        let dev = ctx.device();
        let keep = dev.tensor_from_vec(keep, scores_shape);
        let inverse_count = dev
            .tensor_from_vec(inverse_count, (rows, chunk))
            .broadcast_like::<_, Axis<2>>(&scores_shape);
        let scores = q.matmul(k.permute::<_, Axes3<0, 2, 1>>()) * inverse_count;
        Ok((D::laplace(scores)? * keep).matmul(v))
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

/// x (B, L, W) with zero columns appended up to `width`.
fn pad_width<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(x: Seq<D, T>, width: usize) -> Seq<D, T> {
    let (b, l, w) = *x.shape();
    if width == w {
        return x;
    }
    let zeros = x.device().zeros_like(&(b, l, width - w)).retaped::<T>();
    (x, zeros).concat_along(Axis::<2>)
}

#[cfg(test)]
mod tests;
