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

use std::sync::Arc;

use dfdx::prelude::*;
use num_complex::Complex;
use rayon::prelude::*;
use realfft::{ComplexToReal, FftNum, RealFftPlanner, RealToComplex};

use super::host;
use crate::engine::ops::{grad_of, take_grad, KernelFloat};

pub type Cube<E, D, T> = Tensor<(usize, usize, usize), E, D, T>;

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
    let mut y = vec![E::zero(); batch * len * channels * width];
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
pub fn long_conv_cpu<E: KernelFloat + FftNum, T: Tape<E, Cpu> + Merge<T>>(
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

#[cfg(test)]
mod tests;
