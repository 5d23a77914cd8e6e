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
//!
//! Heads run in parallel (rayon over batch × heads), each thread with one reused workspace.
//! Q, K, V, O and dO are read in place as strided views of the (batch, length, heads·d_head)
//! buffers; only Kᵀ and Vᵀ are packed per head, so every block product has a row-major
//! right-hand side. Per-head results go to head-major buffers (disjoint slices per task) and
//! are scattered back once. Rows with no visible key output 0.

use std::ops::Range;

use rayon::prelude::*;

use super::mask::{AttentionSpec, Visibility};
use crate::engine::ops::blas::{gemm, padded_stride, MatRef};
use crate::engine::ops::zeroed;
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

    fn head_len(&self) -> usize {
        self.seq * self.d_head
    }

    /// Head `h` of example `b` as a seq × d_head view into a (batch, seq, d_model) buffer.
    fn head<'a, E>(&self, src: &'a [E], b: usize, h: usize) -> MatRef<'a, E> {
        let d = self.d_model();
        MatRef::rows(
            &src[b * self.seq * d + h * self.d_head..],
            self.seq,
            self.d_head,
            d,
        )
    }

    /// Copies head `h` of example `b` into `dst` as a contiguous seq × d_head matrix and views
    /// it. In place its rows lie d_model apart, so a block of 128 key rows falls on a sixteenth
    /// of the L1 cache's sets and is evicted while the next row tile streams it again.
    fn pack<'a, E: Copy>(&self, src: &[E], b: usize, h: usize, dst: &'a mut [E]) -> MatRef<'a, E> {
        let (d, dh) = (self.d_model(), self.d_head);
        for (i, row) in dst.chunks_exact_mut(dh).enumerate() {
            let at = (b * self.seq + i) * d + h * dh;
            row.copy_from_slice(&src[at..at + dh]);
        }
        MatRef::rows(dst, self.seq, dh, dh)
    }

    /// Row stride of a packed transposed head (see [`padded_stride`]).
    fn transposed_stride(&self) -> usize {
        padded_stride(self.seq)
    }

    /// Writes head `h` of example `b`, transposed to d_head × seq with rows
    /// [`Self::transposed_stride`] apart, into `dst`.
    fn pack_transposed<E: Copy>(&self, src: &[E], b: usize, h: usize, dst: &mut [E]) {
        let (d, stride) = (self.d_model(), self.transposed_stride());
        for i in 0..self.seq {
            let at = (b * self.seq + i) * d + h * self.d_head;
            for (c, &x) in src[at..at + self.d_head].iter().enumerate() {
                dst[c * stride + i] = x;
            }
        }
    }

    /// Packs head `h` of example `b`: Q, K and V contiguous, Kᵀ transposed (and Vᵀ when
    /// `transpose_v`, as the backward pass needs), and views them.
    fn pack_head<'a, E: Copy>(
        &self,
        [q, k, v]: [&[E]; 3],
        b: usize,
        h: usize,
        packed: &'a mut PackedHead<E>,
        transpose_v: bool,
    ) -> HeadViews<'a, E> {
        self.pack_transposed(k, b, h, &mut packed.k_t);
        if transpose_v {
            self.pack_transposed(v, b, h, &mut packed.v_t);
        }
        let stride = self.transposed_stride();
        HeadViews {
            q: self.pack(q, b, h, &mut packed.q),
            k: self.pack(k, b, h, &mut packed.k),
            v: self.pack(v, b, h, &mut packed.v),
            k_t: MatRef::rows(&packed.k_t, self.d_head, self.seq, stride),
            v_t: MatRef::rows(&packed.v_t, self.d_head, self.seq, stride),
        }
    }

    /// Moves head-major (batch, heads, seq, d_head) values into a (batch, seq, d_model)
    /// buffer, adding to it when `accumulate`.
    fn scatter_heads<E: KernelFloat>(&self, dst: &mut [E], heads: &[E], accumulate: bool) {
        let (d, dh, hl) = (self.d_model(), self.d_head, self.head_len());
        dst.par_chunks_mut(self.seq * d)
            .zip(heads.par_chunks(self.heads * hl))
            .for_each(|(dst, src)| {
                for (h, head) in src.chunks_exact(hl).enumerate() {
                    for (i, row) in head.chunks_exact(dh).enumerate() {
                        let out = &mut dst[i * d + h * dh..i * d + (h + 1) * dh];
                        if accumulate {
                            out.iter_mut().zip(row).for_each(|(o, &x)| *o += x);
                        } else {
                            out.copy_from_slice(row);
                        }
                    }
                }
            });
    }
}

/// The forward result: the output and what the backward pass needs besides its inputs.
pub(crate) struct ForwardOut<E> {
    /// (batch, seq, d_model).
    pub out: Vec<E>,
    /// Per (batch, head, row) log-sum-exp of the scaled scores; +∞ for rows that see no key.
    pub lse: Vec<E>,
}

