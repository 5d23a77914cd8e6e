//! One handle on the engine's ops for layer code written generically over the element type
//! (so its math is checked in f64): [`Engine`] runs the device's ops ([`EngineDevice`], the
//! fused kernels on the CPU) in training; the tests pass [`Composed`] (dfdx compositions, any
//! element type) or [`CpuKernels`] (the fused CPU kernels in f64). Passing one value instead of
//! a closure per op keeps the layers' signatures short as they take more ops.

use dfdx::prelude::*;

use super::device::EngineDevice;
#[cfg(test)]
use crate::engine::error::EngineError;
use crate::engine::error::Result;

type Mat<E, D, T> = Tensor<(usize, usize), E, D, T>;
type Seq3<E, D, T> = Tensor<(usize, usize, usize), E, D, T>;
type Vector<E, D, T> = Tensor<(usize,), E, D, T>;

/// The ops an element-generic layer calls (each documented on [`EngineDevice`]).
pub(crate) trait Kernels<E: Dtype, D: Device<E>, T: Tape<E, D> + Merge<T>> {
    /// x_t = λ ⊙ x_{t∓1} + v_t, given v, log λ and the direction.
    fn complex_scan(
        &self,
        v: Seq3<E, D, T>,
        log_lambda: Vector<E, D, T>,
        reverse: bool,
    ) -> Result<Seq3<E, D, T>>;
    /// y + D·u for y (rows, C·H), u (rows, H), D (C, H).
    fn skip(&self, y: Mat<E, D, T>, u: Mat<E, D, T>, d: Mat<E, D, T>) -> Result<Mat<E, D, T>>;
    /// x·W.
    fn matmul(&self, x: Mat<E, D, T>, w: Mat<E, D, T>) -> Result<Mat<E, D, T>>;
    /// x + y.
    fn add(&self, x: Mat<E, D, T>, y: Mat<E, D, T>) -> Result<Mat<E, D, T>>;
}

/// The device's own ops: what training runs.
pub(crate) struct Engine;

impl<D: EngineDevice, T: Tape<f32, D> + Merge<T>> Kernels<f32, D, T> for Engine {
    fn complex_scan(
        &self,
        v: Seq3<f32, D, T>,
        log_lambda: Vector<f32, D, T>,
        reverse: bool,
    ) -> Result<Seq3<f32, D, T>> {
        D::complex_scan(v, log_lambda, reverse)
    }
    fn skip(
        &self,
        y: Mat<f32, D, T>,
        u: Mat<f32, D, T>,
        d: Mat<f32, D, T>,
    ) -> Result<Mat<f32, D, T>> {
        D::skip(y, u, d)
    }
    fn matmul(&self, x: Mat<f32, D, T>, w: Mat<f32, D, T>) -> Result<Mat<f32, D, T>> {
        D::matmul(x, w)
    }
    fn add(&self, x: Mat<f32, D, T>, y: Mat<f32, D, T>) -> Result<Mat<f32, D, T>> {
        D::add(x, y)
    }
}

/// The compositions of dfdx ops, on any device and element type.
#[cfg(test)]
pub(crate) struct Composed;

#[cfg(test)]
impl<E: super::ComposedFloat, D: Device<E>, T: Tape<E, D> + Merge<T>> Kernels<E, D, T>
    for Composed
{
    fn complex_scan(
        &self,
        v: Seq3<E, D, T>,
        log_lambda: Vector<E, D, T>,
        reverse: bool,
    ) -> Result<Seq3<E, D, T>> {
        Ok(super::ssm::scan::complex_scan_composed(
            v, log_lambda, reverse,
        ))
    }
    fn skip(&self, y: Mat<E, D, T>, u: Mat<E, D, T>, d: Mat<E, D, T>) -> Result<Mat<E, D, T>> {
        Ok(super::residual::skip_composed(y, u, d))
    }
    fn matmul(&self, x: Mat<E, D, T>, w: Mat<E, D, T>) -> Result<Mat<E, D, T>> {
        Ok(super::linear::matmul_composed(x, w))
    }
    fn add(&self, x: Mat<E, D, T>, y: Mat<E, D, T>) -> Result<Mat<E, D, T>> {
        Ok(super::residual::add_composed(x, y))
    }
}

/// The fused CPU kernels in any element type (f64 in the tests).
#[cfg(test)]
pub(crate) struct CpuKernels;

#[cfg(test)]
impl<E, T> Kernels<E, Cpu, T> for CpuKernels
where
    E: super::KernelFloat,
    Cpu: Device<E>,
    T: Tape<E, Cpu> + Merge<T>,
{
    fn complex_scan(
        &self,
        v: Seq3<E, Cpu, T>,
        log_lambda: Vector<E, Cpu, T>,
        reverse: bool,
    ) -> Result<Seq3<E, Cpu, T>> {
        super::ssm::scan::complex_scan_cpu(v, log_lambda, reverse).map_err(EngineError::device)
    }
    fn skip(
        &self,
        y: Mat<E, Cpu, T>,
        u: Mat<E, Cpu, T>,
        d: Mat<E, Cpu, T>,
    ) -> Result<Mat<E, Cpu, T>> {
        super::residual::skip_cpu(y, u, d).map_err(EngineError::device)
    }
    fn matmul(&self, x: Mat<E, Cpu, T>, w: Mat<E, Cpu, T>) -> Result<Mat<E, Cpu, T>> {
        super::linear::matmul_cpu(x, w).map_err(EngineError::device)
    }
    fn add(&self, x: Mat<E, Cpu, T>, y: Mat<E, Cpu, T>) -> Result<Mat<E, Cpu, T>> {
        super::residual::add_cpu(x, y).map_err(EngineError::device)
    }
}
