//! The convolution kernel of DLR (Gupta, Mehta & Berant 2022, §3): the diagonal linear RNN
//! x_l = λ ⊙ x_{l−1} + u_l, y_l = Re(W·x_l) unrolls into the convolution y = K ∗ u with
//!
//!   K[k, h, l] = Re Σ_n W[k, h, n]·λ_n^l,   l < L,
//!
//! for N complex states that are not conjugate-paired (hence Re, not S4D's 2·Re). Unlike S4D's
//! [`vandermonde`](super::vandermonde), λ is one vector shared by all H channels (as in §3 and
//! the reference `DLRKernel`), so the Vandermonde matrix V[n, l] = λ_n^l is built once, N·L
//! powers instead of K·H·N·L, and the kernel is a real matrix product:
//!
//!   K = W_re·V_re − W_im·V_im = [W_re | W_im]·S,   S = [V_re; −V_im]   (2N × L),
//!
//! one (K·H × 2N)·(2N × L) product on the engine's matrix kernel.
//!
//! Backward, with G = ∂L/∂K (K·H × L) and complex gradients ∂L/∂Re + i·∂L/∂Im:
//!
//!   ∂L/∂W_re = G·V_reᵀ,   ∂L/∂W_im = −G·V_imᵀ   (together G·Sᵀ),
//!   ∂L/∂ζ_n = Σ_l l·conj(M[n, l]·λ_n^l),   M = W_reᵀ·G + i·W_imᵀ·G   (N × L),
//!
//! where ζ = log λ (the layer's −ρ² + iθ; the chain rule to ρ and θ is dfdx's). The second
//! follows from ∂λ_n^l/∂ζ_n = l·λ_n^l with K real, and costs one more product of the same size.
//!
//! The CPU kernel builds the powers by repeated multiplication in f64 (error about L·ε₆₄, so
//! exact to f32 rounding for L = 16,384, where l·θ rounded to f32 is already off by up to
//! 4·10⁻³ rad) and rounds them to the element type for the products, which run in parallel
//! over blocks of rows. The backward keeps only ζ and W and rebuilds S, O(N·L) and cheap beside
//! the products, rather than holding 2N·L values per layer between the passes.
//!
//! The composed form here, exp(l·ζ) from dfdx ops and its matmul, is the test oracle; on other
//! devices DLR runs the per-channel recurrence with λ broadcast
//! ([`shared_diagonal_ssm_composed`](super::diagonal::shared_diagonal_ssm_composed)).

use dfdx::prelude::*;
use num_complex::Complex64;
use rayon::prelude::*;

use super::vandermonde::Cube;
use super::{accumulate_parts, complex, exp_complex};
use crate::engine::ops::blas::{gemm, transpose, MatRef};
use crate::engine::ops::zeroed;
#[cfg(test)]
use crate::engine::ops::ComposedFloat;
use crate::engine::ops::{grad_of, host, take_grad, KernelFloat};

pub(crate) type Vector<E, D, T> = Tensor<(usize,), E, D, T>;

/// Rows of K (and of G) per parallel task.
const ROWS_PER_TASK: usize = 16;
/// Modes per parallel task of ∂L/∂ζ.
const MODES_PER_TASK: usize = 8;

/// S = [Re V; −Im V] (2N × `len`, row-major) for λ = exp(ζ): row n holds Re λ_n^l, row N + n
/// holds −Im λ_n^l, the signs that make K = [W_re | W_im]·S.
fn basis<E: KernelFloat>(zeta: &[Complex64], len: usize) -> Vec<E> {
    let modes = zeta.len();
    let mut s = vec![E::zero(); 2 * modes * len];
    let (re, im) = s.split_at_mut(modes * len);
    re.par_chunks_mut(len.max(1))
        .zip(im.par_chunks_mut(len.max(1)))
        .zip(zeta)
        .for_each(|((re, im), z)| {
            let lambda = exp_complex(z.re, z.im);
            let mut power = Complex64::new(1.0, 0.0);
            for (r, i) in re.iter_mut().zip(im) {
                *r = E::of(power.re);
                *i = E::of(-power.im);
                power *= lambda;
            }
        });
    s
}

