//! MEGA's single-head attention over chunks, with its relative position bias and attention
//! dropout, as one op (Ma et al. 2023, "Mega: Moving Average Equipped Gated Attention",
//! §3.2 and §3.5; the reference `MovingAverageGatedAttention` of facebookresearch/mega,
//! `fairseq/modules/moving_average_gated_attention.py`).
//!
//! Input: rows of one chunk each, Q and K (R, C, z), V (R, C, e), the bias table w (2P − 1)
//! with P ≥ C, and each row's true length n_r (keys j ≥ n_r are padding). For a query i < n_r
//! of a row, over the keys j it sees (j < n_r, and j ≤ i when causal):
//!
//! - softmax: s_ij = q_i·k_j/√z + b_ij, a_i = softmax_j(s_i) (the reference's
//!   `softmax_attention`: q scaled first, the bias added unscaled);
//! - laplace: s_ij = q_i·k_j/m_i + b_ij, a_ij = laplace(s_ij) (eq. 14; `element_attention`),
//!   m_i the number of keys the query sees (n_r, or i + 1 when causal: the reference's
//!   `lengths` from the padding mask, replaced by the causal mask's row sums);
//!
//! with b_ij = w[j − i + P − 1], the reference's `SimpleRelativePositionalBias` (a learned
//! Toeplitz matrix: one scalar per relative offset; P is the chunk size, or the longest
//! input without chunks). Then o_i = Σ_j d_ij·a_ij·v_j, with d_ij the attention dropout
//! (`attention_dropout` applied to the weights before the product with V): 0 with
//! probability p, else 1/(1 − p). Queries i ≥ n_r (padding) output 0.
//!
//! The CPU kernel runs rows in parallel and one block of queries at a time against every key
//! of its row, so it holds one BLOCK_Q × C block of scores per thread (no R·C² tensor, no
//! L² for unchunked attention), and keeps only each softmax row's log-sum-exp for the
//! backward pass, which recomputes the scores. The dropout mask is a counter-based hash of
//! (seed, row, i, j), regenerated in the backward pass rather than stored. Backward, with
//! G = ∂L/∂O and g_ij = d_ij·(G_i·v_j):
//!
//! - ∂v_j += Σ_i d_ij·a_ij·G_i;
//! - ∂s_ij = a_ij·(g_ij − Σ_k a_ik·g_ik) (softmax) or g_ij·laplace′(s_ij) (laplace);
//! - ∂q_i += c_i·Σ_j ∂s_ij·k_j, ∂k_j += Σ_i c_i·∂s_ij·q_i (c_i = 1/√z or 1/m_i);
//! - ∂w[j − i + P − 1] += ∂s_ij.
//!
//! The composed version (dfdx ops, any device) materialises the (R, C, C) scores: it is the
//! CUDA path and the oracle of the kernel.

use std::ops::Range;

use dfdx::prelude::*;
use rayon::prelude::*;

use super::attention::Seq3;
use super::blas::{gemm, padded_stride, MatRef};
use super::laplace::{laplace_composed, laplace_slope, laplace_value};
use super::{
    add_into, add_into_parallel, grad_of, host, summed, take_grad, ComposedFloat, HostValues,
    KernelFloat,
};
use crate::engine::ops::zeroed;

/// Query rows per block of scores.
const BLOCK_Q: usize = 64;

/// The language's MEGA attention functions are the engine's.
pub use crate::spec::AttentionFunction;

/// How the rows attend, besides their inputs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChunkSpec {
    pub function: AttentionFunction,
    pub causal: bool,
    /// Dropout probability of the attention weights (0 outside training).
    pub dropout: f32,
    /// Seed of the dropout mask.
    pub seed: u64,
}

/// SplitMix64's output function (Steele, Lea & Flood 2014): a bijective 64-bit mixer.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The dropout mask of the attention weights: weight (i, j) of row r is kept when a hash of
/// (seed, r, i, j), read as a 53-bit uniform, is at least p. Being a function of the position,
/// the backward pass and the composed version regenerate it instead of storing R·C² values.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DropMask {
    seed: u64,
    /// Kept iff the hash's top 53 bits ≥ threshold = p·2⁵³.
    threshold: u64,
    /// 1/(1 − p), the kept weights' scale.
    scale: f64,
    chunk: u64,
}

