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
//! The CPU kernel runs the sequential loop (O(L·M) work, the least there is), parallel over
//! (example, block of states), so even a batch of one uses every thread. The composed form is the parallel scan of Hillis & Steele
//! (1986): ⌈log₂ L⌉ rounds of x_t ← x_t + λ^s·x_{t−s}, s = 1, 2, 4, …; it is what a GPU runs
//! and the oracle of the sequential kernel.

use std::ops::Range;

use dfdx::prelude::*;
use num_complex::Complex64;
use rayon::prelude::*;

use super::host;
use super::{complex_mul, exp_complex, for_slicing};
use crate::engine::ops::zeroed;
use crate::engine::ops::{grad_of, take_grad, ComposedFloat, KernelFloat};

pub(crate) type Seq3<E, D, T> = Tensor<(usize, usize, usize), E, D, T>;

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

/// States per parallel task: small enough that a batch of one (Path-X) still spreads over
/// the threads, large enough that a task amortises its scheduling.
const STATES_PER_TASK: usize = 16;

/// The units of parallel work: (example, range of states). States are independent, so every
/// task runs the whole recurrence of its states.
fn tasks(batch: usize, m: usize) -> Vec<(usize, Range<usize>)> {
    (0..batch)
        .flat_map(|b| {
            (0..m)
                .step_by(STATES_PER_TASK)
                .map(move |j| (b, j..(j + STATES_PER_TASK).min(m)))
        })
        .collect()
}

/// Copies (or adds) each task's (length, 2·|block|) `[Re | Im]` values into the
/// (batch, length, 2M) layout.
fn scatter<E: KernelFloat>(
    tasks: &[(usize, Range<usize>)],
    blocks: &[Vec<E>],
    (len, m): (usize, usize),
    dst: &mut [E],
    add: bool,
) {
    dst.par_chunks_mut((len * 2 * m).max(1))
        .enumerate()
        .for_each(|(b, example)| {
            for ((_, states), block) in tasks.iter().zip(blocks).filter(|((tb, _), _)| *tb == b) {
                let w = states.len();
                for (t, values) in block.chunks_exact(2 * w).enumerate() {
                    let row = &mut example[t * 2 * m..(t + 1) * 2 * m];
                    for (part, part_values) in values.chunks_exact(w).enumerate() {
                        let slots = &mut row[part * m + states.start..part * m + states.end];
                        // Not read when copying: `dst` may be fresh zeroed pages, and reading
                        // one first maps the shared zero page, so the write would then take a
                        // copy-on-write fault (a TLB flush on every core).
                        if add {
                            slots
                                .iter_mut()
                                .zip(part_values)
                                .for_each(|(s, &v)| *s += v);
                        } else {
                            slots.copy_from_slice(part_values);
                        }
                    }
                }
            }
        });
}

/// The recurrence of `states` over one example's (length, 2M) rows `v`.
fn scan_block<E: KernelFloat>(
    v: &[E],
    lambda: &[Complex64],
    states: Range<usize>,
    reverse: bool,
) -> Vec<E> {
    let (m, w) = (lambda.len(), states.len());
    let len = v.len() / (2 * m);
    let (lr, li): (Vec<E>, Vec<E>) = lambda[states.clone()]
        .iter()
        .map(|l| (E::of(l.re), E::of(l.im)))
        .unzip();
    let mut out = vec![E::zero(); len * 2 * w];
    let (mut re, mut im) = (vec![E::zero(); w], vec![E::zero(); w]);
    for t in order(len, reverse) {
        let row = &v[t * 2 * m..(t + 1) * 2 * m];
        for (k, j) in states.clone().enumerate() {
            let (pr, pi) = (re[k], im[k]);
            re[k] = lr[k] * pr - li[k] * pi + row[j];
            im[k] = lr[k] * pi + li[k] * pr + row[m + j];
        }
        out[t * 2 * w..t * 2 * w + w].copy_from_slice(&re);
        out[t * 2 * w + w..(t + 1) * 2 * w].copy_from_slice(&im);
    }
    out
}

