//! A layer's output projection fused with the element-wise ops on either side of it:
//! out = glu(f(x)·W + b), or f(x)·W + b without the gate, for x (rows × in), W (in × out),
//! b (out) and f one of the [`Pointwise`] activations or none. It closes the state-space
//! layers (S4's `activation → output linear → GLU`) and the feed-forward network
//! (`linear → activation → linear`: the second product with f as its prologue).
//!
//! f runs on each row block of x as the block is prepared for the product, and the gate on
//! the block's product rows while they are still in cache, so neither f(x) nor the pre-gate
//! product is a tensor of the graph: no memory pass of its own each way, and no gradient
//! buffer that dfdx would allocate and zero on the main thread while the other cores wait.
//!
//! Backward, with G = ∂L/∂out, A = f(x), Z = A·W + b = [Z_a | Z_b]:
//!   ∂Z = G without the gate; with it (Dauphin et al. 2017, eq. 1),
//!   ∂Z_a = G ⊙ σ(Z_b), ∂Z_b = G ⊙ Z_a ⊙ σ(Z_b)(1 − σ(Z_b));
//!   ∂x = (∂Z·Wᵀ) ⊙ f′(x),  ∂W = Aᵀ·∂Z,  ∂b = Σ_rows ∂Z.
//! A is recomputed from x per row block; Z is kept when there is a gate, which needs it.
//!
//! The composed form (CUDA, and the oracle) is the unfused chain of dfdx ops.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::blas::{gemm, transpose, MatRef};
use super::glu::{glu_composed, glu_row, glu_row_backward};
use super::linear::{block_times, linear_composed, Start};
use super::pointwise::{pointwise_composed, Pointwise};
use super::{add_into, grad_of, host, summed_pairs, take_grad, zeroed, ComposedFloat, KernelFloat};

type Mat<E, D, T> = Tensor<(usize, usize), E, D, T>;

/// Rows of x per parallel task.
const ROWS_PER_TASK: usize = 128;

/// The element-wise ops fused around the product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fusion {
    /// f, applied to x before the product.
    pub activation: Option<Pointwise>,
    /// The gated linear unit on the product's rows [a | b]: a ⊙ σ(b).
    pub glu: bool,
}

impl Fusion {
    /// The width of the output for a product of `outputs` columns.
    fn out_width(self, outputs: usize) -> usize {
        if self.glu {
            outputs / 2
        } else {
            outputs
        }
    }
}

/// A = f(x) for a block of rows: x itself without f, else f(x) in `scratch`.
fn activated<'a, E: KernelFloat>(
    f: Option<Pointwise>,
    x: &'a [E],
    scratch: &'a mut Vec<E>,
) -> &'a [E] {
    match f {
        None => x,
        Some(f) => {
            scratch.resize(x.len(), E::zero());
            E::pointwise_forward(f, x, scratch);
            scratch
        }
    }
}

/// The output, and Z when there is a gate (empty otherwise).
fn forward<E: KernelFloat>(
    x: &[E],
    w: &[E],
    b: &[E],
    (k, n): (usize, usize),
    fusion: Fusion,
) -> (Vec<E>, Vec<E>) {
    let rows = x.len() / k;
    let m = fusion.out_width(n);
    let mut out = zeroed(rows * m);
    let x_blocks = x.par_chunks(ROWS_PER_TASK * k);
    if !fusion.glu {
        out.par_chunks_mut(ROWS_PER_TASK * n)
            .zip(x_blocks)
            .for_each_init(Vec::new, |a, (out, x)| {
                block_times(
                    out,
                    activated(fusion.activation, x, a),
                    w,
                    (k, n),
                    &Start::Rows(b),
                )
            });
        return (out, Vec::new());
    }
    let mut z = zeroed(rows * n);
    out.par_chunks_mut(ROWS_PER_TASK * m)
        .zip(z.par_chunks_mut(ROWS_PER_TASK * n))
        .zip(x_blocks)
        .for_each_init(Vec::new, |a, ((out, z), x)| {
            block_times(
                z,
                activated(fusion.activation, x, a),
                w,
                (k, n),
                &Start::Rows(b),
            );
            for (out, z) in out.chunks_exact_mut(m).zip(z.chunks_exact(n)) {
                glu_row(z, out);
            }
        });
    (out, z)
}

/// One task's scratch rows in the backward pass.
#[derive(Default)]
struct Scratch<E> {
    /// f(x) of the block.
    a: Vec<E>,
    /// ∂Z of the block, with a gate.
    dz: Vec<E>,
    /// ∂Z·Wᵀ of the block, with f.
    da: Vec<E>,
    /// σ(Z_b) of one row.
    gate: Vec<E>,
}

