//! The element-wise product x ⊙ y of two tensors of one shape, in one parallel pass: MEGA's
//! reset gate on the attention output, γ ⊙ O in the candidate
//! Ĥ = SiLU(X′W_h + (γ ⊙ O)U_h + b_h) (Ma et al. 2023, eq. 14).
//! Backward: ∂x = g ⊙ y, ∂y = g ⊙ x.
//!
//! dfdx's `*` runs both passes on the calling thread, with the other core idle.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::{
    grad_of, same_shape_pair, take_grad, zeroed, ComposedFloat, KernelFloat, SameShapePair,
};

/// Elements per parallel task.
const CHUNK: usize = 16 * 1024;

/// acc += a ⊙ b, in parallel chunks.
fn add_product<E: KernelFloat>(acc: &mut [E], a: &[E], b: &[E]) {
    acc.par_chunks_mut(CHUNK)
        .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
        .for_each(|(acc, (a, b))| {
            for ((acc, &a), &b) in acc.iter_mut().zip(a).zip(b) {
                *acc += a * b;
            }
        });
}

/// Fused x ⊙ y on the CPU, any shape.
pub(crate) fn product_cpu<S: Shape, E: KernelFloat, T: Tape<E, Cpu> + Merge<T>>(
    x: Tensor<S, E, Cpu, T>,
    y: Tensor<S, E, Cpu, T>,
) -> Result<Tensor<S, E, Cpu, T>, CpuError> {
    // Backward reads both factors: their values are held (no copy), and only the ghosts.
    let SameShapePair {
        x,
        y,
        xs,
        ys,
        mut tape,
    } = same_shape_pair(x, y, "product")?;
    let mut out = zeroed(xs.len());
    add_product(&mut out, &xs, &ys);
    let out = x.device().try_tensor_from_vec(out, *x.shape())?;
    let out_ghost = out.ghost();
    let (x, y) = (x.ghost(), y.ghost());
    tape.add_backward_op(move |grads| {
        let g = take_grad!(grads, &out_ghost);
        add_product(grad_of!(grads, &x), &g, &ys);
        add_product(grad_of!(grads, &y), &g, &xs);
        Ok(())
    });
    Ok(out.put_tape(tape))
}

/// x ⊙ y from dfdx ops on any device.
pub(crate) fn product_composed<
    S: Shape,
    E: ComposedFloat,
    D: Device<E>,
    T: Tape<E, D> + Merge<T>,
>(
    x: Tensor<S, E, D, T>,
    y: Tensor<S, E, D, T>,
) -> Tensor<S, E, D, T> {
    x * y
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ops::gradcheck::{assert_close, gradcheck, random_values};

    #[test]
    fn gradient_matches_finite_differences() {
        gradcheck(
            &[random_values(7, 93), random_values(7, 94)],
            |mut v| {
                let y = v.pop().unwrap();
                product_cpu(v.pop().unwrap(), y).unwrap()
            },
            1e-6,
        );
    }

    /// More elements than one parallel chunk; gradients through weights so every output
    /// element counts differently.
    #[test]
    fn fused_matches_dfdx_product_with_gradients() {
        let dev = Cpu::default();
        let shape = (3, 70, 97);
        let n = 3 * 70 * 97;
        let make = |seed| -> Tensor<(usize, usize, usize), f32, Cpu> {
            let values = random_values(n, seed).iter().map(|&v| v as f32).collect();
            dev.tensor_from_vec(values, shape)
        };
        let (x, y, weights) = (make(95), make(96), make(97));
        let run = |fused: bool| {
            let (xt, yt) = (x.leaky_trace(), y.retaped());
            let out = if fused {
                product_cpu(xt, yt).unwrap()
            } else {
                product_composed(xt, yt)
            };
            let value = out.as_vec();
            let grads = (out * weights.clone()).sum().backward();
            [value, grads.get(&x).as_vec(), grads.get(&y).as_vec()]
        };
        let (f, c) = (run(true), run(false));
        for (what, (a, b)) in ["out", "dx", "dy"].iter().zip(f.iter().zip(&c)) {
            assert_close(a, b, 1e-6, what);
        }
    }
}