impl DropMask {
    /// `None` when nothing is dropped.
    pub fn new(spec: &ChunkSpec, chunk: usize) -> Option<Self> {
        let p = f64::from(spec.dropout);
        (p > 0.0).then(|| DropMask {
            seed: mix(spec.seed),
            threshold: (p * (1u64 << 53) as f64) as u64,
            scale: 1.0 / (1.0 - p),
            chunk: chunk as u64,
        })
    }

    /// The multiplier d_ij of weight (i, j) of row r: 0 or 1/(1 − p).
    #[inline]
    pub(crate) fn factor(&self, row: usize, i: usize, j: usize) -> f64 {
        let index = (row as u64 * self.chunk + i as u64) * self.chunk + j as u64;
        if mix(self.seed ^ index) >> 11 >= self.threshold {
            self.scale
        } else {
            0.0
        }
    }
}

/// Sizes of a problem: R rows of C positions, widths z (queries, keys) and e (values), and the
/// bias table's P (2P − 1 entries).
#[derive(Clone, Copy, Debug)]
struct Geometry {
    rows: usize,
    chunk: usize,
    z: usize,
    e: usize,
    positions: usize,
}

impl Geometry {
    fn of(
        q: (usize, usize, usize),
        k: (usize, usize, usize),
        v: (usize, usize, usize),
        bias: usize,
        lengths: &[usize],
    ) -> Self {
        assert_eq!(q, k, "mega attention: q and k must have one shape");
        assert_eq!(
            (v.0, v.1),
            (q.0, q.1),
            "mega attention: v must have q's rows and chunk"
        );
        assert_eq!(lengths.len(), q.0, "mega attention: one length per row");
        assert!(
            bias % 2 == 1 && bias.div_ceil(2) >= q.1,
            "mega attention: the bias table needs 2P − 1 entries with P ≥ the chunk, got {bias} for chunk {}",
            q.1
        );
        Geometry {
            rows: q.0,
            chunk: q.1,
            z: q.2,
            e: v.2,
            positions: bias.div_ceil(2),
        }
    }

    /// The score scale c_i of query i of a row of `len` true positions.
    fn scale(&self, function: AttentionFunction, causal: bool, len: usize, i: usize) -> f64 {
        match function {
            AttentionFunction::Softmax => 1.0 / (self.z as f64).sqrt(),
            AttentionFunction::Laplace if causal => 1.0 / (i + 1) as f64,
            AttentionFunction::Laplace => 1.0 / len as f64,
        }
    }
}

/// The keys a block of queries needs: every true key, or those up to the block's last query.
fn key_end(queries: &Range<usize>, len: usize, causal: bool) -> usize {
    if causal {
        len.min(queries.end)
    } else {
        len
    }
}

fn blocks(range: Range<usize>, size: usize) -> impl Iterator<Item = Range<usize>> {
    let end = range.end;
    range.step_by(size).map(move |s| s..(s + size).min(end))
}

/// Scratch memory of one thread.
struct Workspace<E> {
    /// Kᵀ (z × C) and Vᵀ (e × C) of the current row.
    k_t: Vec<E>,
    v_t: Vec<E>,
    /// BLOCK_Q × C blocks: scores (then softmax probabilities), weights after dropout, and
    /// gradients.
    scores: Vec<E>,
    weights: Vec<E>,
    grads: Vec<E>,
}

impl<E: KernelFloat> Workspace<E> {
    fn new(g: &Geometry) -> Self {
        let zeros = |n| vec![E::zero(); n];
        Workspace {
            k_t: zeros(g.z * padded_stride(g.chunk)),
            v_t: zeros(g.e * padded_stride(g.chunk)),
            scores: zeros(BLOCK_Q * g.chunk),
            weights: zeros(BLOCK_Q * g.chunk),
            grads: zeros(BLOCK_Q * g.chunk),
        }
    }
}

/// Writes the first `len` rows of a row-major (C × width) matrix, transposed, into `dst`
/// (width × C, rows [`padded_stride`]`(C)` apart).
fn pack_transposed<E: Copy>(src: &[E], len: usize, width: usize, chunk: usize, dst: &mut [E]) {
    let stride = padded_stride(chunk);
    for (j, row) in src.chunks_exact(width).take(len).enumerate() {
        for (c, &x) in row.iter().enumerate() {
            dst[c * stride + j] = x;
        }
    }
}

