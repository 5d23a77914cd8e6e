//! Affine map y = x·W + b of (rows × in) inputs, W (in × out), b (out).
//! Backward: ∂x = ∂y·Wᵀ, ∂W = xᵀ·∂y, ∂b = Σ_rows ∂y.
//! The CPU version runs the engine's matrix kernel (AVX-512 where available) over row blocks
//! in parallel, with the bias fused into the product, and splits ∂W's sum over rows between
//! threads (one partial ∂W per thread, then summed) so ∂y is read once.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::blas::{gemm, transpose, MatRef};
use super::{add_into, grad_of, host, take_grad, ComposedFloat, KernelFloat};

/// Rows of x per parallel task in the row-parallel products.
const ROWS_PER_TASK: usize = 128;

/// How a product's destination rows start.
enum Start<'a, E> {
    /// Add to what is there (a gradient being accumulated).
    Accumulate,
    /// Start every row from this one (the bias).
    Rows(&'a [E]),
}

/// out (rows × n) = start + x (rows × k) · w (k × n), parallel over row blocks. Each task
/// prepares its own rows, so no pass over the output is serial (and fresh pages are first
/// touched by the threads that fill them).
fn rows_times<E: KernelFloat>(
    out: &mut [E],
    x: &[E],
    w: &[E],
    (k, n): (usize, usize),
    start: Start<'_, E>,
) {
    out.par_chunks_mut(ROWS_PER_TASK * n)
        .zip(x.par_chunks(ROWS_PER_TASK * k))
        .for_each(|(out, x)| {
            if let Start::Rows(init) = start {
                for row in out.chunks_exact_mut(n) {
                    row.copy_from_slice(init);
                }
            }
            gemm(
                out,
                n,
                MatRef::rows(x, x.len() / k, k, k),
                MatRef::rows(w, k, n, n),
                E::one(),
                true,
            );
        });
}

fn forward<E: KernelFloat>(x: &[E], w: &[E], b: &[E], inputs: usize, outputs: usize) -> Vec<E> {
    let mut out: Vec<E> = vec![E::zero(); x.len() / inputs * outputs];
    rows_times(&mut out, x, w, (inputs, outputs), Start::Rows(b));
    out
}

/// (xᵀ·∂y, Σ_rows ∂y): the weight and bias gradients, one partial per thread over its rows.
fn parameter_grads<E: KernelFloat>(
    x: &[E],
    g: &[E],
    inputs: usize,
    outputs: usize,
) -> (Vec<E>, Vec<E>) {
    let rows = x.len() / inputs;
    let per_task = rows
        .div_ceil(rayon::current_num_threads())
        .max(ROWS_PER_TASK);
    let zero = || (vec![E::zero(); inputs * outputs], vec![E::zero(); outputs]);
    x.par_chunks(per_task * inputs)
        .zip(g.par_chunks(per_task * outputs))
        .map(|(x, g)| {
            let r = x.len() / inputs;
            let (mut dw, mut db) = zero();
            gemm(
                &mut dw,
                outputs,
                MatRef::rows(x, r, inputs, inputs).t(),
                MatRef::rows(g, r, outputs, outputs),
                E::one(),
                false,
            );
            for row in g.chunks_exact(outputs) {
                db.iter_mut().zip(row).for_each(|(a, &d)| *a += d);
            }
            (dw, db)
        })
        .reduce(zero, |(mut dw, mut db), (dw2, db2)| {
            dw.iter_mut().zip(&dw2).for_each(|(a, &b)| *a += b);
            db.iter_mut().zip(&db2).for_each(|(a, &b)| *a += b);
            (dw, db)
        })
}

