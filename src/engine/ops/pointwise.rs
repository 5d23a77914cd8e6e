//! The fused point-wise op: y = f(x) for one of the [`Pointwise`] functions, multi-threaded
//! over chunks, holding only x (in place, no copy) for the backward pass ∂x = ∂y·f′(x). dfdx's
//! composed forms (e.g. SiLU as `sigmoid(x) * x`) run serially and keep x, σ(x) and the
//! product alive until the backward pass; this keeps one tensor.

use dfdx::prelude::*;
use rayon::prelude::*;

pub use super::simd::Pointwise;
use super::{grad_of, host, take_grad, ComposedFloat, KernelFloat};
use crate::engine::ops::zeroed;

/// Elements per parallel task.
const CHUNK: usize = 4096;

fn forward<E: KernelFloat>(f: Pointwise, x: &[E]) -> Vec<E> {
    let mut out = zeroed(x.len());
    out.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(o, x)| E::pointwise_forward(f, x, o));
    out
}

/// Accumulates ∂L/∂x = g·f′(x) into `grad_x`.
fn backward<E: KernelFloat>(f: Pointwise, x: &[E], grad_out: &[E], grad_x: &mut [E]) {
    grad_x
        .par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(grad_out.par_chunks(CHUNK)))
        .for_each(|(gx, (x, g))| E::pointwise_backward(f, x, g, gx));
}

/// y = f(x) on the CPU.
pub(crate) fn pointwise_cpu<S: Shape, E: KernelFloat, T: Tape<E, Cpu>>(
    f: Pointwise,
    x: Tensor<S, E, Cpu, T>,
) -> Result<Tensor<S, E, Cpu, T>, CpuError> {
    let x = x.try_contiguous()?;
    let (x, mut tape) = x.split_tape();
    // Backward reads x: hold its values (no copy) and only the tensor's ghost.
    let x_host = host(&x)?;
    let out = x
        .device()
        .try_tensor_from_vec(forward(f, &x_host), *x.shape())?;
    let out_ghost = out.ghost();
    let x = x.ghost();
    tape.add_backward_op(move |grads| {
        let g = take_grad!(grads, &out_ghost);
        backward(f, &x_host, &g, grad_of!(grads, &x));
        Ok(())
    });
    Ok(out.put_tape(tape))
}

/// y = f(x) from dfdx ops on any device.
pub(crate) fn pointwise_composed<S: Shape, E: ComposedFloat, D: Device<E>, T: Tape<E, D>>(
    f: Pointwise,
    x: Tensor<S, E, D, T>,
) -> Tensor<S, E, D, T> {
    match f {
        Pointwise::Gelu => super::gelu::gelu_composed(x),
        Pointwise::Silu => super::silu::silu_composed(x),
        Pointwise::Sigmoid => x.sigmoid(),
        Pointwise::Relu => x.relu(),
    }
}
