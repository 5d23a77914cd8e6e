//! MEGA's multi-dimensional damped EMA (Ma et al. 2023, "Mega: Moving Average Equipped Gated
//! Attention", eq. 2–3) over a sequence, given its discrete parameters.
//!
//! Per channel h and EMA dimension n the recurrence is h_t = α⊙β·x_t + (1 − α⊙δ)⊙h_{t−1},
//! read out as y_t = Σ_n η_n·h_t,n (eq. 3). Unrolled, y = K ∗ x with the kernel
//! K_t = Σ_n w_n·q_n^t, w = η⊙α⊙β and q = 1 − α⊙δ (the reference's `_compute_kernel`,
//! facebookresearch/mega `MultiHeadEMA`). The op takes log q and w, one (H, N) table per
//! kernel: one kernel, or two when bidirectional, the second one running over the reversed
//! sequence. As in the reference (`shift=True`), the reversed EMA reaches position t only
//! from later positions and one step later, so its kernel at lag d ≥ 1 is Σ_n w_n·q_n^d:
//!
//! y_t = Σ_{s≤t} Σ_n w⁰_n (q⁰_n)^{t−s} x_s + Σ_{s>t} Σ_n w¹_n (q¹_n)^{s−t} x_s.
//!
//! That is [`long_conv`](super::long_conv)'s layout (its anticausal kernel at index d − 1
//! serves lag d), so the convolution form is the kernel below (a real Vandermonde product,
//! O(K·H·N·L) work, O(K·H·L) memory) followed by the FFT convolution. The composed form is the
//! recurrence itself, run by the parallel scan of [`scan`](super::scan) with real decays.
//!
//! Kernel backward, with G = ∂L/∂K and exponent e = t + shift: ∂L/∂w = Σ_t G_t·q^e,
//! ∂L/∂log q = Σ_t G_t·e·w·q^e.

use dfdx::prelude::*;
use rayon::prelude::*;
use realfft::FftNum;

use super::for_slicing;
use super::host;
use super::long_conv::long_conv_cpu;
use super::scan::{complex_scan_composed, shift_time};
use super::vandermonde::Cube;
use crate::engine::ops::zeroed;
use crate::engine::ops::{grad_of, take_grad, ComposedFloat, KernelFloat};

/// The discrete EMA of each kernel (causal, then anticausal when bidirectional):
/// log q (K, H, N) with q = 1 − α⊙δ, and weights w = η⊙α⊙β (K, H, N).
pub struct EmaParams<E: Dtype, D: Storage<E>, T> {
    pub log_q: Cube<E, D, T>,
    pub w: Cube<E, D, T>,
}

/// The power of q at lag 0 of kernel `k`: the anticausal kernel starts one step later.
fn shift(k: usize, kernels: usize, bidirectional: bool) -> usize {
    usize::from(bidirectional && k >= kernels / 2)
}

/// Calls `f(n, t, q_n^(t + shift))` for every EMA dimension of one (kernel, channel) row.
fn for_powers(log_q: &[f64], shift: usize, len: usize, mut f: impl FnMut(usize, usize, f64)) {
    for (n, &lq) in log_q.iter().enumerate() {
        let q = lq.exp();
        let mut power = (lq * shift as f64).exp();
        for t in 0..len {
            f(n, t, power);
            power *= q;
        }
    }
}

fn to_f64<E: KernelFloat>(v: &[E]) -> Vec<f64> {
    v.iter().map(|x| x.to_f64().unwrap()).collect()
}

/// The kernels K[k, h, t] = Σ_n w·q^(t + shift_k), f64 accumulation.
fn kernel_forward<E: KernelFloat>(
    log_q: &[f64],
    w: &[f64],
    dims: (usize, usize, usize),
    len: usize,
    bidirectional: bool,
) -> Vec<E> {
    let (kernels, width, dims_n) = dims;
    let mut out = zeroed(kernels * width * len);
    out.par_chunks_mut(len.max(1))
        .enumerate()
        .for_each(|(kh, row)| {
            let modes = kh * dims_n..(kh + 1) * dims_n;
            let w = &w[modes.clone()];
            let mut acc = vec![0.0f64; len];
            let s = shift(kh / width, kernels, bidirectional);
            for_powers(&log_q[modes], s, len, |n, t, power| acc[t] += w[n] * power);
            row.iter_mut().zip(&acc).for_each(|(o, &a)| *o = E::of(a));
        });
    out
}

/// ∂L/∂log q and ∂L/∂w, both (K, H, N), from ∂L/∂K.
fn kernel_backward<E: KernelFloat>(
    log_q: &[f64],
    w: &[f64],
    g: &[E],
    dims: (usize, usize, usize),
    len: usize,
    bidirectional: bool,
) -> (Vec<f64>, Vec<f64>) {
    let (kernels, width, dims_n) = dims;
    let rows: Vec<(Vec<f64>, Vec<f64>)> = (0..kernels * width)
        .into_par_iter()
        .map(|kh| {
            let modes = kh * dims_n..(kh + 1) * dims_n;
            let w = &w[modes.clone()];
            let g = &g[kh * len..(kh + 1) * len];
            let s = shift(kh / width, kernels, bidirectional);
            let mut grad_log_q = vec![0.0; dims_n];
            let mut grad_w = vec![0.0; dims_n];
            for_powers(&log_q[modes], s, len, |n, t, power| {
                let gt = g[t].to_f64().unwrap();
                grad_w[n] += gt * power;
                grad_log_q[n] += gt * (t + s) as f64 * w[n] * power;
            });
            (grad_log_q, grad_w)
        })
        .collect();
    let mut grad_log_q = Vec::with_capacity(kernels * width * dims_n);
    let mut grad_w = Vec::with_capacity(kernels * width * dims_n);
    for (gq, gw) in rows {
        grad_log_q.extend(gq);
        grad_w.extend(gw);
    }
    (grad_log_q, grad_w)
}

