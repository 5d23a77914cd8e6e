//! A real signal from its spectrum: the inverse real DFT of S4's Algorithm 1, step 4, which
//! turns the kernel generating function at the n roots of unity into the kernel's n
//! coefficients. For rows X (R, F) with F = n/2 + 1 bins (the other half is X_{n−f} = conj X_f),
//!
//!   x_t = (1/n)·Σ_f c_f·Re(X_f·e^{2πi·f·t/n}),   c_f = 1 for f = 0 and f = n/2, 2 otherwise,
//!
//! (the imaginary parts of the DC and, for even n, the Nyquist bin do not contribute). It is
//! linear, so its backward is its transpose: ∂L/∂X_f = (c_f/n)·DFT(∂L/∂x)_f, with zero
//! imaginary gradient at DC and Nyquist.
//!
//! The CPU kernel uses `realfft`, parallel over rows; the composed form is two matmuls with
//! cosine and sine tables (O(F·n) memory), for GPUs and as the oracle.

use dfdx::prelude::*;
use num_complex::Complex;
use rayon::prelude::*;
use realfft::{FftNum, RealFftPlanner};

use super::{host, Parts};
use crate::engine::ops::zeroed;
use crate::engine::ops::{grad_of, take_grad, ComposedFloat, KernelFloat};

pub(crate) type Mat<E, D, T> = Tensor<(usize, usize), E, D, T>;

/// The number of bins of the real spectrum of a length-n signal.
pub(crate) fn bins(n: usize) -> usize {
    n / 2 + 1
}

/// c_f / n: the weight of bin f in the inverse transform.
fn weight(f: usize, n: usize) -> f64 {
    let edge = f == 0 || (n.is_multiple_of(2) && f == n / 2);
    if edge {
        1.0 / n as f64
    } else {
        2.0 / n as f64
    }
}

/// Whether bin f's imaginary part is ignored (DC, and Nyquist for even n).
fn real_only(f: usize, n: usize) -> bool {
    f == 0 || (n.is_multiple_of(2) && f == n / 2)
}

/// The fused inverse real FFT on the CPU: X (R, F) as real and imaginary parts → x (R, n).
pub(crate) fn inverse_rfft_cpu<E: KernelFloat + FftNum, T: Tape<E, Cpu> + Merge<T>>(
    spectrum: (Mat<E, Cpu, T>, Mat<E, Cpu, T>),
    n: usize,
) -> Result<Mat<E, Cpu, T>, CpuError> {
    let (rows, f_len) = *spectrum.0.shape();
    assert_eq!(f_len, bins(n), "inverse rfft: {f_len} bins for length {n}");
    let (re, t1) = spectrum.0.try_contiguous()?.split_tape();
    let (im, t2) = spectrum.1.try_contiguous()?.split_tape();
    let mut tape = t1.merge(t2);
    let (re_host, im_host) = (host(&re), host(&im));
    let mut planner = RealFftPlanner::<E>::new();
    let inverse = planner.plan_fft_inverse(n);
    let mut out = zeroed(rows * n);
    out.par_chunks_mut(n).enumerate().for_each(|(r, signal)| {
        let mut bins: Vec<Complex<E>> = (0..f_len)
            .map(|f| {
                let im = if real_only(f, n) {
                    E::zero()
                } else {
                    im_host[r * f_len + f]
                };
                Complex::new(re_host[r * f_len + f], im)
            })
            .collect();
        inverse
            .process(&mut bins, signal)
            .expect("buffer sizes come from the plan");
        let scale = E::of(1.0 / n as f64);
        signal.iter_mut().for_each(|v| *v *= scale);
    });
    let out = re.device().try_tensor_from_vec(out, (rows, n))?;
    let out_id = out.clone();
    tape.add_backward_op(move |grads| {
        let g = take_grad!(grads, &out_id);
        let forward = RealFftPlanner::<E>::new().plan_fft_forward(n);
        let spectra: Vec<Vec<Complex<E>>> = g
            .par_chunks(n)
            .map(|row| {
                let mut signal = row.to_vec();
                let mut spectrum = forward.make_output_vec();
                forward
                    .process(&mut signal, &mut spectrum)
                    .expect("buffer sizes come from the plan");
                spectrum
            })
            .collect();
        let grad_re = grad_of!(grads, &re);
        for (r, spectrum) in spectra.iter().enumerate() {
            for (f, s) in spectrum.iter().enumerate() {
                grad_re[r * f_len + f] += E::of(weight(f, n)) * s.re;
            }
        }
        let grad_im = grad_of!(grads, &im);
        for (r, spectrum) in spectra.iter().enumerate() {
            for (f, s) in spectrum.iter().enumerate() {
                if !real_only(f, n) {
                    grad_im[r * f_len + f] += E::of(weight(f, n)) * s.im;
                }
            }
        }
        drop(g);
        Ok(())
    });
    Ok(out.put_tape(tape))
}

/// The tables (c_f/n)·cos(2π·f·(t + shift)/n) and (c_f/n)·sin(…), (F, len) each, for the
/// inverse transform of samples at t = shift … shift + len − 1. `scaled = false` drops c_f/n
/// (the forward transform's tables).
pub(crate) fn dft_tables<E: ComposedFloat, D: Device<E>>(
    dev: &D,
    n: usize,
    len: usize,
    shift: usize,
    scaled: bool,
) -> Parts<(usize, usize), E, D, NoneTape> {
    let f_len = bins(n);
    let mut cos = Vec::with_capacity(f_len * len);
    let mut sin = Vec::with_capacity(f_len * len);
    for f in 0..f_len {
        let scale = if scaled { weight(f, n) } else { 1.0 };
        for t in 0..len {
            // f·(t + shift) mod n keeps the angle small and exact.
            let angle = std::f64::consts::TAU * ((f * (t + shift)) % n) as f64 / n as f64;
            cos.push(E::from_f64(scale * angle.cos()).unwrap());
            sin.push(E::from_f64(scale * angle.sin()).unwrap());
        }
    }
    (
        dev.tensor_from_vec(cos, (f_len, len)),
        dev.tensor_from_vec(sin, (f_len, len)),
    )
}

/// The inverse real DFT from dfdx ops: x = Re X · C − Im X · S with the scaled tables (the
/// sine table vanishes at DC and Nyquist, so their imaginary parts drop out by themselves).
pub(crate) fn inverse_rfft_composed<E: ComposedFloat, D: Device<E>, T: Tape<E, D> + Merge<T>>(
    spectrum: (Mat<E, D, T>, Mat<E, D, T>),
    n: usize,
) -> Mat<E, D, T> {
    let (cos, sin) = dft_tables::<E, D>(spectrum.0.device(), n, n, 0, true);
    spectrum.0.matmul(cos) - spectrum.1.matmul(sin)
}

#[cfg(test)]
mod tests;
