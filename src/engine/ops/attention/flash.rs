//! The fused attention kernels: streaming softmax over key blocks, never materialising the
//! L×L score matrix (memory O(L·d_head) per head plus one block of scores).
//!
//! Forward: FlashAttention-2 (Dao 2023), Alg. 1. For each query block Qᵢ the running row
//! maximum m, normaliser ℓ and unnormalised output Õ are updated key block by key block:
//!   S = s·Qᵢ Kⱼᵀ,  m' = max(m, rowmax S),  P = exp(S − m'),
//!   ℓ ← e^{m−m'}ℓ + rowsum P,  Õ ← e^{m−m'}Õ + P Vⱼ,
//! and at the end O = Õ/ℓ with the log-sum-exp LSE = m + ln ℓ kept for the backward pass.
//! Backward: Alg. 2, recomputing P = exp(s·Qᵢ Kⱼᵀ − LSE) block by block, with
//! Dᵢ = rowsum(dO ⊙ O): dVⱼ += Pᵀ dOᵢ, dP = dOᵢ Vⱼᵀ, dS = P ⊙ (dP − D),
//! dQᵢ += s·dS Kⱼ, dKⱼ += s·dSᵀ Qᵢ.
//! Heads run in parallel (rayon over batch × heads); rows with no visible key output 0.

use rayon::prelude::*;

use super::mask::{AttentionSpec, Visibility};
use crate::engine::ops::blas::{gemm, MatRef};
use crate::engine::ops::KernelFloat;

/// Query rows per block.
const BLOCK_Q: usize = 64;
/// Key rows per block.
const BLOCK_K: usize = 128;

/// Sizes of a (batch, length, heads × d_head) attention problem.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dims {
    pub batch: usize,
    pub seq: usize,
    pub heads: usize,
    pub d_head: usize,
}

impl Dims {
    fn d_model(&self) -> usize {
        self.heads * self.d_head
    }

    /// Copies head `h` of example `b` out of a (batch, seq, d_model) buffer into seq × d_head.
    fn gather<E: Copy>(&self, src: &[E], b: usize, h: usize) -> Vec<E> {
        let d = self.d_model();
        let mut out = Vec::with_capacity(self.seq * self.d_head);
        for i in 0..self.seq {
            let at = (b * self.seq + i) * d + h * self.d_head;
            out.extend_from_slice(&src[at..at + self.d_head]);
        }
        out
    }

    /// Head `h` of example `b`, transposed to d_head × seq, so products with Kᵀ or Vᵀ read a
    /// row-major operand.
    fn gather_transposed<E: Copy + Default>(&self, src: &[E], b: usize, h: usize) -> Vec<E> {
        let d = self.d_model();
        let mut out = vec![E::default(); self.seq * self.d_head];
        for i in 0..self.seq {
            let at = (b * self.seq + i) * d + h * self.d_head;
            for (c, &x) in src[at..at + self.d_head].iter().enumerate() {
                out[c * self.seq + i] = x;
            }
        }
        out
    }

    /// Adds a seq × d_head head buffer into its place in a (batch, seq, d_model) buffer.
    fn scatter_add<E: KernelFloat>(&self, dst: &mut [E], head: &[E], b: usize, h: usize) {
        let d = self.d_model();
        for (i, row) in head.chunks_exact(self.d_head).enumerate() {
            let at = (b * self.seq + i) * d + h * self.d_head;
            for (x, &y) in dst[at..at + self.d_head].iter_mut().zip(row) {
                *x += y;
            }
        }
    }
}

/// What the forward pass keeps for the backward pass besides its inputs.
pub(crate) struct ForwardOut<E> {
    pub out: Vec<E>,
    /// Per (batch, head, row) log-sum-exp of the scaled scores; +∞ for rows that see no key.
    pub lse: Vec<E>,
}

fn blocks(
    range: std::ops::Range<usize>,
    size: usize,
) -> impl Iterator<Item = std::ops::Range<usize>> {
    let end = range.end;
    range.step_by(size).map(move |s| s..(s + size).min(end))
}

/// Sets masked scores of the block to −∞.
fn mask_scores<E: KernelFloat>(
    s: &mut [E],
    vis: &Visibility,
    q: &std::ops::Range<usize>,
    k: &std::ops::Range<usize>,
) {
    let width = k.len();
    for (r, i) in q.clone().enumerate() {
        for (c, j) in k.clone().enumerate() {
            if !vis.sees(i, j) {
                s[r * width + c] = E::neg_infinity();
            }
        }
    }
}

