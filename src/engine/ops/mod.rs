//! Custom ops: fused, multi-threaded CPU kernels plugged into dfdx's tape, each with a
//! composed version built from dfdx's own ops (used on CUDA and as the test oracle).
//!
//! Every op follows the pattern of dfdx 0.13's own ops (`tensor_ops/utilities/ops.rs`):
//! `split_tape` the inputs, run the forward kernel, register a backward closure with
//! `add_backward_op` that accumulates into the inputs' gradients, and `put_tape` on the
//! output. Kernels are generic over [`KernelFloat`] so the finite-difference checks run in f64.

pub mod attention;
pub mod cross_entropy;
pub mod gelu;
pub mod layer_norm;
pub mod ssm;

mod blas;
pub mod device;

#[cfg(test)]
pub(crate) mod gradcheck;

use dfdx::prelude::*;

pub use attention::{AttentionKind, AttentionSpec};
pub use device::EngineDevice;

/// The element types the composed (device-generic) ops run in.
pub trait ComposedFloat:
    Dtype + num_traits::Float + num_traits::FromPrimitive + std::iter::Sum
{
}

impl<E: Dtype + num_traits::Float + num_traits::FromPrimitive + std::iter::Sum> ComposedFloat
    for E
{
}

/// The element types the CPU kernels run in: f32 for training, f64 for gradient checks.
pub trait KernelFloat:
    num_traits::Float
    + num_traits::NumAssign
    + Dtype
    + Send
    + Sync
    + std::iter::Sum
    + std::fmt::Debug
    + 'static
{
    fn erf(self) -> Self;
    fn of(x: f64) -> Self;
}

impl KernelFloat for f32 {
    fn erf(self) -> Self {
        libm::erff(self)
    }
    fn of(x: f64) -> Self {
        x as f32
    }
}

impl KernelFloat for f64 {
    fn erf(self) -> Self {
        libm::erf(self)
    }
    fn of(x: f64) -> Self {
        x
    }
}

/// The values of a tensor in row-major order. Callers pass tensors made contiguous first
/// (`try_contiguous` is free for a contiguous tensor), so a plain copy of the buffer is right.
pub(crate) fn host<S: Shape, E: Unit, T>(t: &Tensor<S, E, Cpu, T>) -> Vec<E> {
    let mut buf = vec![E::default(); t.shape().num_elements()];
    t.copy_into(&mut buf);
    buf
}

/// Moves `t`'s gradient out of `grads` (allocating zeros if nothing flowed into it), so a
/// backward closure can read it while it writes the inputs' gradients; give it back with
/// [`restore_grad`]. dfdx's own two-borrow helpers are crate-private.
pub(crate) fn take_grad<S: Shape, E: Unit>(
    grads: &mut Gradients<E, Cpu>,
    t: &Tensor<S, E, Cpu>,
) -> Result<Vec<E>, CpuError> {
    Ok(std::mem::take(&mut **grads.get_or_alloc_mut(t)?))
}

pub(crate) fn restore_grad<S: Shape, E: Unit>(
    grads: &mut Gradients<E, Cpu>,
    t: &Tensor<S, E, Cpu>,
    grad: Vec<E>,
) -> Result<(), CpuError> {
    **grads.get_or_alloc_mut(t)? = grad;
    Ok(())
}

/// The gradient buffer of `t`, to accumulate into.
pub(crate) fn grad_mut<'a, S: Shape, E: Unit>(
    grads: &'a mut Gradients<E, Cpu>,
    t: &Tensor<S, E, Cpu>,
) -> Result<&'a mut [E], CpuError> {
    Ok(grads.get_or_alloc_mut(t)?.as_mut_slice())
}