/// One row's problem: its inputs (row-major C × width views) and settings.
struct RowProblem<'a, E> {
    g: Geometry,
    spec: &'a ChunkSpec,
    drop: Option<DropMask>,
    bias: &'a [E],
    row: usize,
    len: usize,
    q: &'a [E],
    k: &'a [E],
    v: &'a [E],
}

impl<E: KernelFloat> RowProblem<'_, E> {
    fn visible(&self, i: usize, j: usize) -> bool {
        !self.spec.causal || j <= i
    }

    /// s (nq × nk) ← c_i·q_i·k_j + w[j − i + P − 1], −∞ where the query does not see the key.
    fn scores(&self, s: &mut [E], queries: &Range<usize>, nk: usize, k_t: &[E]) {
        let (g, nq) = (&self.g, queries.len());
        gemm(
            s,
            nk,
            MatRef::rows(&self.q[queries.start * g.z..], nq, g.z, g.z),
            MatRef::rows(k_t, g.z, nk, padded_stride(g.chunk)),
            E::one(),
            false,
        );
        for (r, i) in queries.clone().enumerate() {
            let c = E::of(g.scale(self.spec.function, self.spec.causal, self.len, i));
            // Offset j − i + P − 1 for j = 0 is P − 1 − i ≥ 0, since i < C ≤ P.
            let bias = &self.bias[g.positions - 1 - i..][..nk];
            for (j, (x, &b)) in s[r * nk..(r + 1) * nk].iter_mut().zip(bias).enumerate() {
                *x = if self.visible(i, j) {
                    c * *x + b
                } else {
                    E::neg_infinity()
                };
            }
        }
    }

    /// The dropout factor d_ij (1 without dropout).
    fn factor(&self, i: usize, j: usize) -> E {
        self.drop
            .map_or(E::one(), |m| E::of(m.factor(self.row, i, j)))
    }

    /// Forward for one row: `out` (C × e) is zero on entry; `lse` (C) gets the softmax rows'
    /// log-sum-exp.
    fn forward(&self, ws: &mut Workspace<E>, out: &mut [E], lse: &mut [E]) {
        let g = self.g;
        pack_transposed(self.k, self.len, g.z, g.chunk, &mut ws.k_t);
        for queries in blocks(0..self.len, BLOCK_Q) {
            let (nq, nk) = (queries.len(), key_end(&queries, self.len, self.spec.causal));
            let s = &mut ws.scores[..nq * nk];
            self.scores(s, &queries, nk, &ws.k_t);
            for (r, i) in queries.clone().enumerate() {
                let row = &mut s[r * nk..(r + 1) * nk];
                match self.spec.function {
                    AttentionFunction::Softmax => {
                        // Every true query sees key 0, so the row has a finite maximum.
                        let max = E::row_max(row, E::neg_infinity());
                        let sum = E::exp_shift_sum(row, max);
                        let inv = sum.recip();
                        row.iter_mut().for_each(|x| *x *= inv);
                        lse[i] = max + sum.ln();
                    }
                    AttentionFunction::Laplace => {
                        for x in row.iter_mut() {
                            *x = if *x == E::neg_infinity() {
                                E::zero()
                            } else {
                                E::of(laplace_value(x.to_f64().unwrap()))
                            };
                        }
                    }
                }
                if self.drop.is_some() {
                    for (j, x) in row.iter_mut().enumerate() {
                        *x *= self.factor(i, j);
                    }
                }
            }
            gemm(
                &mut out[queries.start * g.e..],
                g.e,
                MatRef::rows(s, nq, nk, nk),
                MatRef::rows(self.v, nk, g.e, g.e),
                E::one(),
                false,
            );
        }
    }

    /// Backward for one row: adds into dq, dk (C × z), dv (C × e) and the bias gradient.
    fn backward(
        &self,
        ws: &mut Workspace<E>,
        grad_out: &[E],
        lse: &[E],
        [dq, dk, dv]: [&mut [E]; 3],
        dbias: &mut [E],
    ) {
        let g = self.g;
        pack_transposed(self.k, self.len, g.z, g.chunk, &mut ws.k_t);
        pack_transposed(self.v, self.len, g.e, g.chunk, &mut ws.v_t);
        for queries in blocks(0..self.len, BLOCK_Q) {
            let (nq, nk) = (queries.len(), key_end(&queries, self.len, self.spec.causal));
            let s = &mut ws.scores[..nq * nk];
            let a = &mut ws.weights[..nq * nk];
            let gs = &mut ws.grads[..nq * nk];
            self.scores(s, &queries, nk, &ws.k_t);
            let grad_blk = MatRef::rows(&grad_out[queries.start * g.e..], nq, g.e, g.e);
            // gs = G·Vᵀ: ∂L/∂(weights after dropout).
            gemm(
                gs,
                nk,
                grad_blk,
                MatRef::rows(&ws.v_t, g.e, nk, padded_stride(g.chunk)),
                E::one(),
                false,
            );
            for (r, i) in queries.clone().enumerate() {
                let span = r * nk..(r + 1) * nk;
                let (s, a, gs) = (&mut s[span.clone()], &mut a[span.clone()], &mut gs[span]);
                match self.spec.function {
                    AttentionFunction::Softmax => {
                        // s ← the probabilities, recomputed from the kept log-sum-exp.
                        E::exp_shift_sum(s, lse[i]);
                        let mut delta = E::zero();
                        for (j, ((p, w), gr)) in
                            s.iter().zip(a.iter_mut()).zip(gs.iter_mut()).enumerate()
                        {
                            let d = self.factor(i, j);
                            *w = *p * d;
                            *gr *= d;
                            delta += *p * *gr;
                        }
                        E::softmax_grad(gs, s, delta);
                    }
                    AttentionFunction::Laplace => {
                        for (j, ((x, w), gr)) in
                            s.iter().zip(a.iter_mut()).zip(gs.iter_mut()).enumerate()
                        {
                            if *x == E::neg_infinity() {
                                *w = E::zero();
                                *gr = E::zero();
                                continue;
                            }
                            let x = x.to_f64().unwrap();
                            let d = self.factor(i, j);
                            *w = E::of(laplace_value(x)) * d;
                            *gr *= d * E::of(laplace_slope(x));
                        }
                    }
                }
                // ∂w[j − i + P − 1] += ∂s_ij, then ∂s is scaled by c_i for q and k.
                let offsets = &mut dbias[g.positions - 1 - i..][..nk];
                offsets
                    .iter_mut()
                    .zip(gs.iter())
                    .for_each(|(b, &x)| *b += x);
                let c = E::of(g.scale(self.spec.function, self.spec.causal, self.len, i));
                gs.iter_mut().for_each(|x| *x *= c);
            }
            let (a, gs) = (
                MatRef::rows(&*a, nq, nk, nk),
                MatRef::rows(&*gs, nq, nk, nk),
            );
            gemm(dv, g.e, a.t(), grad_blk, E::one(), true);
            gemm(
                &mut dq[queries.start * g.z..],
                g.z,
                gs,
                MatRef::rows(self.k, nk, g.z, g.z),
                E::one(),
                true,
            );
            gemm(
                dk,
                g.z,
                gs.t(),
                MatRef::rows(&self.q[queries.start * g.z..], nq, g.z, g.z),
                E::one(),
                true,
            );
        }
    }
}