/// K (rows × `len`) = W_re·S_top + W_im·S_bottom, W (rows × N) as its two parts.
fn kernel_forward<E: KernelFloat>(
    w_re: &[E],
    w_im: &[E],
    s: &[E],
    modes: usize,
    len: usize,
) -> Vec<E> {
    let rows = w_re.len() / modes;
    let mut out = zeroed(rows * len);
    let (top, bottom) = s.split_at(modes * len);
    out.par_chunks_mut((ROWS_PER_TASK * len).max(1))
        .zip(w_re.par_chunks(ROWS_PER_TASK * modes))
        .zip(w_im.par_chunks(ROWS_PER_TASK * modes))
        .for_each(|((out, w_re), w_im)| {
            let r = w_re.len() / modes;
            let (w_re, w_im) = (
                MatRef::rows(w_re, r, modes, modes),
                MatRef::rows(w_im, r, modes, modes),
            );
            gemm(
                out,
                len,
                w_re,
                MatRef::rows(top, modes, len, len),
                E::one(),
                false,
            );
            gemm(
                out,
                len,
                w_im,
                MatRef::rows(bottom, modes, len, len),
                E::one(),
                true,
            );
        });
    out
}

/// ∂L/∂W += G·Sᵀ, split into the parts: ∂W_re += G·S_topᵀ, ∂W_im += G·S_bottomᵀ.
fn accumulate_grad_w<E: KernelFloat>(
    gw_re: &mut [E],
    gw_im: &mut [E],
    g: &[E],
    s: &[E],
    modes: usize,
    len: usize,
) {
    let s_t = transpose(s, 2 * modes, len);
    let (top_t, bottom_t) = (
        MatRef::rows(&s_t, len, modes, 2 * modes),
        MatRef::rows(&s_t[modes..], len, modes, 2 * modes),
    );
    gw_re
        .par_chunks_mut(ROWS_PER_TASK * modes)
        .zip(gw_im.par_chunks_mut(ROWS_PER_TASK * modes))
        .zip(g.par_chunks((ROWS_PER_TASK * len).max(1)))
        .for_each(|((gw_re, gw_im), g)| {
            let g = MatRef::rows(g, gw_re.len() / modes, len, len);
            gemm(gw_re, modes, g, top_t, E::one(), true);
            gemm(gw_im, modes, g, bottom_t, E::one(), true);
        });
}

/// ∂L/∂ζ_n = Σ_l l·conj(M[n, l]·λ_n^l) for every mode, M = W_reᵀ·G + i·W_imᵀ·G, from S's rows
/// (Re λ_n^l and −Im λ_n^l); accumulated in f64.
fn grad_zeta<E: KernelFloat>(
    w_re: &[E],
    w_im: &[E],
    g: &[E],
    s: &[E],
    modes: usize,
    len: usize,
) -> Vec<Complex64> {
    let rows = w_re.len() / modes;
    let g_mat = MatRef::rows(g, rows, len, len);
    let (top, bottom) = s.split_at(modes * len);
    let blocks: Vec<Vec<Complex64>> = (0..modes.div_ceil(MODES_PER_TASK))
        .into_par_iter()
        .map(|b| {
            let (n0, count) = (
                b * MODES_PER_TASK,
                MODES_PER_TASK.min(modes - b * MODES_PER_TASK),
            );
            // M's rows n0..n0 + count: Wᵀ's rows are W's columns.
            let m_rows = |w: &[E]| {
                let w_t = MatRef::rows(w, rows, modes, modes).t().row_block(n0, count);
                let mut m = vec![E::zero(); count * len];
                gemm(&mut m, len, w_t, g_mat, E::one(), false);
                m
            };
            let (m_re, m_im) = (m_rows(w_re), m_rows(w_im));
            (0..count)
                .map(|i| {
                    let n = n0 + i;
                    let at = |v: &[E], l: usize| v[l].to_f64().unwrap();
                    let (p_re, minus_p_im) = (&top[n * len..], &bottom[n * len..]);
                    let (mr, mi) = (&m_re[i * len..], &m_im[i * len..]);
                    // conj(M·λ^l) = (M_re·Re λ^l − M_im·Im λ^l) − i·(M_re·Im λ^l + M_im·Re λ^l).
                    let mut acc = Complex64::default();
                    for l in 0..len {
                        let (p, q) = (at(p_re, l), at(minus_p_im, l));
                        let (a, b) = (at(mr, l), at(mi, l));
                        acc += l as f64 * Complex64::new(a * p + b * q, a * q - b * p);
                    }
                    acc
                })
                .collect()
        })
        .collect();
    blocks.concat()
}

