//! The diagonal complex linear recurrence of LRU (Orvieto et al. 2023, eq. 1–3) and of the
//! recurrent form of diagonal SSMs: x_t = λ ⊙ x_{t−1} + v_t with x_{−1} = 0, or in `reverse`
//! x_t = λ ⊙ x_{t+1} + v_t with x_L = 0. Each state is complex; tensors are (batch, length, 2M)
//! with the last axis `[Re | Im]`, and λ = exp(ζ) is given by its logarithm ζ as (2M,)
//! `[Re ζ | Im ζ]` (LRU's exponential parametrisation: Re ζ = −exp(ν_log), Im ζ = exp(θ_log)).
//!
//! Backward, with complex gradients g = ∂L/∂Re + i·∂L/∂Im: the adjoint a_t = g_t + λ̄·a_{t+1}
//! (the recurrence run the other way), ∂L/∂v_t = a_t, ∂L/∂λ = Σ_t a_t·x̄_{t−1}, and through
//! λ = exp(ζ), ∂L/∂ζ = λ̄·∂L/∂λ.
//!
//! The CPU kernel runs the sequential loop, parallel over the batch and vectorised over states
//! (O(L·M) work, the least there is). The composed form is the parallel scan of Hillis & Steele
//! (1986): ⌈log₂ L⌉ rounds of x_t ← x_t + λ^s·x_{t−s}, s = 1, 2, 4, …; it is what a GPU runs
//! and the oracle of the sequential kernel.

use dfdx::prelude::*;
use num_complex::Complex64;
use rayon::prelude::*;

use super::{complex_mul, exp_complex, for_slicing};
use crate::engine::ops::{grad_mut, host, restore_grad, take_grad, ComposedFloat, KernelFloat};

pub type Seq3<E, D, T> = Tensor<(usize, usize, usize), E, D, T>;

/// State j of a `[Re | Im]` row of M states.
fn state_at<E: KernelFloat>(row: &[E], m: usize, j: usize) -> Complex64 {
    Complex64::new(row[j].to_f64().unwrap(), row[m + j].to_f64().unwrap())
}

fn lambdas<E: KernelFloat>(log_lambda: &[E]) -> Vec<Complex64> {
    let m = log_lambda.len() / 2;
    (0..m)
        .map(|j| {
            let zeta = state_at(log_lambda, m, j);
            exp_complex(zeta.re, zeta.im)
        })
        .collect()
}

/// Time indices in the order the recurrence visits them.
fn order(len: usize, reverse: bool) -> Box<dyn Iterator<Item = usize>> {
    if reverse {
        Box::new((0..len).rev())
    } else {
        Box::new(0..len)
    }
}

/// The recurrence over one example's (length, 2M) rows.
fn scan_example<E: KernelFloat>(v: &[E], lambda: &[Complex64], reverse: bool, out: &mut [E]) {
    let m = lambda.len();
    let (lr, li): (Vec<E>, Vec<E>) = lambda.iter().map(|l| (E::of(l.re), E::of(l.im))).unzip();
    let mut state = vec![E::zero(); 2 * m];
    for t in order(v.len() / (2 * m), reverse) {
        let row = &v[t * 2 * m..(t + 1) * 2 * m];
        for j in 0..m {
            let (pr, pi) = (state[j], state[m + j]);
            state[j] = lr[j] * pr - li[j] * pi + row[j];
            state[m + j] = lr[j] * pi + li[j] * pr + row[m + j];
        }
        out[t * 2 * m..(t + 1) * 2 * m].copy_from_slice(&state);
    }
}

/// The sequential recurrence, parallel over the batch.
pub fn scan_forward<E: KernelFloat>(
    v: &[E],
    log_lambda: &[E],
    shape: (usize, usize, usize),
    reverse: bool,
) -> Vec<E> {
    let lambda = lambdas(log_lambda);
    let per_example = shape.1 * shape.2;
    let mut out = vec![E::zero(); v.len()];
    out.par_chunks_mut(per_example.max(1))
        .zip(v.par_chunks(per_example.max(1)))
        .for_each(|(o, v)| scan_example(v, &lambda, reverse, o));
    out
}

/// Accumulates ∂L/∂v into `grad_v` and returns ∂L/∂ζ as (2M,) `[Re | Im]`.
fn scan_backward<E: KernelFloat>(
    x: &[E],
    g: &[E],
    log_lambda: &[E],
    shape: (usize, usize, usize),
    reverse: bool,
    grad_v: &mut [E],
) -> Vec<E> {
    let lambda = lambdas(log_lambda);
    let m = lambda.len();
    let (len, width) = (shape.1, shape.2);
    let per_example = (len * width).max(1);
    let grad_lambda = grad_v
        .par_chunks_mut(per_example)
        .zip(x.par_chunks(per_example).zip(g.par_chunks(per_example)))
        .map(|(gv, (x, g))| {
            let mut adjoint = vec![Complex64::default(); m];
            let mut grad_lambda = vec![Complex64::default(); m];
            // The adjoint runs against the recurrence; x_{t−1} is the state visited before t.
            for t in order(len, !reverse) {
                let previous = if reverse { t + 1 } else { t.wrapping_sub(1) };
                for j in 0..m {
                    let row = t * width..(t + 1) * width;
                    adjoint[j] = state_at(&g[row], m, j) + lambda[j].conj() * adjoint[j];
                    gv[t * width + j] += E::of(adjoint[j].re);
                    gv[t * width + m + j] += E::of(adjoint[j].im);
                    if previous < len {
                        let row = previous * width..(previous + 1) * width;
                        grad_lambda[j] += adjoint[j] * state_at(&x[row], m, j).conj();
                    }
                }
            }
            grad_lambda
        })
        .reduce(
            || vec![Complex64::default(); m],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                a
            },
        );
    let mut grad_zeta = vec![E::zero(); 2 * m];
    for j in 0..m {
        let gz = lambda[j].conj() * grad_lambda[j];
        grad_zeta[j] = E::of(gz.re);
        grad_zeta[m + j] = E::of(gz.im);
    }
    grad_zeta
}

