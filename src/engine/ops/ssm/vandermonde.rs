//! The convolution kernel of a diagonal SSM (Gu et al. 2022, S4D §3.1, eq. 5–6):
//! K[k, h, l] = 2·Re Σ_n W[k, h, n]·λ[h, n]^l for l < L, where λ = exp(ζ) = exp(Δ·A) is the
//! discrete state matrix and W = C·B̄ its output/input weights; the factor 2 and the real part
//! stand for the conjugate half of the states, which S4D keeps implicit. It is a Vandermonde
//! matrix–vector product, O(K·H·N·L) work and O(K·H·L) memory.
//!
//! Backward, with G = ∂L/∂K and complex gradients ∂L/∂Re + i·∂L/∂Im:
//! ∂L/∂W = 2 Σ_l G_l·conj(λ^l), ∂L/∂ζ = 2 Σ_k Σ_l G_l·l·conj(W·λ^l).
//!
//! The CPU kernel builds the powers by repeated multiplication in f64 (exact enough for
//! L = 16,384), parallel over (k, h). The composed form evaluates exp(l·ζ) for every (h, n, l)
//! with dfdx's exp, cos and sin: O(H·N·L) memory, for GPUs and as the oracle.

use dfdx::prelude::*;
use num_complex::Complex64;
use rayon::prelude::*;

use super::{accumulate_parts, complex, exp_complex, host};
use crate::engine::ops::zeroed;
#[cfg(test)]
use crate::engine::ops::ComposedFloat;
use crate::engine::ops::{grad_of, take_grad, KernelFloat};

pub(crate) type Mat<E, D, T> = Tensor<(usize, usize), E, D, T>;
pub(crate) type Cube<E, D, T> = Tensor<(usize, usize, usize), E, D, T>;

/// The host values of ζ (H, N) and W (K, H, N), as complex numbers.
struct Modes {
    zeta: Vec<Complex64>,
    w: Vec<Complex64>,
    /// (K, H, N).
    dims: (usize, usize, usize),
}

impl Modes {
    /// Calls `f(n, l, λ_n^l)` for every mode of channel `h` and every l < `len`.
    fn for_powers(&self, h: usize, len: usize, mut f: impl FnMut(usize, usize, Complex64)) {
        let n_modes = self.dims.2;
        for n in 0..n_modes {
            let z = self.zeta[h * n_modes + n];
            let lambda = exp_complex(z.re, z.im);
            let mut power = Complex64::new(1.0, 0.0);
            for l in 0..len {
                f(n, l, power);
                power *= lambda;
            }
        }
    }
}

fn kernel_forward<E: KernelFloat>(modes: &Modes, len: usize) -> Vec<E> {
    let (k, h, n_modes) = modes.dims;
    let mut out = zeroed(k * h * len);
    out.par_chunks_mut(len.max(1))
        .enumerate()
        .for_each(|(kh, row)| {
            let channel = kh % h;
            let w = &modes.w[kh * n_modes..(kh + 1) * n_modes];
            let mut acc = vec![0.0f64; len];
            modes.for_powers(channel, len, |n, l, power| {
                acc[l] += 2.0 * (w[n] * power).re;
            });
            row.iter_mut().zip(&acc).for_each(|(o, &a)| *o = E::of(a));
        });
    out
}

/// Returns ∂L/∂W (K, H, N) and ∂L/∂ζ (H, N), complex.
fn kernel_backward<E: KernelFloat>(
    modes: &Modes,
    g: &[E],
    len: usize,
) -> (Vec<Complex64>, Vec<Complex64>) {
    let (k, h, n_modes) = modes.dims;
    let per_row: Vec<(Vec<Complex64>, Vec<Complex64>)> = (0..k * h)
        .into_par_iter()
        .map(|kh| {
            let channel = kh % h;
            let w = &modes.w[kh * n_modes..(kh + 1) * n_modes];
            let g = &g[kh * len..(kh + 1) * len];
            let mut grad_w = vec![Complex64::default(); n_modes];
            let mut grad_zeta = vec![Complex64::default(); n_modes];
            modes.for_powers(channel, len, |n, l, power| {
                let gl = 2.0 * g[l].to_f64().unwrap();
                grad_w[n] += gl * power.conj();
                grad_zeta[n] += gl * l as f64 * (w[n] * power).conj();
            });
            (grad_w, grad_zeta)
        })
        .collect();
    let mut grad_w = Vec::with_capacity(k * h * n_modes);
    let mut grad_zeta = vec![Complex64::default(); h * n_modes];
    for (kh, (gw, gz)) in per_row.into_iter().enumerate() {
        grad_w.extend(gw);
        let channel = kh % h;
        for (acc, g) in grad_zeta[channel * n_modes..(channel + 1) * n_modes]
            .iter_mut()
            .zip(gz)
        {
            *acc += g;
        }
    }
    (grad_w, grad_zeta)
}

