//! Position information: learned or sinusoidal embeddings added to the input, or rotary
//! embeddings applied to queries and keys inside attention.

use dfdx::prelude::*;

use super::{Ctx, Scope, Seq};
use crate::engine::error::Result;
use crate::engine::ops::EngineDevice;
use crate::engine::params::{Init, ParamId, DEFAULT_GROUP};

/// The language's position encodings are the engine's.
pub use crate::spec::PositionKind;

/// Base of the geometric frequency ladder of sinusoidal and rotary embeddings.
const BASE: f64 = 10_000.0;

/// Vaswani et al. 2017, §3.5: PE(p, 2i) = sin(p/10000^{2i/d}), PE(p, 2i+1) = cos(·).
fn sinusoidal_table(len: usize, width: usize) -> Vec<f32> {
    let mut table = Vec::with_capacity(len * width);
    for p in 0..len {
        for c in 0..width {
            let angle = p as f64 / BASE.powf((c - c % 2) as f64 / width as f64);
            table.push(if c % 2 == 0 { angle.sin() } else { angle.cos() } as f32);
        }
    }
    table
}

/// Position embeddings added to the encoded input.
#[derive(Clone, Debug)]
pub enum AddedPositions {
    None,
    Learned {
        weight: ParamId,
        width: usize,
    },
    /// The (max_len, width) table, computed once.
    Sinusoidal {
        table: Vec<f32>,
        width: usize,
    },
}

impl AddedPositions {
    pub fn build<D: EngineDevice>(
        mut scope: Scope<'_, D>,
        kind: PositionKind,
        max_len: usize,
        width: usize,
    ) -> Result<Self> {
        Ok(match kind {
            PositionKind::None | PositionKind::Rotary => AddedPositions::None,
            PositionKind::Learned => AddedPositions::Learned {
                weight: scope.param(
                    "weight",
                    &[max_len, width],
                    Init::Normal { std: 0.02 },
                    DEFAULT_GROUP,
                )?,
                width,
            },
            PositionKind::Sinusoidal | PositionKind::SinusoidalRotary => {
                AddedPositions::Sinusoidal {
                    table: sinusoidal_table(max_len, width),
                    width,
                }
            }
        })
    }

    pub fn parameter_count(kind: PositionKind, max_len: usize, width: usize) -> usize {
        if kind == PositionKind::Learned {
            max_len * width
        } else {
            0
        }
    }

    pub fn forward<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        x: Seq<D, T>,
        ctx: &Ctx<'_, D>,
    ) -> Result<Seq<D, T>> {
        let shape = *x.shape();
        let seq = shape.1;
        Ok(match self {
            AddedPositions::None => x,
            AddedPositions::Learned { weight, width } => {
                let table = ctx.params.matrix::<T>(*weight).slice((0..seq, 0..*width));
                x + table.broadcast_like::<_, Axis<0>>(&shape)
            }
            AddedPositions::Sinusoidal { table, width } => {
                let table = ctx
                    .device()
                    .tensor_from_vec(table[..seq * width].to_vec(), (seq, *width));
                x + table.broadcast_like::<_, Axis<0>>(&shape)
            }
        })
    }
}

/// Rotary position embedding (Su et al. 2021, RoFormer eq. 34): each pair (x₂ᵢ, x₂ᵢ₊₁) of a
/// head is rotated by the angle p·θᵢ, θᵢ = 10000^{−2i/d_head}:
/// x' = x ⊙ cos + rot(x) ⊙ sin with rot(x)₂ᵢ = −x₂ᵢ₊₁, rot(x)₂ᵢ₊₁ = x₂ᵢ.
/// rot is a fixed signed permutation, applied as a (width × width) matmul so the same code runs
/// on every device.
#[derive(Clone, Debug)]
pub struct Rotary {
    cos: Vec<f32>,
    sin: Vec<f32>,
    rotation: Vec<f32>,
    width: usize,
}

