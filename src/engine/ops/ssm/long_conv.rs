//! The long convolution of a convolutional SSM (S4, §3.3; S4D), by FFT in O(L log L):
//! y[b, t, c·H + h] = Σ_{s≤t} K[c, h, t−s]·u[b, s, h]
//!                  + (bidirectional) Σ_{s>t} K[C + c, h, s−t−1]·u[b, s, h],
//! for inputs u (B, L, H) and kernels K (C·dirs, H, L). The second sum is the reference
//! implementation's bidirectional form (state-spaces/s4: the second half of the channels is
//! flipped and padded to the left), so position t sees later inputs only through it.
//!
//! Both halves go into one circular kernel of length n ≥ 2L (no wrap-around):
//! k̃[d] = K_fwd[d] for d < L, k̃[n − d] = K_bwd[d − 1] for 0 < d < L; then y = IFFT(Ũ·K̃).
//! Backward: both gradients are circular correlations, ∂L/∂u = IFFT(Σ_c G·conj(K̃)) and
//! ∂L/∂k̃ = IFFT(Σ_b G·conj(Ũ)), read back into the two halves. Real FFTs (`realfft`),
//! parallel over (batch, channel); the input and kernel spectra are kept for the backward.
//!
//! The composed form (GPUs, and the oracle) computes the same circular convolution with DFTs
//! written as matmuls against cosine and sine tables, O(L²) memory for the tables and no
//! O(H·L²) Toeplitz matrix. It places the anticausal half through conjugation: the spectrum
//! of K_bwd[d − 1] at circular position n − d is the conjugate of its spectrum at position d.

use std::sync::Arc;

use dfdx::prelude::*;
use num_complex::Complex;
use rayon::prelude::*;
use realfft::{ComplexToReal, FftNum, RealFftPlanner, RealToComplex};

use super::host;
use super::spectrum::{bins, dft_tables};
use super::Parts;
use crate::engine::ops::zeroed;
use crate::engine::ops::{grad_of, take_grad, ComposedFloat, KernelFloat};

pub(crate) type Cube<E, D, T> = Tensor<(usize, usize, usize), E, D, T>;

/// Sizes of one convolution and the FFT plans for them.
struct Plan<E: FftNum> {
    batch: usize,
    len: usize,
    width: usize,
    channels: usize,
    bidirectional: bool,
    /// FFT length: a power of two ≥ 2L.
    n: usize,
    forward: Arc<dyn RealToComplex<E>>,
    inverse: Arc<dyn ComplexToReal<E>>,
}

impl<E: KernelFloat + FftNum> Plan<E> {
    fn new(batch: usize, len: usize, width: usize, kernels: usize, bidirectional: bool) -> Self {
        let n = (2 * len).next_power_of_two().max(2);
        let mut planner = RealFftPlanner::<E>::new();
        Plan {
            batch,
            len,
            width,
            channels: kernels / if bidirectional { 2 } else { 1 },
            bidirectional,
            n,
            forward: planner.plan_fft_forward(n),
            inverse: planner.plan_fft_inverse(n),
        }
    }

    fn bins(&self) -> usize {
        self.n / 2 + 1
    }

    /// The spectrum of a signal given by its first samples (zeros after).
    fn spectrum(&self, fill: impl FnOnce(&mut [E])) -> Vec<Complex<E>> {
        let mut signal = vec![E::zero(); self.n];
        fill(&mut signal);
        let mut spectrum = self.forward.make_output_vec();
        self.forward
            .process(&mut signal, &mut spectrum)
            .expect("buffer sizes come from the plan");
        spectrum
    }

    /// The real signal of a spectrum, scaled by 1/n (realfft leaves transforms unnormalised).
    fn signal(&self, mut spectrum: Vec<Complex<E>>) -> Vec<E> {
        // A real signal's DC and Nyquist bins are real; drop rounding in their imaginary parts.
        let last = spectrum.len() - 1;
        spectrum[0].im = E::zero();
        spectrum[last].im = E::zero();
        let mut signal = self.inverse.make_output_vec();
        self.inverse
            .process(&mut spectrum, &mut signal)
            .expect("buffer sizes come from the plan");
        let scale = E::one() / E::of(self.n as f64);
        signal.iter_mut().for_each(|v| *v *= scale);
        signal
    }

    /// The spectra of the circular kernels k̃, (C, H) each.
    fn kernel_spectra(&self, k: &[E]) -> Vec<Vec<Complex<E>>> {
        let (len, width, n) = (self.len, self.width, self.n);
        (0..self.channels * width)
            .into_par_iter()
            .map(|ch| {
                self.spectrum(|s| {
                    s[..len].copy_from_slice(&k[ch * len..(ch + 1) * len]);
                    if self.bidirectional {
                        let backward = &k[(self.channels * width + ch) * len..];
                        for d in 1..len {
                            s[n - d] = backward[d - 1];
                        }
                    }
                })
            })
            .collect()
    }