/// One head's inputs, packed by the thread that processes it (see [`Dims::pack`]).
struct PackedHead<E> {
    q: Vec<E>,
    k: Vec<E>,
    v: Vec<E>,
    k_t: Vec<E>,
    v_t: Vec<E>,
}

/// Block scratch of one thread.
struct Scratch<E> {
    scores: Vec<E>,
    grad_scores: Vec<E>,
    row_max: Vec<E>,
    row_sum: Vec<E>,
    delta: Vec<E>,
}

/// Memory of one thread, reused across the heads it processes.
struct Workspace<E> {
    packed: PackedHead<E>,
    /// dO, packed like Q in the backward pass.
    grad_out: Vec<E>,
    scratch: Scratch<E>,
}

impl<E: KernelFloat> Workspace<E> {
    fn new(dims: &Dims) -> Self {
        let zeros = |n| vec![E::zero(); n];
        let transposed = dims.d_head * dims.transposed_stride();
        Workspace {
            packed: PackedHead {
                q: zeros(dims.head_len()),
                k: zeros(dims.head_len()),
                v: zeros(dims.head_len()),
                k_t: zeros(transposed),
                v_t: zeros(transposed),
            },
            grad_out: zeros(dims.head_len()),
            scratch: Scratch {
                scores: zeros(BLOCK_Q * BLOCK_K),
                grad_scores: zeros(BLOCK_Q * BLOCK_K),
                row_max: zeros(BLOCK_Q),
                row_sum: zeros(BLOCK_Q),
                delta: zeros(dims.seq),
            },
        }
    }
}

fn blocks(range: Range<usize>, size: usize) -> impl Iterator<Item = Range<usize>> {
    let end = range.end;
    range.step_by(size).map(move |s| s..(s + size).min(end))
}

/// Sets masked scores of the block to −∞.
fn mask_scores<E: KernelFloat>(s: &mut [E], vis: &Visibility, q: &Range<usize>, k: &Range<usize>) {
    let width = k.len();
    for (r, i) in q.clone().enumerate() {
        for (c, j) in k.clone().enumerate() {
            if !vis.sees(i, j) {
                s[r * width + c] = E::neg_infinity();
            }
        }
    }
}

/// Per-head inputs, as views.
struct HeadViews<'a, E> {
    q: MatRef<'a, E>,
    k: MatRef<'a, E>,
    v: MatRef<'a, E>,
    /// Kᵀ and Vᵀ (d_head × seq, rows [`Dims::transposed_stride`] apart).
    k_t: MatRef<'a, E>,
    v_t: MatRef<'a, E>,
}

/// Alg. 1 for one head; `out` (seq × d_head) starts at zero.
fn forward_head<E: KernelFloat>(
    x: &HeadViews<'_, E>,
    vis: &Visibility,
    scale: E,
    ws: &mut Scratch<E>,
    out: &mut [E],
    lse: &mut [E],
) {
    let (seq, dh) = (vis.seq, x.q.cols);
    for qb in blocks(0..seq, BLOCK_Q) {
        let nq = qb.len();
        let acc = &mut out[qb.start * dh..qb.end * dh];
        let (row_max, row_sum) = (&mut ws.row_max[..nq], &mut ws.row_sum[..nq]);
        row_max.fill(E::neg_infinity());
        row_sum.fill(E::zero());
        let q_blk = x.q.row_block(qb.start, nq);
        for kb in blocks(vis.key_range(qb.clone()), BLOCK_K) {
            let nk = kb.len();
            let s = &mut ws.scores[..nq * nk];
            gemm(s, nk, q_blk, x.k_t.col_block(kb.start, nk), scale, false);
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
                row_sum[r] = row_sum[r] * alpha + E::exp_shift_sum(row, m_new);
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
                x.v.row_block(kb.start, nk),
                E::one(),
                true,
            );
        }
        for r in 0..nq {
            if row_sum[r] > E::zero() {
                let inv = row_sum[r].recip();
                acc[r * dh..(r + 1) * dh].iter_mut().for_each(|o| *o *= inv);
                lse[qb.start + r] = row_max[r] + row_sum[r].ln();
            } else {
                lse[qb.start + r] = E::infinity();
            }
        }
    }
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
    let mut heads = zeroed(q.len());
    let mut lse = vec![E::zero(); dims.batch * dims.heads * dims.seq];
    heads
        .par_chunks_mut(dims.head_len())
        .zip(lse.par_chunks_mut(dims.seq))
        .enumerate()
        .for_each_init(
            || Workspace::new(&dims),
            |ws, (bh, (out, lse))| {
                out.fill(E::zero()); // written before it is read: see `backward`
                let (b, h) = (bh / dims.heads, bh % dims.heads);
                let vis = Visibility::new(spec, lengths[b], dims.seq);
                let views = dims.pack_head([q, k, v], b, h, &mut ws.packed, false);
                forward_head(&views, &vis, scale, &mut ws.scratch, out, lse);
            },
        );
    let mut out = zeroed(q.len());
    dims.scatter_heads(&mut out, &heads, false);
    ForwardOut { out, lse }
}