impl Rotary {
    /// Tables for positions below `max_len`; `d_head` must be even (checked by the config).
    pub fn new(max_len: usize, width: usize, d_head: usize) -> Self {
        let mut cos = Vec::with_capacity(max_len * width);
        let mut sin = Vec::with_capacity(max_len * width);
        for p in 0..max_len {
            for c in 0..width {
                let pair = (c % d_head) / 2;
                let angle = p as f64 * BASE.powf(-2.0 * pair as f64 / d_head as f64);
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
        // (x·R)_{2i} = −x_{2i+1}: R[2i+1][2i] = −1; (x·R)_{2i+1} = x_{2i}: R[2i][2i+1] = 1.
        let mut rotation = vec![0.0; width * width];
        for i in (0..width).step_by(2) {
            rotation[(i + 1) * width + i] = -1.0;
            rotation[i * width + i + 1] = 1.0;
        }
        Rotary {
            cos,
            sin,
            rotation,
            width,
        }
    }

    pub(crate) fn apply<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        x: Seq<D, T>,
        ctx: &Ctx<'_, D>,
    ) -> Seq<D, T> {
        let shape = *x.shape();
        let (batch, seq, width) = shape;
        let dev = ctx.device();
        let cos = dev
            .tensor_from_vec(self.cos[..seq * width].to_vec(), (seq, width))
            .broadcast_like::<_, Axis<0>>(&shape);
        let sin = dev
            .tensor_from_vec(self.sin[..seq * width].to_vec(), (seq, width))
            .broadcast_like::<_, Axis<0>>(&shape);
        let rotation = dev.tensor_from_vec(self.rotation.clone(), (self.width, self.width));
        let rotated = x
            .with_empty_tape()
            .reshape_like(&(batch * seq, width))
            .matmul(rotation)
            .reshape_like(&shape);
        x * cos + rotated * sin
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::params::ParamStore;

    #[test]
    fn sinusoidal_table_matches_the_formula() {
        let t = sinusoidal_table(3, 4);
        assert_eq!(&t[0..4], &[0.0, 1.0, 0.0, 1.0]);
        assert!((t[4] - 1f32.sin()).abs() < 1e-7);
        assert!((t[6] - (1.0 / 100f64).sin() as f32).abs() < 1e-7);
        assert!((t[11] - (2.0 / 100f64).cos() as f32).abs() < 1e-7);
    }

    /// Rotary embeddings make q·k depend on positions only through their difference.
    #[test]
    fn rotary_scores_depend_on_relative_position() {
        let store = ParamStore::new(Cpu::default(), 0);
        let ctx = Ctx::new(&store, false, &[6]);
        let rotary = Rotary::new(6, 4, 4);
        let q = [0.3f32, -1.2, 0.7, 0.5];
        let k = [1.1f32, 0.4, -0.6, 0.9];
        let rotate = |v: &[f32; 4]| {
            let x = store.device().tensor_from_vec(v.repeat(6), (1, 6, 4));
            rotary.apply(x, &ctx).as_vec()
        };
        let (rq, rk) = (rotate(&q), rotate(&k));
        let dot = |i: usize, j: usize| (0..4).map(|c| rq[i * 4 + c] * rk[j * 4 + c]).sum::<f32>();
        assert!((dot(3, 1) - dot(4, 2)).abs() < 1e-5);
        assert!((dot(0, 0) - dot(5, 5)).abs() < 1e-5);
        assert!((dot(3, 1) - dot(3, 2)).abs() > 1e-3);
    }

    /// The backward pass of y = x∘cos + (x·R)∘sin against its closed form
    /// ∂L/∂x = g∘cos + (g∘sin)·Rᵀ, and the forward against the rotation of each pair written
    /// out (RoFormer eq. 34: (x₂ᵢ, x₂ᵢ₊₁) ↦ (x₂ᵢ cos θ − x₂ᵢ₊₁ sin θ, x₂ᵢ sin θ + x₂ᵢ₊₁ cos θ) with
    /// θ = p·10000^(−2i/d_head), i counted within each head).
    #[test]
    fn rotary_forward_and_gradient_match_the_pairwise_rotation() {
        let (seq, width, d_head) = (5, 8, 4);
        let store = ParamStore::new(Cpu::default(), 0);
        let lengths = [seq];
        let ctx = Ctx::new(&store, false, &lengths);
        let rotary = Rotary::new(seq, width, d_head);
        let values: Vec<f32> = (0..seq * width)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) / 5.0)
            .collect();
        let weights: Vec<f32> = (0..seq * width)
            .map(|i| ((i * 13 % 7) as f32 - 3.0) / 3.0)
            .collect();
        let x = store
            .device()
            .tensor_from_vec(values.clone(), (1, seq, width));
        let w = store
            .device()
            .tensor_from_vec(weights.clone(), (1, seq, width));
        let y = rotary.apply(x.leaky_trace(), &ctx);
        let forward = y.as_vec();
        let grad = (y * w).sum().backward().get(&x).as_vec();
        let angle = |p: usize, c: usize| {
            let pair = (c % d_head) / 2;
            p as f64 * 10_000f64.powf(-2.0 * pair as f64 / d_head as f64)
        };
        for p in 0..seq {
            for c in (0..width).step_by(2) {
                let (cos, sin) = (angle(p, c).cos() as f32, angle(p, c).sin() as f32);
                let at = |v: &[f32], k: usize| v[p * width + k];
                let (a, b) = (at(&values, c), at(&values, c + 1));
                let expected = [a * cos - b * sin, a * sin + b * cos];
                // L = Σ w·y, so ∂L/∂(a, b) is the transposed rotation of (w₂ᵢ, w₂ᵢ₊₁).
                let (wa, wb) = (at(&weights, c), at(&weights, c + 1));
                let expected_grad = [wa * cos + wb * sin, -wa * sin + wb * cos];
                for k in 0..2 {
                    assert!(
                        (at(&forward, c + k) - expected[k]).abs() < 1e-5,
                        "y[{p}][{}]",
                        c + k
                    );
                    assert!(
                        (at(&grad, c + k) - expected_grad[k]).abs() < 1e-5,
                        "dx[{p}][{}]",
                        c + k
                    );
                }
            }
        }
    }
}