fn forward_head<E: KernelFloat>(
    q: &[E],
    k_t: &[E],
    v: &[E],
    vis: &Visibility,
    dh: usize,
    scale: E,
) -> (Vec<E>, Vec<E>) {
    let seq = vis.seq;
    let mut out = vec![E::zero(); seq * dh];
    let mut lse = vec![E::infinity(); seq];
    let mut s = [E::zero(); BLOCK_Q * BLOCK_K];
    let mut row_max = [E::neg_infinity(); BLOCK_Q];
    let mut row_sum = [E::zero(); BLOCK_Q];
    for qb in blocks(0..seq, BLOCK_Q) {
        let nq = qb.len();
        let acc = &mut out[qb.start * dh..qb.end * dh];
        row_max[..nq].fill(E::neg_infinity());
        row_sum[..nq].fill(E::zero());
        let q_blk = MatRef::rows(&q[qb.start * dh..], nq, dh, dh);
        for kb in blocks(vis.key_range(qb.clone()), BLOCK_K) {
            let nk = kb.len();
            let s = &mut s[..nq * nk];
            gemm(
                s,
                nk,
                q_blk,
                MatRef::rows(&k_t[kb.start..], dh, nk, seq),
                scale,
                false,
            );
            if !vis.all_visible(qb.clone(), kb.clone()) {
                mask_scores(s, vis, &qb, &kb);
            }
            for r in 0..nq {
                let row = &mut s[r * nk..(r + 1) * nk];
                let m_new = E::row_max(row, row_max[r]);
                if m_new == E::neg_infinity() {
                    row.fill(E::zero()); // nothing visible yet in this row: P = 0
                    continue;
                }
                let alpha = (row_max[r] - m_new).exp();
                let sum = E::exp_shift_sum(row, m_new);
                row_sum[r] = row_sum[r] * alpha + sum;
                row_max[r] = m_new;
                if alpha != E::one() {
                    acc[r * dh..(r + 1) * dh]
                        .iter_mut()
                        .for_each(|o| *o *= alpha);
                }
            }
            gemm(
                acc,
                dh,
                MatRef::rows(s, nq, nk, nk),
                MatRef::rows(&v[kb.start * dh..], nk, dh, dh),
                E::one(),
                true,
            );
        }
        for r in 0..nq {
            if row_sum[r] > E::zero() {
                let inv = row_sum[r].recip();
                acc[r * dh..(r + 1) * dh].iter_mut().for_each(|o| *o *= inv);
                lse[qb.start + r] = row_max[r] + row_sum[r].ln();
            }
        }
    }
    (out, lse)
}

/// Attention of (batch, seq, heads·d_head) inputs; `lengths` are the true lengths per example.
pub(crate) fn forward<E: KernelFloat>(
    q: &[E],
    k: &[E],
    v: &[E],
    dims: Dims,
    spec: &AttentionSpec,
    lengths: &[usize],
) -> ForwardOut<E> {
    let scale = E::of(1.0 / (dims.d_head as f64).sqrt());
    let heads: Vec<(Vec<E>, Vec<E>)> = (0..dims.batch * dims.heads)
        .into_par_iter()
        .map(|bh| {
            let (b, h) = (bh / dims.heads, bh % dims.heads);
            let vis = Visibility::new(spec, lengths[b], dims.seq);
            let (qh, kh, vh) = (
                dims.gather(q, b, h),
                dims.gather_transposed(k, b, h),
                dims.gather(v, b, h),
            );
            forward_head(&qh, &kh, &vh, &vis, dims.d_head, scale)
        })
        .collect();
    let mut out = vec![E::zero(); q.len()];
    let mut lse = Vec::with_capacity(dims.batch * dims.heads * dims.seq);
    for (bh, (o, l)) in heads.into_iter().enumerate() {
        dims.scatter_add(&mut out, &o, bh / dims.heads, bh % dims.heads);
        lse.extend_from_slice(&l);
    }
    ForwardOut { out, lse }
}

/// The gathered per-head tensors the backward pass reads.
struct HeadInputs<'a, E> {
    q: &'a [E],
    k: &'a [E],
    /// Kᵀ and Vᵀ, d_head × seq.
    k_t: &'a [E],
    v_t: &'a [E],
    grad_out: &'a [E],
    lse: &'a [E],
    /// Dᵢ = rowsum(dO ⊙ O).
    delta: &'a [E],
}

