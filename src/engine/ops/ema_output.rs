//! The output of MEGA's EMA layer, SiLU(EMA(X) + ω⊙X) (Ma et al. 2023 §3.1; the reference
//! `MultiHeadEMA.forward`: `F.silu(out + residual * self.omega)`), ω a learned weight per
//! feature. With A = EMA(X) + ω⊙X and G = ∂L/∂Y: ∂A = G·SiLU′(A), ∂EMA = ∂A, ∂X = ∂A⊙ω,
//! ∂ω = Σ ∂A⊙X over positions.
//!
//! The CPU kernel is one parallel pass each way and keeps A and X; the composed form (the
//! CUDA path and the oracle) is a broadcast product, a sum and SiLU, run serially.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::attention::Seq3;
use super::pointwise::Pointwise;
use super::silu::silu_composed;
use super::{
    add_into, add_into_parallel, grad_of, host, summed, take_grad, ComposedFloat, KernelFloat,
};
use crate::engine::ops::zeroed;

/// Positions per parallel task.
const ROWS_PER_TASK: usize = 64;

/// SiLU(ema + ω⊙x) on the CPU: ema, x (B, L, H), ω (H).
pub(crate) fn ema_output_cpu<E: KernelFloat, T: Tape<E, Cpu> + Merge<T>>(
    ema: Seq3<E, Cpu, T>,
    x: Seq3<E, Cpu, T>,
    omega: Tensor<(usize,), E, Cpu, T>,
) -> Result<Seq3<E, Cpu, T>, CpuError> {
    let shape = *x.shape();
    assert_eq!(
        *ema.shape(),
        shape,
        "ema output: EMA(x) and x differ in shape"
    );
    let width = shape.2;
    assert_eq!(omega.shape().0, width, "ema output: one ω per feature");
    let (ema, te) = ema.try_contiguous()?.split_tape();
    let (x, tx) = x.try_contiguous()?.split_tape();
    let (omega, tw) = omega.try_contiguous()?.split_tape();
    let mut tape = te.merge(tx).merge(tw);
    let (xs, w) = (host(&x)?, host(&omega)?);
    // A = EMA(x) + ω⊙x, kept for the backward pass.
    let ema_values = host(&ema)?;
    let mut pre = zeroed(ema_values.len());
    let task = ROWS_PER_TASK * width.max(1);
    let mut out = zeroed(pre.len());
    out.par_chunks_mut(task)
        .zip(pre.par_chunks_mut(task))
        .zip(ema_values.par_chunks(task).zip(xs.par_chunks(task)))
        .for_each(|((y, a), (e, x))| {
            let rows = a.chunks_exact_mut(width).zip(e.chunks_exact(width));
            for ((a, e), x) in rows.zip(x.chunks_exact(width)) {
                a.iter_mut()
                    .zip(e)
                    .zip(x)
                    .zip(w.iter())
                    .for_each(|(((a, &e), &x), &w)| *a = e + w * x);
            }
            E::pointwise_forward(Pointwise::Silu, a, y);
        });
    drop(ema_values);
    let out = x.device().try_tensor_from_vec(out, shape)?;
    let out_ghost = out.ghost();
    let (ema, x, omega) = (ema.ghost(), x.ghost(), omega.ghost());
    tape.add_backward_op(move |grads| {
        let g = take_grad!(grads, &out_ghost);
        let mut da = zeroed(pre.len());
        da.par_chunks_mut(task)
            .zip(pre.par_chunks(task).zip(g.par_chunks(task)))
            .for_each(|(d, (a, g))| E::pointwise_backward(Pointwise::Silu, a, g, d));
        drop(g);
        // ∂EMA = ∂A.
        add_into_parallel(grad_of!(grads, &ema), &da);
        let zeros = || vec![E::zero(); width];
        let d_omega = grad_of!(grads, &x)
            .par_chunks_mut(task)
            .zip(da.par_chunks(task).zip(xs.par_chunks(task)))
            .map(|(dx, (da, x))| {
                let mut d_omega = zeros();
                let rows = dx
                    .chunks_exact_mut(width)
                    .zip(da.chunks_exact(width).zip(x.chunks_exact(width)));
                for (dx, (da, x)) in rows {
                    for c in 0..width {
                        dx[c] += da[c] * w[c];
                        d_omega[c] += da[c] * x[c];
                    }
                }
                d_omega
            })
            .reduce(zeros, summed);
        add_into(grad_of!(grads, &omega), &d_omega);
        Ok(())
    });
    Ok(out.put_tape(tape))
}

/// The same from dfdx ops on any device.
pub(crate) fn ema_output_composed<E: ComposedFloat, D: Device<E>, T: Tape<E, D> + Merge<T>>(
    ema: Seq3<E, D, T>,
    x: Seq3<E, D, T>,
    omega: Tensor<(usize,), E, D, T>,
) -> Seq3<E, D, T> {
    let omega = omega.broadcast_like::<_, Axes2<0, 1>>(x.shape());
    silu_composed(ema + x * omega)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ops::gradcheck::{assert_close, gradcheck, random_values};

    fn check(fused: bool) {
        let shape = (2, 3, 4);
        gradcheck(
            &[
                random_values(24, 50),
                random_values(24, 51),
                random_values(4, 52),
            ],
            |mut v| {
                let omega = v.pop().unwrap();
                let x = v.pop().unwrap().reshape_like(&shape);
                let ema = v.pop().unwrap().reshape_like(&shape);
                let y = if fused {
                    ema_output_cpu(ema, x, omega).unwrap()
                } else {
                    ema_output_composed(ema, x, omega)
                };
                y.reshape_like(&(24,))
            },
            1e-6,
        );
    }

    #[test]
    fn gradient_matches_finite_differences() {
        check(true);
    }

    #[test]
    fn composed_gradient_matches_finite_differences() {
        check(false);
    }

    /// More positions than one parallel task.
    #[test]
    fn fused_matches_composed_with_gradients() {
        let dev = Cpu::default();
        let shape = (3, 50, 12);
        let n = 3 * 50 * 12;
        let values = |n, seed| -> Vec<f32> {
            random_values(n, seed)
                .iter()
                .map(|&x| (x * 3.0) as f32)
                .collect()
        };
        let ema = dev.tensor_from_vec(values(n, 53), shape);
        let x = dev.tensor_from_vec(values(n, 54), shape);
        let omega = dev.tensor_from_vec(values(12, 55), (12,));
        let weights = dev.tensor_from_vec(values(n, 56), shape);
        let traced = || (ema.leaky_trace(), x.leaky_trace(), omega.leaky_trace());
        let (e, xt, w) = traced();
        let fused = ema_output_cpu(e, xt, w).unwrap();
        let (e, xt, w) = traced();
        let composed = ema_output_composed(e, xt, w);
        assert_close(&fused.as_vec(), &composed.as_vec(), 1e-6, "forward");
        let gf = (fused * weights.clone()).sum().backward();
        let gc = (composed * weights).sum().backward();
        assert_close(&gf.get(&ema).as_vec(), &gc.get(&ema).as_vec(), 1e-5, "∂EMA");
        assert_close(&gf.get(&x).as_vec(), &gc.get(&x).as_vec(), 1e-5, "∂x");
        assert_close(
            &gf.get(&omega).as_vec(),
            &gc.get(&omega).as_vec(),
            1e-4,
            "∂ω",
        );
    }
}