/// The fused kernel generation on the CPU: ζ (H, N) as real and imaginary parts, W (K, H, N)
/// likewise → K (K, H, `len`).
pub(crate) fn vandermonde_cpu<E: KernelFloat, T: Tape<E, Cpu> + Merge<T>>(
    zeta: (Mat<E, Cpu, T>, Mat<E, Cpu, T>),
    w: (Cube<E, Cpu, T>, Cube<E, Cpu, T>),
    len: usize,
) -> Result<Cube<E, Cpu, T>, CpuError> {
    let dims = *w.0.shape();
    assert_eq!(
        (dims.1, dims.2),
        *zeta.0.shape(),
        "vandermonde: W is (K, H, N), ζ (H, N)"
    );
    let (zeta_re, t1) = zeta.0.try_contiguous()?.split_tape();
    let (zeta_im, t2) = zeta.1.try_contiguous()?.split_tape();
    let (w_re, t3) = w.0.try_contiguous()?.split_tape();
    let (w_im, t4) = w.1.try_contiguous()?.split_tape();
    let mut tape = t1.merge(t2).merge(t3).merge(t4);
    let modes = Modes {
        zeta: complex(&host(&zeta_re), &host(&zeta_im)),
        w: complex(&host(&w_re), &host(&w_im)),
        dims,
    };
    let out = w_re
        .device()
        .try_tensor_from_vec(kernel_forward::<E>(&modes, len), (dims.0, dims.1, len))?;
    let out_id = out.clone();
    tape.add_backward_op(move |grads| {
        let g = take_grad!(grads, &out_id);
        let (grad_w, grad_zeta) = kernel_backward(&modes, &g, len);
        let mut gw_re = std::mem::take(&mut **grads.get_or_alloc_mut(&w_re)?);
        accumulate_parts(&mut gw_re, grad_of!(grads, &w_im), &grad_w);
        **grads.get_or_alloc_mut(&w_re)? = gw_re;
        let mut gz_re = std::mem::take(&mut **grads.get_or_alloc_mut(&zeta_re)?);
        accumulate_parts(&mut gz_re, grad_of!(grads, &zeta_im), &grad_zeta);
        **grads.get_or_alloc_mut(&zeta_re)? = gz_re;
        drop(g);
        Ok(())
    });
    Ok(out.put_tape(tape))
}

/// The time steps 0, 1, …, len − 1 as a tensor: the exponents of the composed Vandermonde
/// forms.
#[cfg(test)]
pub(crate) fn time_steps<E: ComposedFloat, D: Device<E>>(
    dev: &D,
    len: usize,
) -> Tensor<(usize,), E, D> {
    let steps: Vec<E> = (0..len).map(|l| E::from_usize(l).unwrap()).collect();
    dev.tensor_from_vec(steps, (len,))
}

/// Kernel generation from dfdx ops: exp(l·ζ) for every (h, n, l), then the sum over n.
#[cfg(test)]
pub(crate) fn vandermonde_composed<E: ComposedFloat, D: Device<E>, T: Tape<E, D> + Merge<T>>(
    zeta: (Mat<E, D, T>, Mat<E, D, T>),
    w: (Cube<E, D, T>, Cube<E, D, T>),
    len: usize,
) -> Cube<E, D, T> {
    let (k, h, n) = *w.0.shape();
    let hnl = (h, n, len);
    let steps = time_steps(w.0.device(), len).broadcast_like::<_, Axes2<0, 1>>(&hnl);
    let exponent_re = zeta.0.broadcast_like::<_, Axis<2>>(&hnl) * steps.clone();
    let angle = zeta.1.broadcast_like::<_, Axis<2>>(&hnl) * steps;
    let magnitude = exponent_re.exp();
    let power_re = magnitude.with_empty_tape() * angle.with_empty_tape().cos();
    let power_im = magnitude * angle.sin();
    let khnl = (k, h, n, len);
    let two = E::from_f64(2.0).unwrap();
    let terms = w.0.broadcast_like::<_, Axis<3>>(&khnl)
        * power_re.broadcast_like::<_, Axis<0>>(&khnl)
        - w.1.broadcast_like::<_, Axis<3>>(&khnl) * power_im.broadcast_like::<_, Axis<0>>(&khnl);
    terms.sum::<(usize, usize, usize), Axis<2>>() * two
}

#[cfg(test)]
mod tests;
