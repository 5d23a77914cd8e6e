//! MEGA's gated residual (Ma et al. 2023, §3.3, eq. 15): Y = φ⊙Ĥ + (1 − φ)⊙X, the update
//! gate φ mixing the candidate Ĥ into the block input X, computed as X + φ⊙(Ĥ − X) like the
//! reference's `addcmul(residual, u, h − residual)`. Backward, with G = ∂L/∂Y:
//! ∂X = G⊙(1 − φ), ∂φ = G⊙(Ĥ − X), ∂Ĥ = G⊙φ.
//!
//! The CPU kernel is one parallel pass each way; the composed form (three dfdx ops, the CUDA
//! path and the oracle) runs serially and keeps its intermediate difference too.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::{grad_of, host, take_grad, ComposedFloat, KernelFloat};
use crate::engine::ops::zeroed;

/// Elements per parallel task.
const CHUNK: usize = 4096;

/// dst[i] += f(i), in parallel.
fn accumulate<E: KernelFloat>(dst: &mut [E], f: impl Fn(usize) -> E + Sync) {
    dst.par_chunks_mut(CHUNK).enumerate().for_each(|(c, d)| {
        for (i, d) in d.iter_mut().enumerate() {
            *d += f(c * CHUNK + i);
        }
    });
}

/// X + φ⊙(Ĥ − X) on the CPU: x, φ and Ĥ of one shape.
pub(crate) fn gated_residual_cpu<S: Shape, E: KernelFloat, T: Tape<E, Cpu> + Merge<T>>(
    x: Tensor<S, E, Cpu, T>,
    gate: Tensor<S, E, Cpu, T>,
    candidate: Tensor<S, E, Cpu, T>,
) -> Result<Tensor<S, E, Cpu, T>, CpuError> {
    assert_eq!(
        x.shape(),
        gate.shape(),
        "gated residual: x and φ differ in shape"
    );
    assert_eq!(
        x.shape(),
        candidate.shape(),
        "gated residual: x and Ĥ differ in shape"
    );
    let (x, tx) = x.try_contiguous()?.split_tape();
    let (gate, tg) = gate.try_contiguous()?.split_tape();
    let (candidate, tc) = candidate.try_contiguous()?.split_tape();
    let mut tape = tx.merge(tg).merge(tc);
    let (xs, phi, h) = (host(&x)?, host(&gate)?, host(&candidate)?);
    let mut out = zeroed(xs.len());
    out.par_chunks_mut(CHUNK)
        .zip(xs.par_chunks(CHUNK))
        .zip(phi.par_chunks(CHUNK).zip(h.par_chunks(CHUNK)))
        .for_each(|((y, x), (phi, h))| {
            for (((y, &x), &p), &h) in y.iter_mut().zip(x).zip(phi).zip(h) {
                *y = x + p * (h - x);
            }
        });
    let out = x.device().try_tensor_from_vec(out, *x.shape())?;
    let out_ghost = out.ghost();
    let (x, gate, candidate) = (x.ghost(), gate.ghost(), candidate.ghost());
    tape.add_backward_op(move |grads| {
        let g = take_grad!(grads, &out_ghost);
        // Each input's gradient through its own borrow: one parallel pass per input.
        accumulate(grad_of!(grads, &x), |i| g[i] * (E::one() - phi[i]));
        accumulate(grad_of!(grads, &gate), |i| g[i] * (h[i] - xs[i]));
        accumulate(grad_of!(grads, &candidate), |i| g[i] * phi[i]);
        Ok(())
    });
    Ok(out.put_tape(tape))
}

/// The same from dfdx ops on any device.
pub(crate) fn gated_residual_composed<
    S: Shape,
    E: ComposedFloat,
    D: Device<E>,
    T: Tape<E, D> + Merge<T>,
>(
    x: Tensor<S, E, D, T>,
    gate: Tensor<S, E, D, T>,
    candidate: Tensor<S, E, D, T>,
) -> Tensor<S, E, D, T> {
    x.with_empty_tape() + gate * (candidate - x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ops::gradcheck::{assert_close, gradcheck, random_values};

    fn check(fused: bool) {
        let n = 24;
        gradcheck(
            &[
                random_values(n, 21),
                random_values(n, 22),
                random_values(n, 23),
            ],
            |mut v| {
                let h = v.pop().unwrap();
                let phi = v.pop().unwrap();
                let x = v.pop().unwrap();
                if fused {
                    gated_residual_cpu(x, phi, h).unwrap()
                } else {
                    gated_residual_composed(x, phi, h)
                }
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

    #[test]
    fn fused_matches_composed_with_gradients() {
        let dev = Cpu::default();
        let shape = (3, 50, 70);
        let make = |seed| {
            let v: Vec<f32> = random_values(3 * 50 * 70, seed)
                .iter()
                .map(|&x| x as f32)
                .collect();
            dev.tensor_from_vec(v, shape)
        };
        let (x, phi, h) = (make(27), make(28), make(29));
        let weights = make(30);
        let fused = gated_residual_cpu(x.leaky_trace(), phi.leaky_trace(), h.leaky_trace());
        let composed = gated_residual_composed(x.leaky_trace(), phi.leaky_trace(), h.leaky_trace());
        let fused = fused.unwrap();
        assert_close(&fused.as_vec(), &composed.as_vec(), 1e-6, "forward");
        let gf = (fused * weights.clone()).sum().backward();
        let gc = (composed * weights).sum().backward();
        for (t, what) in [(&x, "∂x"), (&phi, "∂φ"), (&h, "∂Ĥ")] {
            assert_close(&gf.get(t).as_vec(), &gc.get(t).as_vec(), 1e-6, what);
        }
    }
}