    /// The spectra of the inputs' channels, (B, H) each.
    fn input_spectra(&self, u: &[E]) -> Vec<Vec<Complex<E>>> {
        let (len, width) = (self.len, self.width);
        (0..self.batch * width)
            .into_par_iter()
            .map(|bh| {
                let (b, h) = (bh / width, bh % width);
                self.spectrum(|s| {
                    for (t, v) in s[..len].iter_mut().enumerate() {
                        *v = u[(b * len + t) * width + h];
                    }
                })
            })
            .collect()
    }
}

/// Σ_i a_i ⊙ conj(b_i) (or a_i ⊙ b_i) over pairs of spectra.
fn product_sum<'a, E: KernelFloat + FftNum>(
    pairs: impl Iterator<Item = (&'a [Complex<E>], &'a [Complex<E>])>,
    bins: usize,
    conjugate: bool,
) -> Vec<Complex<E>> {
    let mut acc = vec![Complex::new(E::zero(), E::zero()); bins];
    for (a, b) in pairs {
        for ((acc, &a), &b) in acc.iter_mut().zip(a).zip(b) {
            *acc += if conjugate { a * b.conj() } else { a * b };
        }
    }
    acc
}

struct Saved<E> {
    input_spectra: Vec<Vec<Complex<E>>>,
    kernel_spectra: Vec<Vec<Complex<E>>>,
}

fn conv_forward<E: KernelFloat + FftNum>(plan: &Plan<E>, u: &[E], k: &[E]) -> (Vec<E>, Saved<E>) {
    let (batch, len, width, channels) = (plan.batch, plan.len, plan.width, plan.channels);
    let input_spectra = plan.input_spectra(u);
    let kernel_spectra = plan.kernel_spectra(k);
    // (B, C, H, L), then transposed to (B, L, C·H).
    let outputs: Vec<Vec<E>> = (0..batch * channels * width)
        .into_par_iter()
        .map(|bch| {
            let (b, ch) = (bch / (channels * width), bch % (channels * width));
            let h = ch % width;
            let product = product_sum(
                std::iter::once((
                    input_spectra[b * width + h].as_slice(),
                    kernel_spectra[ch].as_slice(),
                )),
                plan.bins(),
                false,
            );
            plan.signal(product)
        })
        .collect();
    let mut y = zeroed(batch * len * channels * width);
    y.par_chunks_mut(channels * width)
        .enumerate()
        .for_each(|(bt, row)| {
            let (b, t) = (bt / len, bt % len);
            for (ch, v) in row.iter_mut().enumerate() {
                *v = outputs[b * channels * width + ch][t];
            }
        });
    (
        y,
        Saved {
            input_spectra,
            kernel_spectra,
        },
    )
}

/// Accumulates ∂L/∂u into `grad_u` and ∂L/∂K into `grad_k`.
fn conv_backward<E: KernelFloat + FftNum>(
    plan: &Plan<E>,
    saved: &Saved<E>,
    g: &[E],
    grad_u: &mut [E],
    grad_k: &mut [E],
) {
    let (batch, len, width, channels, n) =
        (plan.batch, plan.len, plan.width, plan.channels, plan.n);
    let ch_width = channels * width;
    let g_spectra: Vec<Vec<Complex<E>>> = (0..batch * ch_width)
        .into_par_iter()
        .map(|bch| {
            let (b, ch) = (bch / ch_width, bch % ch_width);
            plan.spectrum(|s| {
                for (t, v) in s[..len].iter_mut().enumerate() {
                    *v = g[(b * len + t) * ch_width + ch];
                }
            })
        })
        .collect();
    let grad_inputs: Vec<Vec<E>> = (0..batch * width)
        .into_par_iter()
        .map(|bh| {
            let (b, h) = (bh / width, bh % width);
            let pairs = (0..channels).map(|c| {
                (
                    g_spectra[b * ch_width + c * width + h].as_slice(),
                    saved.kernel_spectra[c * width + h].as_slice(),
                )
            });
            plan.signal(product_sum(pairs, plan.bins(), true))
        })
        .collect();
    grad_u
        .par_chunks_mut(width)
        .enumerate()
        .for_each(|(bt, row)| {
            let (b, t) = (bt / len, bt % len);
            for (h, v) in row.iter_mut().enumerate() {
                *v += grad_inputs[b * width + h][t];
            }
        });
    let grad_kernels: Vec<Vec<E>> = (0..ch_width)
        .into_par_iter()
        .map(|ch| {
            let h = ch % width;
            let pairs = (0..batch).map(|b| {
                (
                    g_spectra[b * ch_width + ch].as_slice(),
                    saved.input_spectra[b * width + h].as_slice(),
                )
            });
            plan.signal(product_sum(pairs, plan.bins(), true))
        })
        .collect();
    for (ch, circular) in grad_kernels.iter().enumerate() {
        let forward = &mut grad_k[ch * len..(ch + 1) * len];
        forward.iter_mut().zip(circular).for_each(|(a, &b)| *a += b);
        if plan.bidirectional {
            let backward = &mut grad_k[(ch_width + ch) * len..(ch_width + ch + 1) * len];
            for d in 1..len {
                backward[d - 1] += circular[n - d];
            }
        }
    }
}

