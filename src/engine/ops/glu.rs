//! The gated linear unit over the last axis (Dauphin et al. 2017, eq. 1): an input row
//! [a | b] of width 2W gives a ⊙ σ(b), width W. It closes every state-space layer (`post glu`).
//! Backward, with g = ∂L/∂out: ∂L/∂a = g ⊙ σ(b), ∂L/∂b = g ⊙ a ⊙ σ(b)(1 − σ(b)).
//!
//! The CPU kernel does it in one pass per row, parallel over row blocks, and recomputes σ(b)
//! in the backward pass from its copy of the input (the composed form keeps σ(b) and both
//! halves: two slices, a sigmoid and a product, each a serial pass of dfdx).

use dfdx::prelude::*;
use rayon::prelude::*;

use super::simd::Pointwise;
use super::ssm::for_slicing;
use super::{grad_of, host, take_grad, ComposedFloat, KernelFloat};
use crate::engine::ops::zeroed;

type Mat<E, D, T> = Tensor<(usize, usize), E, D, T>;

/// Rows per parallel task.
const ROWS_PER_TASK: usize = 64;

/// out = a ⊙ σ(b) for one input row [a | b] (out has the width of a).
pub(crate) fn glu_row<E: KernelFloat>(row: &[E], out: &mut [E]) {
    let (a, b) = row.split_at(out.len());
    E::pointwise_forward(Pointwise::Sigmoid, b, out);
    out.iter_mut().zip(a).for_each(|(o, &a)| *o *= a);
}

/// grad_row += ∂L/∂[a | b] for one input row [a | b] and g = ∂L/∂out; `gate` is a scratch
/// row of the width of a, for σ(b).
pub(crate) fn glu_row_backward<E: KernelFloat>(
    row: &[E],
    g: &[E],
    grad_row: &mut [E],
    gate: &mut [E],
) {
    let width = gate.len();
    let (a, b) = row.split_at(width);
    E::pointwise_forward(Pointwise::Sigmoid, b, gate);
    let (grad_a, grad_b) = grad_row.split_at_mut(width);
    for j in 0..width {
        let s = gate[j];
        grad_a[j] += g[j] * s;
        grad_b[j] += g[j] * a[j] * s * (E::one() - s);
    }
}

fn forward<E: KernelFloat>(y: &[E], width: usize) -> Vec<E> {
    let mut out = zeroed(y.len() / 2);
    out.par_chunks_mut(width)
        .zip(y.par_chunks(2 * width))
        .with_min_len(ROWS_PER_TASK)
        .for_each(|(out, row)| glu_row(row, out));
    out
}

/// Accumulates ∂L/∂[a | b] into `grad_y`.
fn backward<E: KernelFloat>(y: &[E], g: &[E], grad_y: &mut [E], width: usize) {
    grad_y
        .par_chunks_mut(2 * width)
        .zip(y.par_chunks(2 * width).zip(g.par_chunks(width)))
        .with_min_len(ROWS_PER_TASK)
        .for_each_init(
            || vec![E::zero(); width],
            |gate, (grad_row, (row, g))| glu_row_backward(row, g, grad_row, gate),
        );
}

/// Fused GLU on the CPU: (rows, 2W) → (rows, W).
pub(crate) fn glu_cpu<E: KernelFloat, T: Tape<E, Cpu>>(
    y: Mat<E, Cpu, T>,
) -> Result<Mat<E, Cpu, T>, CpuError> {
    let (rows, double) = *y.shape();
    assert!(
        double % 2 == 0,
        "glu: the last axis ({double}) must be even"
    );
    let width = double / 2;
    let (y, mut tape) = y.try_contiguous()?.split_tape();
    let y_host = host(&y)?;
    let out = y
        .device()
        .try_tensor_from_vec(forward(&y_host, width), (rows, width))?;
    let out_ghost = out.ghost();
    let y = y.ghost();
    tape.add_backward_op(move |grads| {
        let g = take_grad!(grads, &out_ghost);
        backward(&y_host, &g, grad_of!(grads, &y), width);
        Ok(())
    });
    Ok(out.put_tape(tape))
}

/// The same unit from dfdx ops on any device.
pub(crate) fn glu_composed<E: ComposedFloat, D: Device<E>, T: Tape<E, D>>(
    y: Mat<E, D, T>,
) -> Mat<E, D, T> {
    let width = y.shape().1 / 2;
    let y = for_slicing(y);
    let gate = y.with_empty_tape().slice((.., width..)).sigmoid();
    y.slice((.., ..width)) * gate
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ops::gradcheck::{assert_close, gradcheck, random_values};

    #[test]
    fn gradient_matches_finite_differences() {
        let (rows, width) = (3, 5);
        let y: Vec<f64> = random_values(rows * 2 * width, 70)
            .iter()
            .map(|v| 4.0 * v)
            .collect();
        gradcheck(
            &[y],
            |mut v| {
                let y = v.pop().unwrap().reshape_like(&(rows, 2 * width));
                glu_cpu(y).unwrap().reshape_like(&(rows * width,))
            },
            1e-6,
        );
    }

    /// Enough rows to split over tasks, a width that is not a multiple of the vector lanes,
    /// and inputs far in both tails of the sigmoid.
    #[test]
    fn fused_matches_composed_with_gradients() {
        let dev = Cpu::default();
        let (rows, width) = (300, 37);
        let values: Vec<f32> = random_values(rows * 2 * width, 71)
            .iter()
            .map(|&v| (30.0 * v * v * v) as f32)
            .collect();
        let y = dev.tensor_from_vec(values, (rows, 2 * width));
        let weights: Vec<f32> = random_values(rows * width, 72)
            .iter()
            .map(|&v| v as f32)
            .collect();
        let weights = dev.tensor_from_vec(weights, (rows, width));
        let run = |fused: bool| {
            let out = if fused {
                glu_cpu(y.leaky_trace()).unwrap()
            } else {
                glu_composed(y.leaky_trace())
            };
            let value = out.as_vec();
            let grad = (out * weights.clone()).sum().backward().get(&y).as_vec();
            (value, grad)
        };
        let ((fv, fg), (cv, cg)) = (run(true), run(false));
        assert_close(&fv, &cv, 1e-6, "forward");
        assert_close(&fg, &cg, 1e-5, "backward");
    }
}
