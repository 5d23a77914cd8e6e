//! State-space kernels.
//!
//! Complex quantities travel through dfdx as real tensors: either two tensors (real and
//! imaginary parts) or one tensor whose last axis is `[Re | Im]` (M real parts then M imaginary
//! parts), so a complex product with a real matrix is one real matmul.
//!
//! - [`scan`]: the diagonal complex recurrence x_t = λ ⊙ x_{t−1} + v_t (LRU, and the
//!   recurrent form of S4D); sequential CPU kernel, parallel (Hillis–Steele) composed form.
//! - [`vandermonde`]: the convolution kernel K_l = 2·Re Σ_n W_n λ_n^l of a diagonal SSM
//!   (S4D's Vandermonde product).
//! - [`shared_vandermonde`]: DLR's kernel K_l = Re Σ_n W_n λ_n^l with one λ shared by every
//!   channel: one N × L Vandermonde matrix, then a real matrix product.
//! - [`cauchy`]: S4's Cauchy kernel Σ_m v_m/(a_f − b_f·w_m) (+ the conjugate half), the
//!   kernel generating function of a diagonal-plus-low-rank SSM at the roots of unity.
//! - [`spectrum`]: a real kernel from its spectrum (the inverse real FFT), for S4.
//! - [`long_conv`]: y = K ∗ u over the whole sequence by FFT, causal or bidirectional.
//! - [`ema`]: MEGA's damped EMA: real decays, kernel + FFT convolution, and its scan form.
//! - [`diagonal`]: a diagonal SSM as a whole: kernel + FFT convolution on the CPU, the
//!   recurrent form (a scan) composed from dfdx ops elsewhere; the two are the test oracles of
//!   each other ("the convolution form equals the recurrent form").

pub mod cauchy;
pub mod diagonal;
pub mod ema;
pub mod long_conv;
pub mod scan;
pub mod shared_vandermonde;
pub mod spectrum;
pub mod vandermonde;

use dfdx::prelude::*;
use num_complex::Complex64;

use crate::engine::ops::{ComposedFloat, KernelFloat};

/// λ = exp(ζ) for each (Re ζ, Im ζ), in f64 so long powers stay accurate.
pub(crate) fn exp_complex(re: f64, im: f64) -> Complex64 {
    Complex64::from_polar(re.exp(), im)
}

/// Complex numbers in f64 from their real and imaginary parts.
pub(crate) fn complex<E: KernelFloat>(re: &[E], im: &[E]) -> Vec<Complex64> {
    re.iter()
        .zip(im)
        .map(|(r, i)| Complex64::new(r.to_f64().unwrap(), i.to_f64().unwrap()))
        .collect()
}

/// Adds complex gradients `g` (∂L/∂Re + i·∂L/∂Im) into the gradients of the two parts.
pub(crate) fn accumulate_parts<E: KernelFloat>(re: &mut [E], im: &mut [E], g: &[Complex64]) {
    for ((r, i), g) in re.iter_mut().zip(im.iter_mut()).zip(g) {
        *r += E::of(g.re);
        *i += E::of(g.im);
    }
}

/// A copy of `x` that only slices will consume. dfdx 0.13's `slice` backward *assigns* the
/// output's gradient into the input's (`view[i] = g` in its CPU kernel) instead of adding it,
/// so slicing a tensor that has other consumers wipes their gradient. Slicing a fresh node
/// (x + 0), whose only consumers are slices of disjoint ranges, keeps every gradient a sum.
pub(crate) fn for_slicing<S: Shape, E: ComposedFloat, D: Device<E>, T: Tape<E, D>>(
    x: Tensor<S, E, D, T>,
) -> Tensor<S, E, D, T> {
    x.try_add(E::zero())
        .expect("a scalar add allocates like its input")
}

/// A complex tensor as its (real, imaginary) parts.
pub(crate) type Parts<S, E, D, T> = (Tensor<S, E, D, T>, Tensor<S, E, D, T>);

/// The complex product (a_re + i·a_im)·(b_re + i·b_im) on separate parts.
pub(crate) fn complex_mul<S: Shape, E: ComposedFloat, D: Device<E>, T: Tape<E, D> + Merge<T>>(
    a: Parts<S, E, D, T>,
    b: Parts<S, E, D, T>,
) -> Parts<S, E, D, T> {
    let (ar, ai) = a;
    let (br, bi) = b;
    let re =
        ar.with_empty_tape() * br.with_empty_tape() - ai.with_empty_tape() * bi.with_empty_tape();
    let im = ar * bi + ai * br;
    (re, im)
}

/// A tensor's values on the host, held in place (see [`crate::engine::ops::host`]; the
/// kernels keep what their backward reads).
fn host<S: dfdx::prelude::Shape, E: dfdx::prelude::Dtype, T>(
    t: &dfdx::prelude::Tensor<S, E, dfdx::prelude::Cpu, T>,
) -> crate::engine::ops::HostValues<E> {
    crate::engine::ops::host(t).expect("reading a CPU tensor allocates at most a copy of it")
}
