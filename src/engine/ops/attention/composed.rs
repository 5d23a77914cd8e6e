//! Attention from dfdx ops on any device (the CUDA path and the fused kernel's oracle),
//! computed block by block of queries so no (L × L) tensor exists at once.
//!
//! For a block of queries [i₀, i₁) only the keys some query of it sees are read
//! (`Visibility::key_range`, the union over the batch), so
//!
//! - local attention reads three windows per block: time and memory linear in L, with or
//!   without a tape;
//! - causal attention reads keys up to the block's end: half the score entries;
//! - full attention reads every key. Without a tape (evaluation) each block's scores are freed
//!   before the next, so the peak is (batch · heads · block · L); with a tape, dfdx keeps each
//!   block's probabilities for the backward pass, L² in all. Getting below that needs a
//!   backward that recomputes the scores (FlashAttention's), which dfdx 0.13's public API
//!   cannot express on a generic device (gradient buffers and kernels are crate-private): on
//!   the CPU the fused kernel (`flash.rs`) does it.
//!
//! Each block is an exact softmax over its key range, so the blocks need no online rescaling:
//! softmax(s·q·Kᵀ + mask)·V per block, then the blocks are concatenated along the sequence.
//! Masks are factored as key padding (batch × keys) plus the pattern (queries × keys, causal
//! or window) and broadcast on the device, so the host builds O(L) values per block, not
//! (batch · L · L) per layer.

use std::ops::Range;

use dfdx::prelude::*;

use super::mask::{AttentionSpec, Visibility};
use super::Seq3;
use crate::engine::ops::ComposedFloat;

/// Queries per block for global attention: at L = 4,096, batch 32 and 8 heads a block's
/// scores are 1 GiB in f32, against 16 GiB for the whole matrix.
pub(super) const QUERY_BLOCK: usize = 256;

type Seq4<E, D, T> = Tensor<(usize, usize, usize, usize), E, D, T>;

/// Queries per block: whole windows for local attention (so a block reads three windows),
/// at least [`QUERY_BLOCK`] / 4 queries so tiny windows do not make thousands of blocks.
fn query_block(spec: &AttentionSpec) -> usize {
    match spec.window.filter(|&w| w > 0) {
        Some(w) => w * (QUERY_BLOCK / 4).div_ceil(w),
        None => QUERY_BLOCK,
    }
}

pub fn attention_composed<E: ComposedFloat, D: Device<E>, T: Tape<E, D> + Merge<T>>(
    q: Seq3<E, D, T>,
    k: Seq3<E, D, T>,
    v: Seq3<E, D, T>,
    spec: &AttentionSpec,
    lengths: &[usize],
) -> Seq3<E, D, T> {
    attention_blocks(q, k, v, spec, lengths, query_block(spec))
}

/// The additive mask of a block (0 where seen, −10⁹ where not) and its 0/1 visibility, both
/// broadcast to (batch, heads, queries, keys); `None` where every pair is visible.
struct BlockMask<E: Dtype, D: Storage<E>> {
    bias: Seq4<E, D, NoneTape>,
    keep: Seq4<E, D, NoneTape>,
}

fn block_mask<E: ComposedFloat, D: Device<E>>(
    dev: &D,
    spec: &AttentionSpec,
    lengths: &[usize],
    heads: usize,
    queries: Range<usize>,
    keys: Range<usize>,
    seq: usize,
) -> Option<BlockMask<E, D>> {
    let (batch, bq, bk) = (lengths.len(), queries.len(), keys.len());
    let shape = (batch, heads, bq, bk);
    let (zero, one, neg) = (E::zero(), E::one(), E::from_f64(-1e9).unwrap());
    // The pattern alone (causal, window), as for an unpadded example.
    let pattern = Visibility::new(spec, seq, seq);
    let padded = lengths.iter().any(|&len| len.min(seq) < keys.end);
    let patterned = !pattern.all_visible(queries.clone(), keys.clone());
    if !padded && !patterned {
        return None;
    }
    let mut bias = dev.zeros_like(&shape);
    let mut keep = dev.ones_like(&shape);
    if padded {
        let seen: Vec<bool> = lengths
            .iter()
            .flat_map(|&len| keys.clone().map(move |j| j < len.min(seq)))
            .collect();
        let pad_bias = dev.tensor_from_vec(
            seen.iter().map(|&s| if s { zero } else { neg }).collect(),
            (batch, bk),
        );
        let pad_keep = dev.tensor_from_vec(
            seen.iter().map(|&s| if s { one } else { zero }).collect(),
            (batch, bk),
        );
        bias = bias + pad_bias.broadcast_like::<_, Axes2<1, 2>>(&shape);
        keep = keep * pad_keep.broadcast_like::<_, Axes2<1, 2>>(&shape);
    }
    if patterned {
        let seen: Vec<bool> = queries
            .clone()
            .flat_map(|i| keys.clone().map(move |j| pattern.sees(i, j)))
            .collect();
        let pat_bias = dev.tensor_from_vec(
            seen.iter().map(|&s| if s { zero } else { neg }).collect(),
            (bq, bk),
        );
        let pat_keep = dev.tensor_from_vec(
            seen.iter().map(|&s| if s { one } else { zero }).collect(),
            (bq, bk),
        );
        bias = bias + pat_bias.broadcast_like::<_, Axes2<0, 1>>(&shape);
        keep = keep * pat_keep.broadcast_like::<_, Axes2<0, 1>>(&shape);
    }
    Some(BlockMask { bias, keep })
}

