//! Dispatch of the engine's ops per device: the CPU runs the fused kernels, other devices the
//! compositions of dfdx ops (the same math, checked against each other in the op tests).

use std::cell::Cell;

use dfdx::prelude::*;

use super::adam::{adam_composed, adam_cpu, AdamRule, Updated};
use super::attention::{attention_composed, attention_cpu, AttentionSpec, Seq3};
use super::cross_entropy::{cross_entropy_composed, cross_entropy_cpu};
use super::ema_output::{ema_output_composed, ema_output_cpu};
use super::embedding::{embedding_composed, embedding_cpu};
use super::gated_residual::{gated_residual_composed, gated_residual_cpu};
use super::gelu::{gelu_composed, gelu_cpu};
use super::glu::{glu_composed, glu_cpu};
use super::layer_norm::{layer_norm_composed, layer_norm_cpu};
use super::linear::{linear_composed, linear_cpu, matmul_composed, matmul_cpu};
use super::mega_attention::{mega_attention_composed, mega_attention_cpu, ChunkSpec};
use super::mega_gates::{mega_gates_composed, mega_gates_cpu, MegaGates};
use super::product::{product_composed, product_cpu};
use super::projection::{projection_composed, projection_cpu, Fusion};
use super::residual::{add_composed, add_cpu, skip_composed, skip_cpu};
use super::silu::{silu_composed, silu_cpu};
use super::ssm::cauchy::{cauchy_composed, cauchy_cpu, Nodes};
use super::ssm::diagonal::{
    diagonal_ssm_composed, diagonal_ssm_cpu, shared_diagonal_ssm_composed, shared_diagonal_ssm_cpu,
    DiagonalParams, SharedDiagonalParams,
};
use super::ssm::ema::{ema_composed, ema_cpu, EmaParams};
use super::ssm::long_conv::{long_conv_composed, long_conv_cpu};
use super::ssm::scan::{complex_scan_composed, complex_scan_cpu};
use super::ssm::spectrum::{inverse_rfft_composed, inverse_rfft_cpu};
use crate::engine::error::{EngineError, Result};

type Mat<D, T> = Tensor<(usize, usize), f32, D, T>;

thread_local! {
    static COMPOSED_ON_CPU: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with the CPU dispatching to the composed ops (the code path CUDA takes) on this
/// thread: the oracle for whole models, and a way to rule the fused kernels in or out when
/// debugging.
pub fn with_composed_ops<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            COMPOSED_ON_CPU.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(COMPOSED_ON_CPU.with(|c| c.replace(true)));
    f()
}

fn composed_on_cpu() -> bool {
    COMPOSED_ON_CPU.with(Cell::get)
}

