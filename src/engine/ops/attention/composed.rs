//! Attention from dfdx ops on any device: materialises the (batch, heads, L, L) scores, so it
//! is the oracle for the fused kernel and the CUDA path, not a long-sequence path.

use dfdx::prelude::*;

use super::mask::{AttentionSpec, Visibility};
use super::Seq3;
use crate::engine::ops::ComposedFloat;

/// Additive mask (0 or −10⁹·…) and multiplicative visibility (1 or 0), both (batch, L, L).
/// The product zeroes rows that see no key, where a softmax alone would be uniform.
fn mask_tables<E: ComposedFloat>(
    spec: &AttentionSpec,
    lengths: &[usize],
    seq: usize,
) -> (Vec<E>, Vec<E>) {
    let mut bias = Vec::with_capacity(lengths.len() * seq * seq);
    let mut keep = Vec::with_capacity(lengths.len() * seq * seq);
    let (zero, one, neg) = (
        E::from_f64(0.0).unwrap(),
        E::from_f64(1.0).unwrap(),
        E::from_f64(-1e9).unwrap(),
    );
    for &len in lengths {
        let vis = Visibility::new(spec, len, seq);
        for i in 0..seq {
            for j in 0..seq {
                let seen = vis.sees(i, j);
                bias.push(if seen { zero } else { neg });
                keep.push(if seen { one } else { zero });
            }
        }
    }
    (bias, keep)
}

pub fn attention_composed<E: ComposedFloat, D: Device<E>, T: Tape<E, D> + Merge<T>>(
    q: Seq3<E, D, T>,
    k: Seq3<E, D, T>,
    v: Seq3<E, D, T>,
    spec: &AttentionSpec,
    lengths: &[usize],
) -> Seq3<E, D, T> {
    let (batch, seq, width) = *q.shape();
    let (heads, dh) = (spec.heads, width / spec.heads);
    let split = |x: Seq3<E, D, T>| {
        x.reshape_like(&(batch, seq, heads, dh))
            .permute::<(usize, usize, usize, usize), Axes4<0, 2, 1, 3>>()
    };
    let dev = q.device().clone();
    let (bias, keep) = mask_tables::<E>(spec, lengths, seq);
    let scores_shape = (batch, heads, seq, seq);
    let bias = dev
        .tensor_from_vec(bias, (batch, seq, seq))
        .broadcast_like::<_, Axis<1>>(&scores_shape);
    let keep = dev
        .tensor_from_vec(keep, (batch, seq, seq))
        .broadcast_like::<_, Axis<1>>(&scores_shape);
    let scale = E::from_f64(1.0 / (dh as f64).sqrt()).unwrap();
    let kt = split(k).permute::<(usize, usize, usize, usize), Axes4<0, 1, 3, 2>>();
    let scores = split(q).matmul(kt) * scale + bias;
    let probs = scores.softmax::<Axis<3>>() * keep;
    probs
        .matmul(split(v))
        .permute::<(usize, usize, usize, usize), Axes4<0, 2, 1, 3>>()
        .reshape_like(&(batch, seq, width))
}