/// Accumulates ∂x into `grad_x` and returns (∂W, ∂b), one partial per rayon split.
#[allow(clippy::too_many_arguments)]
fn backward<E: KernelFloat>(
    x: &[E],
    w_t: &[E],
    z: &[E],
    g: &[E],
    grad_x: &mut [E],
    (k, n): (usize, usize),
    fusion: Fusion,
) -> (Vec<E>, Vec<E>) {
    let m = fusion.out_width(n);
    let zero = || (vec![E::zero(); k * n], vec![E::zero(); n]);
    // Without a gate ∂Z is G itself, read where Z would be.
    let z_or_g = if fusion.glu { z } else { g };
    grad_x
        .par_chunks_mut(ROWS_PER_TASK * k)
        .zip(x.par_chunks(ROWS_PER_TASK * k))
        .zip(g.par_chunks(ROWS_PER_TASK * m))
        .zip(z_or_g.par_chunks(ROWS_PER_TASK * n))
        .fold(
            || (zero(), Scratch::default()),
            |((mut dw, mut db), mut s), (((grad_x, x), g), z)| {
                let r = x.len() / k;
                let dz: &[E] = if fusion.glu {
                    s.dz.clear();
                    s.dz.resize(r * n, E::zero());
                    s.gate.resize(m, E::zero());
                    for ((dz, z), g) in
                        s.dz.chunks_exact_mut(n)
                            .zip(z.chunks_exact(n))
                            .zip(g.chunks_exact(m))
                    {
                        glu_row_backward(z, g, dz, &mut s.gate);
                    }
                    &s.dz
                } else {
                    g
                };
                let a = activated(fusion.activation, x, &mut s.a);
                gemm(
                    &mut dw,
                    n,
                    MatRef::rows(a, r, k, k).t(),
                    MatRef::rows(dz, r, n, n),
                    E::one(),
                    true,
                );
                for row in dz.chunks_exact(n) {
                    add_into(&mut db, row);
                }
                let dz = MatRef::rows(dz, r, n, n);
                let w_t = MatRef::rows(w_t, n, k, k);
                match fusion.activation {
                    None => gemm(grad_x, k, dz, w_t, E::one(), true),
                    Some(f) => {
                        s.da.resize(r * k, E::zero());
                        gemm(&mut s.da, k, dz, w_t, E::one(), false);
                        E::pointwise_backward(f, x, &s.da, grad_x);
                    }
                }
                ((dw, db), s)
            },
        )
        .map(|(partials, _)| partials)
        .reduce(zero, summed_pairs)
}

/// The fused projection on the CPU: x (rows × in), W (in × out), b (out) → (rows × out), or
/// (rows × out/2) with the gate.
pub(crate) fn projection_cpu<E: KernelFloat, T: Tape<E, Cpu> + Merge<T>>(
    x: Mat<E, Cpu, T>,
    w: Mat<E, Cpu, T>,
    b: Tensor<(usize,), E, Cpu, T>,
    fusion: Fusion,
) -> Result<Mat<E, Cpu, T>, CpuError> {
    let (rows, inputs) = *x.shape();
    let outputs = w.shape().1;
    assert!(
        w.shape().0 == inputs && b.shape().0 == outputs,
        "projection: x has {inputs} columns, W is {:?}, b has {}",
        w.shape(),
        b.shape().0
    );
    assert!(
        !fusion.glu || outputs.is_multiple_of(2),
        "projection: a gate needs an even number of outputs, not {outputs}"
    );
    let (x, tx) = x.try_contiguous()?.split_tape();
    let (w, tw) = w.try_contiguous()?.split_tape();
    let (b, tb) = b.try_contiguous()?.split_tape();
    let mut tape = tx.merge(tw).merge(tb);
    // Backward reads x and W: hold their values (no copy) and only the tensors' ghosts.
    let (x_host, w_host) = (host(&x)?, host(&w)?);
    let (out, z) = forward(&x_host, &w_host, &host(&b)?, (inputs, outputs), fusion);
    let out = x
        .device()
        .try_tensor_from_vec(out, (rows, fusion.out_width(outputs)))?;
    let out_ghost = out.ghost();
    let (x, w, b) = (x.ghost(), w.ghost(), b.ghost());
    tape.add_backward_op(move |grads| {
        let g = take_grad!(grads, &out_ghost);
        let w_t = transpose(&w_host, inputs, outputs);
        let (dw, db) = backward(
            &x_host,
            &w_t,
            &z,
            &g,
            grad_of!(grads, &x),
            (inputs, outputs),
            fusion,
        );
        add_into(grad_of!(grads, &w), &dw);
        add_into(grad_of!(grads, &b), &db);
        Ok(())
    });
    Ok(out.put_tape(tape))
}

/// The same projection from dfdx ops on any device: the unfused chain.
pub(crate) fn projection_composed<E: ComposedFloat, D: Device<E>, T: Tape<E, D> + Merge<T>>(
    x: Mat<E, D, T>,
    w: Mat<E, D, T>,
    b: Tensor<(usize,), E, D, T>,
    fusion: Fusion,
) -> Mat<E, D, T> {
    let a = match fusion.activation {
        Some(f) => pointwise_composed(f, x),
        None => x,
    };
    let z = linear_composed(a, w, b);
    if fusion.glu {
        glu_composed(z)
    } else {
        z
    }
}

#[cfg(test)]
mod tests;