/// Declares the engine's ops once each, with the composed function (dfdx ops, any device) and
/// the fused CPU kernel that compute it. The trait method runs the composition, which is every
/// device's default; the CPU's override runs the kernel, or the composition under
/// [`with_composed_ops`]. Generic parameters go in brackets (a macro cannot end a `tt` list
/// at `>`).
macro_rules! engine_ops {
    ($(
        $(#[$doc:meta])*
        fn $op:ident[$($generics:tt)*]($($arg:ident: $ty:ty),* $(,)?) -> $out:ty
            = $composed:path, $fused:path;
    )*) => {
        /// A device the engine trains on, with its implementation of each op.
        pub trait EngineDevice: Device<f32> + Cache + Synchronize {
            $(
                $(#[$doc])*
                fn $op<$($generics)*>($($arg: $ty),*) -> Result<$out> {
                    Ok($composed($($arg),*))
                }
            )*
        }

        impl EngineDevice for Cpu {
            $(
                fn $op<$($generics)*>($($arg: $ty),*) -> Result<$out> {
                    if composed_on_cpu() {
                        return Ok($composed($($arg),*));
                    }
                    $fused($($arg),*).map_err(EngineError::device)
                }
            )*
        }
    };
}

type Flat<D> = Tensor<(usize,), f32, D>;

engine_ops! {
    /// One Adam/AdamW update of a flat parameter (see [`super::adam`]): (θ, g, m, v) → the
    /// new (θ, m, v), on the parameter's device.
    fn adam[](
        theta: Flat<Self>,
        grad: Flat<Self>,
        m: Flat<Self>,
        v: Flat<Self>,
        rule: &AdamRule,
    ) -> Updated<Self> = adam_composed, adam_cpu;

    fn linear[T: Tape<f32, Self> + Merge<T>](
        x: Mat<Self, T>,
        w: Mat<Self, T>,
        b: Tensor<(usize,), f32, Self, T>,
    ) -> Mat<Self, T> = linear_composed, linear_cpu;

    /// glu(f(x)·W + b), or f(x)·W + b: a layer's output projection with the element-wise
    /// ops around it fused (see [`super::projection`]).
    fn projection[T: Tape<f32, Self> + Merge<T>](
        x: Mat<Self, T>,
        w: Mat<Self, T>,
        b: Tensor<(usize,), f32, Self, T>,
        fusion: Fusion,
    ) -> Mat<Self, T> = projection_composed, projection_cpu;

    /// The rows of a table (vocab × width) at token ids (see [`super::embedding`]).
    fn embedding[T: Tape<f32, Self>](table: Mat<Self, T>, ids: &[usize]) -> Mat<Self, T>
        = embedding_composed, embedding_cpu;

    /// x·W, the affine map's kernels without the bias (see [`super::linear`]).
    fn matmul[T: Tape<f32, Self> + Merge<T>](x: Mat<Self, T>, w: Mat<Self, T>) -> Mat<Self, T>
        = matmul_composed, matmul_cpu;

    fn gelu[S: Shape, T: Tape<f32, Self>](x: Tensor<S, f32, Self, T>) -> Tensor<S, f32, Self, T>
        = gelu_composed, gelu_cpu;

    /// The gated linear unit a ⊙ σ(b) of rows [a | b] (see [`super::glu`]).
    fn glu[T: Tape<f32, Self>](y: Mat<Self, T>) -> Mat<Self, T> = glu_composed, glu_cpu;

    /// x + y, the residual connection (see [`super::residual`]).
    fn add[S: Shape, T: Tape<f32, Self> + Merge<T>](
        x: Tensor<S, f32, Self, T>,
        y: Tensor<S, f32, Self, T>,
    ) -> Tensor<S, f32, Self, T> = add_composed, add_cpu;

    /// x ⊙ y, element-wise (see [`super::product`]).
    fn product[S: Shape, T: Tape<f32, Self> + Merge<T>](
        x: Tensor<S, f32, Self, T>,
        y: Tensor<S, f32, Self, T>,
    ) -> Tensor<S, f32, Self, T> = product_composed, product_cpu;

    /// y + D·u, the feedthrough of C output channels per input channel: y (rows, C·H),
    /// u (rows, H), D (C, H) (see [`super::residual`]).
    fn skip[T: Tape<f32, Self> + Merge<T>](
        y: Mat<Self, T>,
        u: Mat<Self, T>,
        d: Mat<Self, T>,
    ) -> Mat<Self, T> = skip_composed, skip_cpu;

    /// SiLU, x·σ(x) (see [`super::silu`]).
    fn silu[S: Shape, T: Tape<f32, Self>](x: Tensor<S, f32, Self, T>) -> Tensor<S, f32, Self, T>
        = silu_composed, silu_cpu;

    fn layer_norm[T: Tape<f32, Self> + Merge<T>](
        x: Mat<Self, T>,
        gamma: Tensor<(usize,), f32, Self, T>,
        beta: Tensor<(usize,), f32, Self, T>,
        eps: f64,
    ) -> Mat<Self, T> = layer_norm_composed, layer_norm_cpu;

    fn attention[T: Tape<f32, Self> + Merge<T>](
        q: Seq3<f32, Self, T>,
        k: Seq3<f32, Self, T>,
        v: Seq3<f32, Self, T>,
        spec: &AttentionSpec,
        lengths: &[usize],
    ) -> Seq3<f32, Self, T> = attention_composed, attention_cpu;

    /// MEGA's chunked attention with its relative position bias (see
    /// [`super::mega_attention`]): q, k (R, C, z), v (R, C, e), bias (2P − 1) → (R, C, e).
    fn mega_attention[T: Tape<f32, Self> + Merge<T>](
        q: Seq3<f32, Self, T>,
        k: Seq3<f32, Self, T>,
        v: Seq3<f32, Self, T>,
        bias: Tensor<(usize,), f32, Self, T>,
        spec: &ChunkSpec,
        lengths: &[usize],
    ) -> Seq3<f32, Self, T> = mega_attention_composed, mega_attention_cpu;

    /// MEGA's gates, Q and K from the projection of the EMA output (see
    /// [`super::mega_gates`]): M (B, L, d + z + v + d), κ, μ (2z) → φ, Q, K, γ, M_h.
    fn mega_gates[T: Tape<f32, Self> + Merge<T>](
        mixed: Seq3<f32, Self, T>,
        scale: Tensor<(usize,), f32, Self, T>,
        offset: Tensor<(usize,), f32, Self, T>,
        model: usize,
    ) -> MegaGates<f32, Self, T> = mega_gates_composed, mega_gates_cpu;

    /// MEGA's gated residual X + φ⊙(Ĥ − X) (see [`super::gated_residual`]).
    fn gated_residual[S: Shape, T: Tape<f32, Self> + Merge<T>](
        x: Tensor<S, f32, Self, T>,
        gate: Tensor<S, f32, Self, T>,
        candidate: Tensor<S, f32, Self, T>,
    ) -> Tensor<S, f32, Self, T> = gated_residual_composed, gated_residual_cpu;

    fn cross_entropy[T: Tape<f32, Self>](
        logits: Mat<Self, T>,
        targets: &[usize],
        weights: &[f32],
    ) -> Tensor<(), f32, Self, T> = cross_entropy_composed, cross_entropy_cpu;

    /// The diagonal complex recurrence x_t = λ ⊙ x_{t−1} + v_t (see [`super::ssm::scan`]).
    fn complex_scan[T: Tape<f32, Self> + Merge<T>](
        v: Seq3<f32, Self, T>,
        log_lambda: Tensor<(usize,), f32, Self, T>,
        reverse: bool,
    ) -> Seq3<f32, Self, T> = complex_scan_composed, complex_scan_cpu;

    /// A diagonal SSM over a sequence (see [`super::ssm::diagonal`]).
    fn diagonal_ssm[T: Tape<f32, Self> + Merge<T>](
        u: Seq3<f32, Self, T>,
        params: DiagonalParams<f32, Self, T>,
        bidirectional: bool,
    ) -> Seq3<f32, Self, T> = diagonal_ssm_composed, diagonal_ssm_cpu;

    /// A diagonal SSM whose λ all channels share, DLR's (see [`super::ssm::diagonal`]).
    fn shared_diagonal_ssm[T: Tape<f32, Self> + Merge<T>](
        u: Seq3<f32, Self, T>,
        params: SharedDiagonalParams<f32, Self, T>,
        bidirectional: bool,
    ) -> Seq3<f32, Self, T> = shared_diagonal_ssm_composed, shared_diagonal_ssm_cpu;

    /// MEGA's damped EMA over a sequence (see [`super::ssm::ema`]).
    fn ema[T: Tape<f32, Self> + Merge<T>](
        x: Seq3<f32, Self, T>,
        params: EmaParams<f32, Self, T>,
        bidirectional: bool,
    ) -> Seq3<f32, Self, T> = ema_composed, ema_cpu;

    /// The output of MEGA's EMA layer, SiLU(EMA(x) + ω⊙x) (see [`super::ema_output`]).
    fn ema_output[T: Tape<f32, Self> + Merge<T>](
        ema: Seq3<f32, Self, T>,
        x: Seq3<f32, Self, T>,
        omega: Tensor<(usize,), f32, Self, T>,
    ) -> Seq3<f32, Self, T> = ema_output_composed, ema_output_cpu;

    /// S4's Cauchy kernel (see [`super::ssm::cauchy`]): v (S, H, M), w (H, M) as parts →
    /// (S, H, 2F) `[Re | Im]`.
    fn cauchy[T: Tape<f32, Self> + Merge<T>](
        v: (Seq3<f32, Self, T>, Seq3<f32, Self, T>),
        w: (Mat<Self, T>, Mat<Self, T>),
        nodes: &Nodes,
    ) -> Seq3<f32, Self, T> = cauchy_composed, cauchy_cpu;

    /// Rows of real signals of length `n` from their spectra (see [`super::ssm::spectrum`]).
    fn inverse_rfft[T: Tape<f32, Self> + Merge<T>](
        spectrum: (Mat<Self, T>, Mat<Self, T>),
        n: usize,
    ) -> Mat<Self, T> = inverse_rfft_composed, inverse_rfft_cpu;

    /// u (B, L, H) convolved with kernels (C·dirs, H, L) (see [`super::ssm::long_conv`]).
    fn long_conv[T: Tape<f32, Self> + Merge<T>](
        u: Seq3<f32, Self, T>,
        kernel: Seq3<f32, Self, T>,
        bidirectional: bool,
    ) -> Seq3<f32, Self, T> = long_conv_composed, long_conv_cpu;
}

/// CUDA runs the composed ops (the fused kernels are CPU code).
#[cfg(feature = "cuda")]
impl EngineDevice for Cuda {}