/// Per-head backward inputs besides the forward views.
struct HeadGrads<'a, E> {
    out: MatRef<'a, E>,
    grad_out: MatRef<'a, E>,
    lse: &'a [E],
}

/// Alg. 2 for one head; writes (adds) dQ, dK, dV (each seq × d_head, zeroed by the caller).
fn backward_head<E: KernelFloat>(
    x: &HeadViews<'_, E>,
    g: &HeadGrads<'_, E>,
    vis: &Visibility,
    scale: E,
    ws: &mut Scratch<E>,
    [dq, dk, dv]: [&mut [E]; 3],
) {
    let (seq, dh) = (vis.seq, x.q.cols);
    // Dᵢ = rowsum(dO ⊙ O).
    for (i, d) in ws.delta.iter_mut().enumerate() {
        let (o, go) = (
            &g.out.data[i * g.out.row_stride..],
            &g.grad_out.data[i * g.grad_out.row_stride..],
        );
        *d = (0..dh).map(|c| o[c] * go[c]).sum();
    }
    for kb in blocks(0..seq, BLOCK_K) {
        let nk = kb.len();
        let k_blk = x.k.row_block(kb.start, nk);
        let k_t_blk = x.k_t.col_block(kb.start, nk);
        let v_t_blk = x.v_t.col_block(kb.start, nk);
        for qb in blocks(vis.query_range(kb.clone()), BLOCK_Q) {
            let nq = qb.len();
            let p = &mut ws.scores[..nq * nk];
            let dp = &mut ws.grad_scores[..nq * nk];
            let q_blk = x.q.row_block(qb.start, nq);
            let do_blk = g.grad_out.row_block(qb.start, nq);
            gemm(p, nk, q_blk, k_t_blk, scale, false);
            if !vis.all_visible(qb.clone(), kb.clone()) {
                mask_scores(p, vis, &qb, &kb);
            }
            for (r, row) in p.chunks_exact_mut(nk).enumerate() {
                E::exp_shift_sum(row, g.lse[qb.start + r]);
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
                E::softmax_grad(ds, pr, ws.delta[qb.start + r]);
            }
            let ds = MatRef::rows(&dp[..], nq, nk, nk);
            gemm(&mut dq[qb.start * dh..], dh, ds, k_blk, scale, true);
            gemm(&mut dk[kb.start * dh..], dh, ds.t(), q_blk, scale, true);
        }
    }
}

/// The gradients of q, k and v, each head-major (batch, heads, seq, d_head); add them into the
/// inputs' gradients with [`scatter_grad`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<E: KernelFloat>(
    q: &[E],
    k: &[E],
    v: &[E],
    out: &[E],
    lse: &[E],
    grad_out: &[E],
    dims: Dims,
    spec: &AttentionSpec,
    lengths: &[usize],
) -> [Vec<E>; 3] {
    let scale = E::of(1.0 / (dims.d_head as f64).sqrt());
    let hl = dims.head_len();
    let [mut dq, mut dk, mut dv] = [zeroed(q.len()), zeroed(q.len()), zeroed(q.len())];
    dq.par_chunks_mut(hl)
        .zip(dk.par_chunks_mut(hl))
        .zip(dv.par_chunks_mut(hl))
        .enumerate()
        .for_each_init(
            || Workspace::new(&dims),
            |ws, (bh, ((dq, dk), dv))| {
                // Written before the products add into them: a fresh zeroed allocation maps
                // the shared zero page, and a read-then-write would take a copy-on-write fault
                // (with a TLB flush on every core) per page.
                for grad in [&mut *dq, &mut *dk, &mut *dv] {
                    grad.fill(E::zero());
                }
                let (b, h) = (bh / dims.heads, bh % dims.heads);
                let vis = Visibility::new(spec, lengths[b], dims.seq);
                let grads = HeadGrads {
                    out: dims.head(out, b, h),
                    grad_out: dims.pack(grad_out, b, h, &mut ws.grad_out),
                    lse: &lse[bh * dims.seq..(bh + 1) * dims.seq],
                };
                let views = dims.pack_head([q, k, v], b, h, &mut ws.packed, true);
                backward_head(&views, &grads, &vis, scale, &mut ws.scratch, [dq, dk, dv]);
            },
        );
    [dq, dk, dv]
}

/// Adds a head-major gradient from [`backward`] into a (batch, seq, d_model) gradient buffer.
pub(crate) fn scatter_grad<E: KernelFloat>(dims: Dims, dst: &mut [E], heads: &[E]) {
    dims.scatter_heads(dst, heads, true);
}