/// The EMA kernels on the CPU: log q and w (K, H, N) → K (K, H, `len`).
pub(crate) fn ema_kernel_cpu<E: KernelFloat, T: Tape<E, Cpu> + Merge<T>>(
    params: EmaParams<E, Cpu, T>,
    len: usize,
    bidirectional: bool,
) -> Result<Cube<E, Cpu, T>, CpuError> {
    let dims = *params.w.shape();
    assert_eq!(
        dims,
        *params.log_q.shape(),
        "ema: log q and w are both (K, H, N)"
    );
    assert!(
        dims.0 == if bidirectional { 2 } else { 1 },
        "ema: one kernel per direction"
    );
    let (log_q, t1) = params.log_q.try_contiguous()?.split_tape();
    let (w, t2) = params.w.try_contiguous()?.split_tape();
    let mut tape = t1.merge(t2);
    let (log_q_host, w_host) = (to_f64(&host(&log_q)), to_f64(&host(&w)));
    let kernel = kernel_forward::<E>(&log_q_host, &w_host, dims, len, bidirectional);
    let out = w
        .device()
        .try_tensor_from_vec(kernel, (dims.0, dims.1, len))?;
    let out_id = out.clone();
    tape.add_backward_op(move |grads| {
        let g = take_grad!(grads, &out_id);
        let (grad_log_q, grad_w) =
            kernel_backward(&log_q_host, &w_host, &g, dims, len, bidirectional);
        for (acc, v) in grad_of!(grads, &log_q).iter_mut().zip(&grad_log_q) {
            *acc += E::of(*v);
        }
        for (acc, v) in grad_of!(grads, &w).iter_mut().zip(&grad_w) {
            *acc += E::of(*v);
        }
        drop(g);
        Ok(())
    });
    Ok(out.put_tape(tape))
}

/// The convolution form on the CPU: x (B, L, H) → y (B, L, H).
pub(crate) fn ema_cpu<E: KernelFloat + FftNum, T: Tape<E, Cpu> + Merge<T>>(
    x: Cube<E, Cpu, T>,
    params: EmaParams<E, Cpu, T>,
    bidirectional: bool,
) -> Result<Cube<E, Cpu, T>, CpuError> {
    let len = x.shape().1;
    let kernel = ema_kernel_cpu(params, len, bidirectional)?;
    long_conv_cpu(x, kernel, bidirectional)
}

/// The recurrent form from dfdx ops: per kernel, the states s_t = q⊙s_{t−1} + x_t of every
/// (h, n) by the parallel scan (real decays: ζ = (log q, 0)), read out through w. The
/// anticausal kernel reads q⊙s_{t+1} of the reversed scan, i.e. lags from 1 on.
pub(crate) fn ema_composed<E: ComposedFloat, D: Device<E>, T: Tape<E, D> + Merge<T>>(
    x: Cube<E, D, T>,
    params: EmaParams<E, D, T>,
    bidirectional: bool,
) -> Cube<E, D, T> {
    let (batch, len, width) = *x.shape();
    let (kernels, _, dims_n) = *params.w.shape();
    let states = width * dims_n;
    let dev = x.device().clone();
    let inputs = x
        .broadcast_like::<_, Axis<3>>(&(batch, len, width, dims_n))
        .reshape_like(&(batch, len, states));
    let inputs =
        (inputs, dev.zeros_like(&(batch, len, states)).retaped::<T>()).concat_along(Axis::<2>);
    let log_q = params.log_q.reshape_like(&(kernels * states,));
    let w = params.w.reshape_like(&(kernels * states,));
    let readout =
        |k: usize, log_q: Tensor<(usize,), E, D, T>, w: Tensor<(usize,), E, D, T>, inputs| {
            let reverse = shift(k, kernels, bidirectional) == 1;
            // The anticausal kernel reads q⊙s_{t+1}: weights q⊙w on the states shifted by one.
            let (zeta_re, w) = if reverse {
                (log_q.with_empty_tape(), w * log_q.exp())
            } else {
                (log_q, w)
            };
            let zeta = (zeta_re, dev.zeros_like(&(states,)).retaped::<T>()).concat_along(Axis::<0>);
            let mut scanned = complex_scan_composed(inputs, zeta, reverse);
            if reverse {
                scanned = shift_time(scanned, 1, true);
            }
            let real = for_slicing(scanned).slice((.., .., ..states));
            let shape = (batch, len, width, dims_n);
            let w = w
                .reshape_like(&(width, dims_n))
                .broadcast_like::<_, Axes2<0, 1>>(&shape);
            (real.reshape_like(&shape) * w).sum::<(usize, usize, usize), Axis<3>>()
        };
    if !bidirectional {
        return readout(0, log_q, w, inputs);
    }
    let (log_q, w) = (for_slicing(log_q), for_slicing(w));
    let causal = readout(
        0,
        log_q.with_empty_tape().slice((..states,)),
        w.with_empty_tape().slice((..states,)),
        inputs.with_empty_tape(),
    );
    causal + readout(1, log_q.slice((states..,)), w.slice((states..,)), inputs)
}

#[cfg(test)]
mod tests;
