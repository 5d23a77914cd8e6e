//! Affine map y = x·W + b of (rows × in) inputs, W (in × out), b (out), and the plain product
//! y = x·W (the same kernels without the bias).
//! Backward: ∂x = ∂y·Wᵀ, ∂W = xᵀ·∂y, ∂b = Σ_rows ∂y.
//! The CPU version runs the engine's matrix kernel (AVX-512 where available) over row blocks
//! in parallel, with the bias fused into the product, and splits ∂W's sum over rows between
//! threads (one partial ∂W per thread, then summed) so ∂y is read once.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::blas::{gemm, transpose, MatRef};
use super::{add_into, grad_of, host, summed_pairs, take_grad, ComposedFloat, KernelFloat};
use crate::engine::ops::zeroed;

/// Rows of x per parallel task in the row-parallel products.
const ROWS_PER_TASK: usize = 128;

/// How a product's destination rows start.
pub(crate) enum Start<'a, E> {
    /// Add to what is there (a gradient being accumulated).
    Accumulate,
    /// Write the product over what is there (never read: a fresh buffer's pages are then
    /// touched once, by the thread that fills them).
    Overwrite,
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
        .for_each(|(out, x)| block_times(out, x, w, (k, n), &start));
}

/// out (r × n) = start + x (r × k) · w (k × n) for one block of rows, on the calling thread.
pub(crate) fn block_times<E: KernelFloat>(
    out: &mut [E],
    x: &[E],
    w: &[E],
    (k, n): (usize, usize),
    start: &Start<'_, E>,
) {
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
        !matches!(start, Start::Overwrite),
    );
}

/// (xᵀ·∂y, Σ_rows ∂y): the weight and bias gradients, one partial per thread over its rows;
/// the bias part stays empty without a bias (the plain product).
fn parameter_grads<E: KernelFloat>(
    x: &[E],
    g: &[E],
    (inputs, outputs): (usize, usize),
    with_bias: bool,
) -> (Vec<E>, Vec<E>) {
    let rows = x.len() / inputs;
    let per_task = rows
        .div_ceil(rayon::current_num_threads())
        .max(ROWS_PER_TASK);
    let bias_len = if with_bias { outputs } else { 0 };
    let zero = || (vec![E::zero(); inputs * outputs], vec![E::zero(); bias_len]);
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
            if with_bias {
                for row in g.chunks_exact(outputs) {
                    add_into(&mut db, row);
                }
            }
            (dw, db)
        })
        .reduce(zero, summed_pairs)
}

/// Fused affine map on the CPU.
pub(crate) fn linear_cpu<E: KernelFloat, T: Tape<E, Cpu> + Merge<T>>(
    x: Tensor<(usize, usize), E, Cpu, T>,
    w: Tensor<(usize, usize), E, Cpu, T>,
    b: Tensor<(usize,), E, Cpu, T>,
) -> Result<Tensor<(usize, usize), E, Cpu, T>, CpuError> {
    affine_cpu(x, w, Some(b))
}

/// The product x·W on the CPU: the affine map without its bias.
pub(crate) fn matmul_cpu<E: KernelFloat, T: Tape<E, Cpu> + Merge<T>>(
    x: Tensor<(usize, usize), E, Cpu, T>,
    w: Tensor<(usize, usize), E, Cpu, T>,
) -> Result<Tensor<(usize, usize), E, Cpu, T>, CpuError> {
    affine_cpu(x, w, None)
}

fn affine_cpu<E: KernelFloat, T: Tape<E, Cpu> + Merge<T>>(
    x: Tensor<(usize, usize), E, Cpu, T>,
    w: Tensor<(usize, usize), E, Cpu, T>,
    b: Option<Tensor<(usize,), E, Cpu, T>>,
) -> Result<Tensor<(usize, usize), E, Cpu, T>, CpuError> {
    let (rows, inputs) = *x.shape();
    let outputs = w.shape().1;
    assert_eq!(
        w.shape().0,
        inputs,
        "linear: x has {inputs} columns, W has {} rows",
        w.shape().0
    );
    let (x, tx) = x.try_contiguous()?.split_tape();
    let (w, tw) = w.try_contiguous()?.split_tape();
    let mut tape = tx.merge(tw);
    // Backward reads x and W: hold their values (no copy) and only the tensors' ghosts.
    let (x_host, w_host) = (host(&x)?, host(&w)?);
    let mut out: Vec<E> = zeroed(rows * outputs);
    let bias = match b {
        Some(b) => {
            assert_eq!(
                b.shape().0,
                outputs,
                "linear: W has {outputs} columns, b has {}",
                b.shape().0
            );
            let (b, tb) = b.try_contiguous()?.split_tape();
            tape = tape.merge(tb);
            let values = host(&b)?;
            rows_times(
                &mut out,
                &x_host,
                &w_host,
                (inputs, outputs),
                Start::Rows(&values),
            );
            Some(b.ghost())
        }
        None => {
            rows_times(
                &mut out,
                &x_host,
                &w_host,
                (inputs, outputs),
                Start::Overwrite,
            );
            None
        }
    };
    let out = x.device().try_tensor_from_vec(out, (rows, outputs))?;
    let out_ghost = out.ghost();
    let (x, w) = (x.ghost(), w.ghost());
    tape.add_backward_op(move |grads| {
        let g = take_grad!(grads, &out_ghost);
        rows_times(
            grad_of!(grads, &x),
            &g,
            &transpose(&w_host, inputs, outputs),
            (outputs, inputs),
            Start::Accumulate,
        );
        let (dw, db) = parameter_grads(&x_host, &g, (inputs, outputs), bias.is_some());
        add_into(grad_of!(grads, &w), &dw);
        if let Some(b) = &bias {
            add_into(grad_of!(grads, b), &db);
        }
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

/// The product from dfdx ops on any device.
pub(crate) fn matmul_composed<E: ComposedFloat, D: Device<E>, T: Tape<E, D> + Merge<T>>(
    x: Tensor<(usize, usize), E, D, T>,
    w: Tensor<(usize, usize), E, D, T>,
) -> Tensor<(usize, usize), E, D, T> {
    x.matmul(w)
}

#[cfg(test)]
mod tests;