/// The rows' problems share everything but the row index and the true length.
struct Problem<'a, E> {
    g: Geometry,
    spec: &'a ChunkSpec,
    drop: Option<DropMask>,
    bias: &'a [E],
    lengths: &'a [usize],
    q: &'a [E],
    k: &'a [E],
    v: &'a [E],
}

impl<'a, E: KernelFloat> Problem<'a, E> {
    fn row(&self, r: usize) -> RowProblem<'a, E> {
        let g = self.g;
        RowProblem {
            g,
            spec: self.spec,
            drop: self.drop,
            bias: self.bias,
            row: r,
            len: self.lengths[r].min(g.chunk),
            q: &self.q[r * g.chunk * g.z..(r + 1) * g.chunk * g.z],
            k: &self.k[r * g.chunk * g.z..(r + 1) * g.chunk * g.z],
            v: &self.v[r * g.chunk * g.e..(r + 1) * g.chunk * g.e],
        }
    }

    /// The output (R, C, e) and the per-position log-sum-exp (R, C).
    fn forward(&self) -> (Vec<E>, Vec<E>) {
        let g = self.g;
        let mut out = zeroed(g.rows * g.chunk * g.e);
        let mut lse = vec![E::zero(); g.rows * g.chunk];
        out.par_chunks_mut((g.chunk * g.e).max(1))
            .zip(lse.par_chunks_mut(g.chunk.max(1)))
            .enumerate()
            .for_each_init(
                || Workspace::new(&g),
                |ws, (r, (out, lse))| self.row(r).forward(ws, out, lse),
            );
        (out, lse)
    }

    /// ∂q, ∂k, ∂v and ∂w from ∂L/∂O.
    fn backward(&self, lse: &[E], grad_out: &[E]) -> [Vec<E>; 4] {
        let g = self.g;
        let (qk, vs) = (g.chunk * g.z, g.chunk * g.e);
        let mut dq = zeroed(g.rows * qk);
        let mut dk = zeroed(g.rows * qk);
        let mut dv = zeroed(g.rows * vs);
        let n_bias = 2 * g.positions - 1;
        let dbias = dq
            .par_chunks_mut(qk.max(1))
            .zip(dk.par_chunks_mut(qk.max(1)))
            .zip(dv.par_chunks_mut(vs.max(1)))
            .enumerate()
            .fold(
                || (Workspace::new(&g), vec![E::zero(); n_bias]),
                |(mut ws, mut dbias), (r, ((dq, dk), dv))| {
                    self.row(r).backward(
                        &mut ws,
                        &grad_out[r * vs..(r + 1) * vs],
                        &lse[r * g.chunk..(r + 1) * g.chunk],
                        [dq, dk, dv],
                        &mut dbias,
                    );
                    (ws, dbias)
                },
            )
            .map(|(_, dbias)| dbias)
            .reduce(|| vec![E::zero(); n_bias], summed);
        [dq, dk, dv, dbias]
    }
}