/// The fused recurrence on the CPU: v (batch, length, 2M), log λ (2M,) → x (batch, length, 2M).
pub fn complex_scan_cpu<E: KernelFloat, T: Tape<E, Cpu> + Merge<T>>(
    v: Seq3<E, Cpu, T>,
    log_lambda: Tensor<(usize,), E, Cpu, T>,
    reverse: bool,
) -> Result<Seq3<E, Cpu, T>, CpuError> {
    let shape = *v.shape();
    assert_eq!(shape.2, log_lambda.shape().0, "scan: state widths differ");
    assert_eq!(shape.2 % 2, 0, "scan: states are [Re | Im] pairs");
    let (v, tv) = v.try_contiguous()?.split_tape();
    let (log_lambda, tl) = log_lambda.try_contiguous()?.split_tape();
    let mut tape = tv.merge(tl);
    let log_lambda_host = host(&log_lambda);
    let x_host = scan_forward(&host(&v), &log_lambda_host, shape, reverse);
    let out = v.device().try_tensor_from_vec(x_host.clone(), shape)?;
    let out_id = out.clone();
    tape.add_backward_op(move |grads| {
        let g = take_grad(grads, &out_id)?;
        let grad_zeta = scan_backward(
            &x_host,
            &g,
            &log_lambda_host,
            shape,
            reverse,
            grad_mut(grads, &v)?,
        );
        grad_mut(grads, &log_lambda)?
            .iter_mut()
            .zip(&grad_zeta)
            .for_each(|(a, &b)| *a += b);
        restore_grad(grads, &out_id, g)
    });
    Ok(out.put_tape(tape))
}

/// x shifted by `s` steps along time, zeros entering: forward x_{t−s}, reverse x_{t+s}.
pub(crate) fn shift_time<E: ComposedFloat, D: Device<E>, T: Tape<E, D> + Merge<T>>(
    x: Seq3<E, D, T>,
    s: usize,
    reverse: bool,
) -> Seq3<E, D, T> {
    let (b, l, w) = *x.shape();
    let s = s.min(l);
    let zeros = x.device().zeros_like(&(b, s, w)).retaped::<T>();
    let x = for_slicing(x);
    if reverse {
        (x.slice((.., s.., ..)), zeros).concat_along(Axis::<1>)
    } else {
        (zeros, x.slice((.., ..l - s, ..))).concat_along(Axis::<1>)
    }
}

/// The parallel scan from dfdx ops: after the round with stride s, x_t holds the sum of
/// λ^k·v_{t−k} for k < 2s.
pub fn complex_scan_composed<E: ComposedFloat, D: Device<E>, T: Tape<E, D> + Merge<T>>(
    v: Seq3<E, D, T>,
    log_lambda: Tensor<(usize,), E, D, T>,
    reverse: bool,
) -> Seq3<E, D, T> {
    let shape = *v.shape();
    let (len, m) = (shape.1, shape.2 / 2);
    let log_lambda = for_slicing(log_lambda);
    let zeta_re = log_lambda.with_empty_tape().slice((..m,));
    let zeta_im = log_lambda.slice((m..,));
    let half = (shape.0, shape.1, m);
    let strides: Vec<usize> = std::iter::successors(Some(1usize), |s| Some(s * 2))
        .take_while(|&s| s < len)
        .collect();
    let mut zeta = Some((zeta_re, zeta_im));
    let mut x = v;
    for (round, &stride) in strides.iter().enumerate() {
        // The last round consumes ζ's own tape (its slices' backward) into the result.
        let (zr, zi) = if round + 1 == strides.len() {
            zeta.take().expect("ζ is kept until the last round")
        } else {
            let z = zeta.as_ref().expect("ζ is kept until the last round");
            (z.0.with_empty_tape(), z.1.with_empty_tape())
        };
        let s = E::from_usize(stride).unwrap();
        // λ^s = exp(s·Re ζ)·(cos(s·Im ζ) + i·sin(s·Im ζ)).
        let magnitude = (zr * s).exp();
        let angle = zi * s;
        let power_re = magnitude.with_empty_tape() * angle.with_empty_tape().cos();
        let power_im = magnitude * angle.sin();
        let power = (
            power_re.broadcast_like::<_, Axes2<0, 1>>(&half),
            power_im.broadcast_like::<_, Axes2<0, 1>>(&half),
        );
        // A concatenation: a fresh node whose only consumers are the two disjoint slices.
        let shifted = shift_time(x.with_empty_tape(), stride, reverse);
        let shifted_re = shifted.with_empty_tape().slice((.., .., ..m));
        let shifted_im = shifted.slice((.., .., m..));
        let (add_re, add_im) = complex_mul((shifted_re, shifted_im), power);
        x = x + (add_re, add_im).concat_along(Axis::<2>);
    }
    x
}

#[cfg(test)]
mod tests;