/// Returns (dQ, dK, dV) of one head, each seq × d_head.
fn backward_head<E: KernelFloat>(
    x: &HeadInputs<'_, E>,
    vis: &Visibility,
    dh: usize,
    scale: E,
) -> [Vec<E>; 3] {
    let seq = vis.seq;
    let (mut dq, mut dk, mut dv) = (
        vec![E::zero(); seq * dh],
        vec![E::zero(); seq * dh],
        vec![E::zero(); seq * dh],
    );
    let mut p = [E::zero(); BLOCK_Q * BLOCK_K];
    let mut dp = [E::zero(); BLOCK_Q * BLOCK_K];
    for kb in blocks(0..seq, BLOCK_K) {
        let nk = kb.len();
        let k_blk = MatRef::rows(&x.k[kb.start * dh..], nk, dh, dh);
        let k_t_blk = MatRef::rows(&x.k_t[kb.start..], dh, nk, seq);
        let v_t_blk = MatRef::rows(&x.v_t[kb.start..], dh, nk, seq);
        for qb in blocks(vis.query_range(kb.clone()), BLOCK_Q) {
            let nq = qb.len();
            let p = &mut p[..nq * nk];
            let dp = &mut dp[..nq * nk];
            let q_blk = MatRef::rows(&x.q[qb.start * dh..], nq, dh, dh);
            let do_blk = MatRef::rows(&x.grad_out[qb.start * dh..], nq, dh, dh);
            gemm(p, nk, q_blk, k_t_blk, scale, false);
            if !vis.all_visible(qb.clone(), kb.clone()) {
                mask_scores(p, vis, &qb, &kb);
            }
            for (r, row) in p.chunks_exact_mut(nk).enumerate() {
                let lse = x.lse[qb.start + r];
                E::exp_shift_sum(row, lse);
            }
            gemm(
                &mut dv[kb.start * dh..],
                dh,
                MatRef::rows(p, nq, nk, nk).t(),
                do_blk,
                E::one(),
                true,
            );
            gemm(dp, nk, do_blk, v_t_blk, E::one(), false);
            for (r, (ds, pr)) in dp.chunks_exact_mut(nk).zip(p.chunks_exact(nk)).enumerate() {
                E::softmax_grad(ds, pr, x.delta[qb.start + r]);
            }
            let ds = MatRef::rows(&dp[..], nq, nk, nk);
            gemm(&mut dq[qb.start * dh..], dh, ds, k_blk, scale, true);
            gemm(&mut dk[kb.start * dh..], dh, ds.t(), q_blk, scale, true);
        }
    }
    [dq, dk, dv]
}

/// Accumulates the gradients of q, k and v into `grads` (each batch × seq × d_model).
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<E: KernelFloat>(
    q: &[E],
    k: &[E],
    v: &[E],
    fwd: &ForwardOut<E>,
    grad_out: &[E],
    dims: Dims,
    spec: &AttentionSpec,
    lengths: &[usize],
    grads: [&mut [E]; 3],
) {
    let scale = E::of(1.0 / (dims.d_head as f64).sqrt());
    let dh = dims.d_head;
    let heads: Vec<[Vec<E>; 3]> = (0..dims.batch * dims.heads)
        .into_par_iter()
        .map(|bh| {
            let (b, h) = (bh / dims.heads, bh % dims.heads);
            let vis = Visibility::new(spec, lengths[b], dims.seq);
            let (o, go) = (dims.gather(&fwd.out, b, h), dims.gather(grad_out, b, h));
            let delta: Vec<E> = o
                .chunks_exact(dh)
                .zip(go.chunks_exact(dh))
                .map(|(o, g)| o.iter().zip(g).map(|(&a, &b)| a * b).sum())
                .collect();
            let inputs = HeadInputs {
                q: &dims.gather(q, b, h),
                k: &dims.gather(k, b, h),
                k_t: &dims.gather_transposed(k, b, h),
                v_t: &dims.gather_transposed(v, b, h),
                grad_out: &go,
                lse: &fwd.lse[bh * dims.seq..(bh + 1) * dims.seq],
                delta: &delta,
            };
            backward_head(&inputs, &vis, dh, scale)
        })
        .collect();
    let [gq, gk, gv] = grads;
    for (bh, [dq, dk, dv]) in heads.into_iter().enumerate() {
        let (b, h) = (bh / dims.heads, bh % dims.heads);
        dims.scatter_add(gq, &dq, b, h);
        dims.scatter_add(gk, &dk, b, h);
        dims.scatter_add(gv, &dv, b, h);
    }
}