/// The inputs copied to the host, kept for the backward pass.
struct HostInputs<E: Unit> {
    g: Geometry,
    spec: ChunkSpec,
    lengths: Vec<usize>,
    q: HostValues<E>,
    k: HostValues<E>,
    v: HostValues<E>,
    bias: HostValues<E>,
}

impl<E: KernelFloat> HostInputs<E> {
    /// The problem over these inputs; its dropout mask is redrawn from the spec's seed, so the
    /// forward and backward passes see the same one.
    fn problem(&self) -> Problem<'_, E> {
        Problem {
            g: self.g,
            spec: &self.spec,
            drop: DropMask::new(&self.spec, self.g.chunk),
            bias: &self.bias,
            lengths: &self.lengths,
            q: &self.q,
            k: &self.k,
            v: &self.v,
        }
    }
}

/// MEGA's chunked attention on the CPU: q, k (R, C, z), v (R, C, e), bias (2P − 1) →
/// (R, C, e).
pub(crate) fn mega_attention_cpu<E: KernelFloat, T: Tape<E, Cpu> + Merge<T>>(
    q: Seq3<E, Cpu, T>,
    k: Seq3<E, Cpu, T>,
    v: Seq3<E, Cpu, T>,
    bias: Tensor<(usize,), E, Cpu, T>,
    spec: &ChunkSpec,
    lengths: &[usize],
) -> Result<Seq3<E, Cpu, T>, CpuError> {
    let g = Geometry::of(*q.shape(), *k.shape(), *v.shape(), bias.shape().0, lengths);
    let (q, tq) = q.try_contiguous()?.split_tape();
    let (k, tk) = k.try_contiguous()?.split_tape();
    let (v, tv) = v.try_contiguous()?.split_tape();
    let (bias, tb) = bias.try_contiguous()?.split_tape();
    let mut tape = tq.merge(tk).merge(tv).merge(tb);
    let inputs = HostInputs {
        g,
        spec: *spec,
        lengths: lengths.to_vec(),
        q: host(&q)?,
        k: host(&k)?,
        v: host(&v)?,
        bias: host(&bias)?,
    };
    let (out, lse) = inputs.problem().forward();
    let out = q
        .device()
        .try_tensor_from_vec(out, (g.rows, g.chunk, g.e))?;
    let out_ghost = out.ghost();
    let (q, k, v, bias) = (q.ghost(), k.ghost(), v.ghost(), bias.ghost());
    tape.add_backward_op(move |grads| {
        let grad_out = take_grad!(grads, &out_ghost);
        let parts = inputs.problem().backward(&lse, &grad_out);
        // Each gradient is added through its own borrow (q and k could be one tensor).
        for (t, part) in [&q, &k].into_iter().zip(&parts) {
            add_into_parallel(grad_of!(grads, t), part);
        }
        add_into_parallel(grad_of!(grads, &v), &parts[2]);
        add_into(grad_of!(grads, &bias), &parts[3]);
        Ok(())
    });
    Ok(out.put_tape(tape))
}