/// The sequential recurrence, parallel over (example, block of states).
pub(crate) fn scan_forward<E: KernelFloat>(
    v: &[E],
    log_lambda: &[E],
    shape: (usize, usize, usize),
    reverse: bool,
) -> Vec<E> {
    let lambda = lambdas(log_lambda);
    let (len, m) = (shape.1, lambda.len());
    let per_example = (len * 2 * m).max(1);
    let tasks = tasks(shape.0, m);
    let blocks: Vec<Vec<E>> = tasks
        .par_iter()
        .map(|(b, states)| {
            let example = &v[b * per_example..(b + 1) * per_example];
            scan_block(example, &lambda, states.clone(), reverse)
        })
        .collect();
    let mut out = zeroed(v.len());
    scatter(&tasks, &blocks, (len, m), &mut out, false);
    out
}

/// The adjoint recurrence of `states` for one example: returns ∂L/∂v as (length, 2·|block|)
/// and ∂L/∂λ for the block.
fn backward_block<E: KernelFloat>(
    x: &[E],
    g: &[E],
    lambda: &[Complex64],
    states: Range<usize>,
    reverse: bool,
) -> (Vec<E>, Vec<Complex64>) {
    let (m, w) = (lambda.len(), states.len());
    let len = x.len() / (2 * m);
    let mut grad_v = zeroed(len * 2 * w);
    let mut adjoint = vec![Complex64::default(); w];
    let mut grad_lambda = vec![Complex64::default(); w];
    // The adjoint runs against the recurrence; x_{t−1} is the state visited before t.
    for t in order(len, !reverse) {
        let previous = if reverse { t + 1 } else { t.wrapping_sub(1) };
        let row = t * 2 * m..(t + 1) * 2 * m;
        for (k, j) in states.clone().enumerate() {
            adjoint[k] = state_at(&g[row.clone()], m, j) + lambda[j].conj() * adjoint[k];
            grad_v[t * 2 * w + k] = E::of(adjoint[k].re);
            grad_v[t * 2 * w + w + k] = E::of(adjoint[k].im);
            if previous < len {
                let before = &x[previous * 2 * m..(previous + 1) * 2 * m];
                grad_lambda[k] += adjoint[k] * state_at(before, m, j).conj();
            }
        }
    }
    (grad_v, grad_lambda)
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
    let (len, m) = (shape.1, lambda.len());
    let per_example = (len * 2 * m).max(1);
    let tasks = tasks(shape.0, m);
    let (blocks, grad_lambdas): (Vec<Vec<E>>, Vec<Vec<Complex64>>) = tasks
        .par_iter()
        .map(|(b, states)| {
            let example = b * per_example..(b + 1) * per_example;
            backward_block(
                &x[example.clone()],
                &g[example],
                &lambda,
                states.clone(),
                reverse,
            )
        })
        .unzip();
    scatter(&tasks, &blocks, (len, m), grad_v, true);
    let mut grad_zeta = vec![E::zero(); 2 * m];
    for ((_, states), block) in tasks.iter().zip(&grad_lambdas) {
        for (j, grad) in states.clone().zip(block) {
            // Through λ = exp(ζ): ∂L/∂ζ = λ̄·∂L/∂λ.
            let gz = lambda[j].conj() * grad;
            grad_zeta[j] += E::of(gz.re);
            grad_zeta[m + j] += E::of(gz.im);
        }
    }
    grad_zeta
}

/// The fused recurrence on the CPU: v (batch, length, 2M), log λ (2M,) → x (batch, length, 2M).
pub(crate) fn complex_scan_cpu<E: KernelFloat, T: Tape<E, Cpu> + Merge<T>>(
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
    let out = v.device().try_tensor_from_vec(
        scan_forward(&host(&v), &log_lambda_host, shape, reverse),
        shape,
    )?;
    // Backward reads the states x: hold the output's values (no copy, which would be a serial
    // pass on this thread) and its ghost.
    let x_host = host(&out);
    let out_id = out.ghost();
    tape.add_backward_op(move |grads| {
        let g = take_grad!(grads, &out_id);
        let grad_zeta = scan_backward(
            &x_host,
            &g,
            &log_lambda_host,
            shape,
            reverse,
            grad_of!(grads, &v),
        );
        grad_of!(grads, &log_lambda)
            .iter_mut()
            .zip(&grad_zeta)
            .for_each(|(a, &b)| *a += b);
        drop(g);
        Ok(())
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
pub(crate) fn complex_scan_composed<E: ComposedFloat, D: Device<E>, T: Tape<E, D> + Merge<T>>(
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