/// The keys any example's queries in `queries` see: the union of their key ranges.
fn union_key_range(
    spec: &AttentionSpec,
    lengths: &[usize],
    seq: usize,
    queries: Range<usize>,
) -> Range<usize> {
    let ranges: Vec<Range<usize>> = lengths
        .iter()
        .map(|&len| Visibility::new(spec, len, seq).key_range(queries.clone()))
        .filter(|r| !r.is_empty())
        .collect();
    let lo = ranges.iter().map(|r| r.start).min().unwrap_or(0);
    let hi = ranges.iter().map(|r| r.end).max().unwrap_or(0);
    lo..hi.max(lo)
}

/// Concatenates blocks along the sequence axis pairwise, so each value is copied
/// log₂(blocks) times rather than once per later block.
fn concat_blocks<E: ComposedFloat, D: Device<E>, T: Tape<E, D> + Merge<T>>(
    mut blocks: Vec<Seq4<E, D, T>>,
) -> Seq4<E, D, T> {
    while blocks.len() > 1 {
        let mut next = Vec::with_capacity(blocks.len().div_ceil(2));
        let mut iter = blocks.into_iter();
        while let Some(a) = iter.next() {
            next.push(match iter.next() {
                Some(b) => (a, b).concat_along(Axis::<2>),
                None => a,
            });
        }
        blocks = next;
    }
    blocks.pop().expect("a sequence has at least one block")
}

/// Attention with query blocks of `block` positions (see the module's notes).
pub(super) fn attention_blocks<E: ComposedFloat, D: Device<E>, T: Tape<E, D> + Merge<T>>(
    q: Seq3<E, D, T>,
    k: Seq3<E, D, T>,
    v: Seq3<E, D, T>,
    spec: &AttentionSpec,
    lengths: &[usize],
    block: usize,
) -> Seq3<E, D, T> {
    let (batch, seq, width) = *q.shape();
    let (heads, dh) = (spec.heads, width / spec.heads);
    let dev = q.device().clone();
    let split = |x: Seq3<E, D, T>| {
        x.reshape_like(&(batch, seq, heads, dh))
            .permute::<(usize, usize, usize, usize), Axes4<0, 2, 1, 3>>()
    };
    // Every block reads the (batch, heads, L, d_head) views through copies on fresh tapes
    // (the gradients meet at the views' ids); the views' own tapes, which lead back to the
    // layers that made q, k and v, join the output's once, at the end.
    let (q, tq) = split(q).split_tape();
    let (k, tk) = split(k).split_tape();
    let (v, tv) = split(v).split_tape();
    let scale = E::from_f64(1.0 / (dh as f64).sqrt()).unwrap();
    let mut outs: Vec<Seq4<E, D, T>> = Vec::with_capacity(seq.div_ceil(block.max(1)));
    for start in (0..seq).step_by(block.max(1)) {
        let queries = start..(start + block).min(seq);
        let keys = union_key_range(spec, lengths, seq, queries.clone());
        if keys.is_empty() {
            // No example sees any key from these queries: their outputs are zero.
            let zeros: Seq4<E, D, NoneTape> = dev.zeros_like(&(batch, heads, queries.len(), dh));
            outs.push(zeros.retaped::<T>());
            continue;
        }
        // Gathered rather than sliced: dfdx 0.13's CPU slice backward assigns its gradient
        // instead of adding it, which loses all but one block's share of a key (blocks'
        // key ranges overlap) and of q, k and v when they are one tensor; gather adds.
        let positions = |range: &Range<usize>| {
            let idx: Vec<usize> = (0..batch * heads).flat_map(|_| range.clone()).collect();
            dev.tensor_from_vec(idx, (batch, heads, range.len()))
        };
        let key_idx = positions(&keys);
        let qb: Seq4<E, D, T> = q.retaped::<T>().gather(positions(&queries));
        let kb: Seq4<E, D, T> = k.retaped::<T>().gather(key_idx.clone());
        let vb: Seq4<E, D, T> = v.retaped::<T>().gather(key_idx);
        let scores =
            qb.matmul(kb.permute::<(usize, usize, usize, usize), Axes4<0, 1, 3, 2>>()) * scale;
        let probs = match block_mask::<E, D>(&dev, spec, lengths, heads, queries, keys, seq) {
            // Rows that see no key get a uniform softmax; `keep` zeroes them.
            Some(mask) => (scores + mask.bias).softmax::<Axis<3>>() * mask.keep,
            None => scores.softmax::<Axis<3>>(),
        };
        outs.push(probs.matmul(vb));
    }
    // The layout change copies (the permuted tensor is not contiguous), so it is done on the
    // blocks' tape, which then takes the inputs' tapes.
    let (out, tape) = concat_blocks(outs)
        .permute::<(usize, usize, usize, usize), Axes4<0, 2, 1, 3>>()
        .reshape_like(&(batch, seq, width))
        .split_tape();
    out.put_tape(tape.merge(tq).merge(tk).merge(tv))
}