/// Fused affine map on the CPU.
pub(crate) fn linear_cpu<E: KernelFloat, T: Tape<E, Cpu> + Merge<T>>(
    x: Tensor<(usize, usize), E, Cpu, T>,
    w: Tensor<(usize, usize), E, Cpu, T>,
    b: Tensor<(usize,), E, Cpu, T>,
) -> Result<Tensor<(usize, usize), E, Cpu, T>, CpuError> {
    let (rows, inputs) = *x.shape();
    let outputs = w.shape().1;
    assert_eq!(
        w.shape().0,
        inputs,
        "linear: x has {inputs} columns, W has {} rows",
        w.shape().0
    );
    assert_eq!(
        b.shape().0,
        outputs,
        "linear: W has {outputs} columns, b has {}",
        b.shape().0
    );
    let (x, tx) = x.try_contiguous()?.split_tape();
    let (w, tw) = w.try_contiguous()?.split_tape();
    let (b, tb) = b.try_contiguous()?.split_tape();
    let mut tape = tx.merge(tw).merge(tb);
    // Backward reads x and W: hold their values (no copy) and only the tensors' ghosts.
    let (x_host, w_host) = (host(&x)?, host(&w)?);
    let out = forward(&x_host, &w_host, &host(&b)?, inputs, outputs);
    let out = x.device().try_tensor_from_vec(out, (rows, outputs))?;
    let out_ghost = out.ghost();
    let (x, w, b) = (x.ghost(), w.ghost(), b.ghost());
    tape.add_backward_op(move |grads| {
        let g = take_grad!(grads, &out_ghost);
        rows_times(
            grad_of!(grads, &x),
            &g,
            &transpose(&w_host, inputs, outputs),
            (outputs, inputs),
            Start::Accumulate,
        );
        let (dw, db) = parameter_grads(&x_host, &g, inputs, outputs);
        add_into(grad_of!(grads, &w), &dw);
        add_into(grad_of!(grads, &b), &db);
        Ok(())
    });
    Ok(out.put_tape(tape))
}

/// The same map from dfdx ops on any device.
pub(crate) fn linear_composed<E: ComposedFloat, D: Device<E>, T: Tape<E, D> + Merge<T>>(
    x: Tensor<(usize, usize), E, D, T>,
    w: Tensor<(usize, usize), E, D, T>,
    b: Tensor<(usize,), E, D, T>,
) -> Tensor<(usize, usize), E, D, T> {
    let shape = (x.shape().0, w.shape().1);
    x.matmul(w) + b.broadcast_like::<_, Axis<0>>(&shape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ops::gradcheck::{assert_close, gradcheck, random_values};

    #[test]
    fn gradient_matches_finite_differences() {
        let (rows, inputs, outputs) = (5, 3, 4);
        gradcheck(
            &[
                random_values(rows * inputs, 60),
                random_values(inputs * outputs, 61),
                random_values(outputs, 62),
            ],
            |mut v| {
                let b = v.pop().unwrap();
                let w = v.pop().unwrap().reshape_like(&(inputs, outputs));
                let x = v.pop().unwrap().reshape_like(&(rows, inputs));
                linear_cpu(x, w, b)
                    .unwrap()
                    .reshape_like(&(rows * outputs,))
            },
            1e-6,
        );
    }

    /// Sizes that cross the row blocks, the 8-row and 32-column tiles and the per-thread split.
    #[test]
    fn fused_matches_composed_with_gradients() {
        let dev = Cpu::default();
        let (rows, inputs, outputs) = (300, 37, 45);
        let make = |n, seed, shape: (usize, usize)| {
            let v: Vec<f32> = random_values(n, seed).iter().map(|&x| x as f32).collect();
            dev.tensor_from_vec(v, shape)
        };
        let x = make(rows * inputs, 63, (rows, inputs));
        let w = make(inputs * outputs, 64, (inputs, outputs));
        let b: Tensor<(usize,), f32, Cpu> = dev.tensor_from_vec(
            random_values(outputs, 65)
                .iter()
                .map(|&v| v as f32)
                .collect(),
            (outputs,),
        );
        let weights = make(rows * outputs, 66, (rows, outputs));
        let run = |fused: bool| {
            let (xt, wt, bt) = (x.leaky_trace(), w.retaped(), b.retaped());
            let y = if fused {
                linear_cpu(xt, wt, bt).unwrap()
            } else {
                linear_composed(xt, wt, bt)
            };
            let value = y.as_vec();
            let grads = (y * weights.clone()).sum().backward();
            [
                value,
                grads.get(&x).as_vec(),
                grads.get(&w).as_vec(),
                grads.get(&b).as_vec(),
            ]
        };
        let (f, c) = (run(true), run(false));
        for (what, (a, b)) in ["y", "dx", "dW", "db"].iter().zip(f.iter().zip(&c)) {
            assert_close(a, b, 1e-4, what);
        }
    }
}