/// The fused kernel generation on the CPU: ζ = log λ (N) as real and imaginary parts, shared by
/// every channel, and W (K, H, N) likewise → K (K, H, `len`).
pub(crate) fn shared_vandermonde_cpu<E: KernelFloat, T: Tape<E, Cpu> + Merge<T>>(
    zeta: (Vector<E, Cpu, T>, Vector<E, Cpu, T>),
    w: (Cube<E, Cpu, T>, Cube<E, Cpu, T>),
    len: usize,
) -> Result<Cube<E, Cpu, T>, CpuError> {
    let dims = *w.0.shape();
    let modes = dims.2;
    assert_eq!(
        modes,
        zeta.0.shape().0,
        "shared_vandermonde: W is (K, H, N), ζ (N)"
    );
    assert!(modes > 0, "shared_vandermonde: N must be positive");
    let (zeta_re, t1) = zeta.0.try_contiguous()?.split_tape();
    let (zeta_im, t2) = zeta.1.try_contiguous()?.split_tape();
    let (w_re, t3) = w.0.try_contiguous()?.split_tape();
    let (w_im, t4) = w.1.try_contiguous()?.split_tape();
    let mut tape = t1.merge(t2).merge(t3).merge(t4);
    let zeta_host = complex(&host(&zeta_re)?, &host(&zeta_im)?);
    let (w_re_host, w_im_host) = (host(&w_re)?, host(&w_im)?);
    let s = basis::<E>(&zeta_host, len);
    let out = w_re.device().try_tensor_from_vec(
        kernel_forward(&w_re_host, &w_im_host, &s, modes, len),
        (dims.0, dims.1, len),
    )?;
    drop(s);
    let out_id = out.clone();
    tape.add_backward_op(move |grads| {
        let g = take_grad!(grads, &out_id);
        let s = basis::<E>(&zeta_host, len);
        let mut gw_re = std::mem::take(&mut **grads.get_or_alloc_mut(&w_re)?);
        let gw_im = grad_of!(grads, &w_im);
        let ((), dzeta) = rayon::join(
            || accumulate_grad_w(&mut gw_re, gw_im, &g, &s, modes, len),
            || grad_zeta(&w_re_host, &w_im_host, &g, &s, modes, len),
        );
        **grads.get_or_alloc_mut(&w_re)? = gw_re;
        let mut gz_re = std::mem::take(&mut **grads.get_or_alloc_mut(&zeta_re)?);
        accumulate_parts(&mut gz_re, grad_of!(grads, &zeta_im), &dzeta);
        **grads.get_or_alloc_mut(&zeta_re)? = gz_re;
        Ok(())
    });
    Ok(out.put_tape(tape))
}

/// Kernel generation from dfdx ops: V = exp(l·ζ) for every (n, l), then the two matmuls.
#[cfg(test)]
pub(crate) fn shared_vandermonde_composed<
    E: ComposedFloat,
    D: Device<E>,
    T: Tape<E, D> + Merge<T>,
>(
    zeta: (Vector<E, D, T>, Vector<E, D, T>),
    w: (Cube<E, D, T>, Cube<E, D, T>),
    len: usize,
) -> Cube<E, D, T> {
    let (k, h, n) = *w.0.shape();
    let dev = w.0.device().clone();
    let nl = (n, len);
    let steps = super::vandermonde::time_steps(&dev, len).broadcast_like::<_, Axis<0>>(&nl);
    let exponent_re = zeta.0.broadcast_like::<_, Axis<1>>(&nl) * steps.clone();
    let angle = zeta.1.broadcast_like::<_, Axis<1>>(&nl) * steps;
    let magnitude = exponent_re.exp();
    let v_re = magnitude.with_empty_tape() * angle.with_empty_tape().cos();
    let v_im = magnitude * angle.sin();
    let rows = (k * h, n);
    let kernel = w.0.reshape_like(&rows).matmul(v_re) - w.1.reshape_like(&rows).matmul(v_im);
    kernel.reshape_like(&(k, h, len))
}

#[cfg(test)]
mod tests;