/// Per (row, query, key) tables of the composed version, row-major (R, C, C): which keys each
/// query sees (1/0; padded queries see none), and the dropout factors.
fn tables<E: ComposedFloat>(spec: &ChunkSpec, lengths: &[usize], chunk: usize) -> (Vec<E>, Vec<E>) {
    let drop = DropMask::new(spec, chunk);
    let cells = lengths.len() * chunk * chunk;
    let (mut keep, mut factors) = (Vec::with_capacity(cells), Vec::with_capacity(cells));
    let of = |x: f64| E::from_f64(x).unwrap();
    for (r, &len) in lengths.iter().enumerate() {
        let len = len.min(chunk);
        for i in 0..chunk {
            for j in 0..chunk {
                let seen = i < len && j < len && (!spec.causal || j <= i);
                keep.push(of(if seen { 1.0 } else { 0.0 }));
                factors.push(of(drop.map_or(1.0, |m| m.factor(r, i, j))));
            }
        }
    }
    (keep, factors)
}

/// The same attention from dfdx ops on any device; materialises the (R, C, C) scores.
pub(crate) fn mega_attention_composed<E: ComposedFloat, D: Device<E>, T: Tape<E, D> + Merge<T>>(
    q: Seq3<E, D, T>,
    k: Seq3<E, D, T>,
    v: Seq3<E, D, T>,
    bias: Tensor<(usize,), E, D, T>,
    spec: &ChunkSpec,
    lengths: &[usize],
) -> Seq3<E, D, T> {
    let g = Geometry::of(*q.shape(), *k.shape(), *v.shape(), bias.shape().0, lengths);
    let (rows, chunk) = (g.rows, g.chunk);
    let dev = q.device().clone();
    let scores_shape = (rows, chunk, chunk);
    // The Toeplitz bias b_ij = w[j − i + P − 1], gathered from the table.
    let offsets: Vec<usize> = (0..chunk)
        .flat_map(|i| (0..chunk).map(move |j| j + g.positions - 1 - i))
        .collect();
    let bias = bias
        .gather(dev.tensor_from_vec(offsets, (chunk * chunk,)))
        .reshape_like(&(chunk, chunk))
        .broadcast_like::<_, Axis<0>>(&scores_shape);
    let (keep, factors) = tables::<E>(spec, lengths, chunk);
    let keep = dev.tensor_from_vec(keep, scores_shape);
    let scales: Vec<E> = lengths
        .iter()
        .flat_map(|&len| {
            let len = len.min(chunk);
            (0..chunk).map(move |i| {
                let c = if i < len {
                    g.scale(spec.function, spec.causal, len, i)
                } else {
                    0.0
                };
                E::from_f64(c).unwrap()
            })
        })
        .collect();
    let scales = dev
        .tensor_from_vec(scales, (rows, chunk))
        .broadcast_like::<_, Axis<2>>(&scores_shape);
    let scores = q.matmul(k.permute::<_, Axes3<0, 2, 1>>()) * scales + bias;
    let weights = match spec.function {
        AttentionFunction::Softmax => {
            // Unseen keys get −10⁹ before the softmax, and `keep` zeroes padded queries.
            let hidden = keep.clone().negate() + E::from_f64(1.0).unwrap();
            let masked = scores - hidden * E::from_f64(1e9).unwrap();
            masked.softmax::<Axis<2>>() * keep
        }
        AttentionFunction::Laplace => laplace_composed(scores) * keep,
    };
    let weights = if spec.dropout > 0.0 {
        weights * dev.tensor_from_vec(factors, scores_shape)
    } else {
        weights
    };
    weights.matmul(v)
}

#[cfg(test)]
mod tests;