/// The fused FFT convolution on the CPU: u (B, L, H), K (C·dirs, H, L) → y (B, L, C·H).
pub(crate) fn long_conv_cpu<E: KernelFloat + FftNum, T: Tape<E, Cpu> + Merge<T>>(
    u: Cube<E, Cpu, T>,
    k: Cube<E, Cpu, T>,
    bidirectional: bool,
) -> Result<Cube<E, Cpu, T>, CpuError> {
    let (batch, len, width) = *u.shape();
    let (kernels, k_width, k_len) = *k.shape();
    let dirs = if bidirectional { 2 } else { 1 };
    assert!(
        k_width == width && k_len == len && kernels % dirs == 0 && kernels > 0,
        "long convolution: kernels {:?} do not fit inputs {:?}",
        k.shape(),
        u.shape()
    );
    let plan = Plan::<E>::new(batch, len, width, kernels, bidirectional);
    let (u, tu) = u.try_contiguous()?.split_tape();
    let (k, tk) = k.try_contiguous()?.split_tape();
    let mut tape = tu.merge(tk);
    let (y, saved) = conv_forward(&plan, &host(&u), &host(&k));
    let out = u
        .device()
        .try_tensor_from_vec(y, (batch, len, plan.channels * width))?;
    let out_id = out.clone();
    tape.add_backward_op(move |grads| {
        let g = take_grad!(grads, &out_id);
        let mut grad_u = std::mem::take(&mut **grads.get_or_alloc_mut(&u)?);
        conv_backward(&plan, &saved, &g, &mut grad_u, grad_of!(grads, &k));
        **grads.get_or_alloc_mut(&u)? = grad_u;
        drop(g);
        Ok(())
    });
    Ok(out.put_tape(tape))
}

/// The real DFT (Re, Im) of rows x (R, len) placed at positions shift … shift + len − 1 of a
/// length-n signal.
fn real_dft<E: ComposedFloat, D: Device<E>, T: Tape<E, D> + Merge<T>>(
    x: Tensor<(usize, usize), E, D, T>,
    n: usize,
    shift: usize,
) -> Parts<(usize, usize), E, D, T> {
    let len = x.shape().1;
    let (cos, sin) = dft_tables::<E, D>(x.device(), n, len, shift, false);
    let re = x.with_empty_tape().matmul(cos.permute::<_, Axes2<1, 0>>());
    let im = x.matmul(sin.permute::<_, Axes2<1, 0>>()).negate();
    (re, im)
}

/// The long convolution from dfdx ops (see the module documentation): u (B, L, H),
/// K (C·dirs, H, L) → y (B, L, C·H).
pub(crate) fn long_conv_composed<E: ComposedFloat, D: Device<E>, T: Tape<E, D> + Merge<T>>(
    u: Cube<E, D, T>,
    k: Cube<E, D, T>,
    bidirectional: bool,
) -> Cube<E, D, T> {
    let (batch, len, width) = *u.shape();
    let kernels = k.shape().0;
    let channels = kernels / if bidirectional { 2 } else { 1 };
    let n = 2 * len;
    let f_len = bins(n);
    let rows = u
        .permute::<_, Axes3<0, 2, 1>>()
        .reshape_like(&(batch * width, len));
    let (u_re, u_im) = real_dft(rows, n, 0);
    let kernel_rows = (channels * width, len);
    let (forward, backward) = if bidirectional {
        let k = super::for_slicing(k);
        (
            k.with_empty_tape().slice((..channels, .., ..)),
            Some(k.slice((channels.., .., ..))),
        )
    } else {
        (k, None)
    };
    let (mut k_re, mut k_im) = real_dft(forward.reshape_like(&kernel_rows), n, 0);
    if let Some(backward) = backward {
        // Conjugating the spectrum of positions 1 … L mirrors them to n − 1 … n − L.
        let (b_re, b_im) = real_dft(backward.reshape_like(&kernel_rows), n, 1);
        k_re = k_re + b_re;
        k_im = k_im - b_im;
    }
    let full = (batch, channels, width, f_len);
    let u_re = u_re
        .reshape_like(&(batch, width, f_len))
        .broadcast_like::<_, Axis<1>>(&full);
    let u_im = u_im
        .reshape_like(&(batch, width, f_len))
        .broadcast_like::<_, Axis<1>>(&full);
    let k_re = k_re
        .reshape_like(&(channels, width, f_len))
        .broadcast_like::<_, Axis<0>>(&full);
    let k_im = k_im
        .reshape_like(&(channels, width, f_len))
        .broadcast_like::<_, Axis<0>>(&full);
    let (y_re, y_im) = super::complex_mul((u_re, u_im), (k_re, k_im));
    let spectrum_rows = (batch * channels * width, f_len);
    let (cos, sin) = dft_tables::<E, D>(y_re.device(), n, len, 0, true);
    let y = y_re.reshape_like(&spectrum_rows).matmul(cos)
        - y_im.reshape_like(&spectrum_rows).matmul(sin);
    y.reshape_like(&(batch, channels, width, len))
        .permute::<_, Axes4<0, 3, 1, 2>>()
        .reshape_like(&(batch, len, channels * width))
}

#[cfg(test)]
mod tests;
