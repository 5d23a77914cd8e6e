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
use crate::engine::ops::blas::padded_stride;
use crate::engine::ops::layout::{gather_series, transpose_batched, LANES};
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

/// One task's buffers, reused across the signals it transforms: [`LANES`] time signals of
/// length n, one spectrum, and the FFTs' scratch.
struct Buffers<E> {
    signals: Vec<E>,
    spectrum: Vec<Complex<E>>,
    scratch: Vec<Complex<E>>,
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

    /// The distance between a task's signals: n rounded to an odd number of cache lines, so
    /// that gathering [`LANES`] signals at once does not write 16 streams into one L1 set, as
    /// a power-of-two n would.
    fn stride(&self) -> usize {
        padded_stride(self.n)
    }

    fn buffers(&self) -> Buffers<E> {
        let zero = Complex::new(E::zero(), E::zero());
        let scratch = self
            .forward
            .get_scratch_len()
            .max(self.inverse.get_scratch_len());
        Buffers {
            signals: vec![E::zero(); LANES * self.stride()],
            spectrum: vec![zero; self.bins()],
            scratch: vec![zero; scratch],
        }
    }

    /// The spectra, `rows` × bins, of `rows` signals. `fill(first, signals)` writes signals
    /// first, first + 1, … at the starts of the [`Plan::stride`]-long chunks of `signals`,
    /// which it receives zeroed; a task transforms [`LANES`] neighbouring signals, so `fill`
    /// can read them as runs.
    fn spectra(&self, rows: usize, fill: impl Fn(usize, &mut [E]) + Sync) -> Vec<Complex<E>> {
        let (n, stride, bins) = (self.n, self.stride(), self.bins());
        let mut spectra = zeroed(rows * bins);
        spectra
            .par_chunks_mut(LANES * bins)
            .enumerate()
            .for_each_init(
                || self.buffers(),
                |buffers, (block, spectra)| {
                    let signals = &mut buffers.signals[..spectra.len() / bins * stride];
                    signals.fill(E::zero());
                    fill(block * LANES, signals);
                    for (signal, spectrum) in
                        signals.chunks_mut(stride).zip(spectra.chunks_mut(bins))
                    {
                        self.forward
                            .process_with_scratch(&mut signal[..n], spectrum, &mut buffers.scratch)
                            .expect("buffer sizes come from the plan");
                    }
                },
            );
        spectra
    }

    /// The real signals, `rows` × `keep`, of `rows` spectra: `spectrum(row, buffer)` writes
    /// row's spectrum, and the first `keep` samples of its inverse transform, scaled by 1/n
    /// (realfft leaves transforms unnormalised), are kept.
    fn signals(
        &self,
        rows: usize,
        keep: usize,
        spectrum: impl Fn(usize, &mut [Complex<E>]) + Sync,
    ) -> Vec<E> {
        let scale = E::one() / E::of(self.n as f64);
        let mut signals = zeroed(rows * keep);
        signals.par_chunks_mut(keep).enumerate().for_each_init(
            || self.buffers(),
            |buffers, (row, kept)| {
                let bins = &mut buffers.spectrum;
                spectrum(row, bins);
                // A real signal's DC and Nyquist bins are real; drop rounding in their
                // imaginary parts.
                let last = bins.len() - 1;
                bins[0].im = E::zero();
                bins[last].im = E::zero();
                let signal = &mut buffers.signals[..self.n];
                self.inverse
                    .process_with_scratch(bins, signal, &mut buffers.scratch)
                    .expect("buffer sizes come from the plan");
                for (k, &v) in kept.iter_mut().zip(signal.iter()) {
                    *k = v * scale;
                }
            },
        );
        signals
    }

    /// The spectra of the circular kernels k̃, (C·H) × bins.
    fn kernel_spectra(&self, k: &[E]) -> Vec<Complex<E>> {
        let (len, width, n) = (self.len, self.width, self.n);
        let forward_rows = self.channels * width;
        self.spectra(forward_rows, |first, signals| {
            for (i, s) in signals.chunks_mut(self.stride()).enumerate() {
                let ch = first + i;
                s[..len].copy_from_slice(&k[ch * len..(ch + 1) * len]);
                if self.bidirectional {
                    let backward = &k[(forward_rows + ch) * len..];
                    for d in 1..len {
                        s[n - d] = backward[d - 1];
                    }
                }
            }
        })
    }

    /// The spectra of the channels of x (B, L, `width`), (B·width) × bins.
    fn series_spectra(&self, x: &[E], width: usize) -> Vec<Complex<E>> {
        self.spectra(self.batch * width, |first, signals| {
            gather_series(signals, self.stride(), x, (self.len, width), first)
        })
    }
}

/// acc = Σ_i a_i ⊙ conj(b_i) (or a_i ⊙ b_i) over pairs of spectra.
fn product_sum<'a, E: KernelFloat + FftNum>(
    acc: &mut [Complex<E>],
    pairs: impl Iterator<Item = (&'a [Complex<E>], &'a [Complex<E>])>,
    conjugate: bool,
) {
    acc.fill(Complex::new(E::zero(), E::zero()));
    for (a, b) in pairs {
        for ((acc, &a), &b) in acc.iter_mut().zip(a).zip(b) {
            *acc += if conjugate { a * b.conj() } else { a * b };
        }
    }
}

/// The spectra kept for the backward pass, each (rows × bins).
struct Saved<E> {
    input_spectra: Vec<Complex<E>>,
    kernel_spectra: Vec<Complex<E>>,
}

/// A spectrum's row of a (rows × bins) buffer.
fn row<E>(spectra: &[Complex<E>], row: usize, bins: usize) -> &[Complex<E>] {
    &spectra[row * bins..(row + 1) * bins]
}

fn conv_forward<E: KernelFloat + FftNum>(plan: &Plan<E>, u: &[E], k: &[E]) -> (Vec<E>, Saved<E>) {
    let (batch, len, width, channels) = (plan.batch, plan.len, plan.width, plan.channels);
    let (bins, ch_width) = (plan.bins(), channels * width);
    let input_spectra = plan.series_spectra(u, width);
    let kernel_spectra = plan.kernel_spectra(k);
    // (B, C·H, L), then transposed to (B, L, C·H).
    let outputs = plan.signals(batch * ch_width, len, |bch, product| {
        let (b, ch) = (bch / ch_width, bch % ch_width);
        let pair = (
            row(&input_spectra, b * width + ch % width, bins),
            row(&kernel_spectra, ch, bins),
        );
        product_sum(product, std::iter::once(pair), false);
    });
    let mut y = zeroed(batch * len * ch_width);
    transpose_batched(&mut y, &outputs, (batch, ch_width, len), |y, v| *y = v);
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
    let (bins, ch_width) = (plan.bins(), channels * width);
    let g_spectra = plan.series_spectra(g, ch_width);
    // ∂L/∂u, (B, H, L): Σ_c G ⊙ conj(K̃), then transposed onto (B, L, H).
    let grad_inputs = plan.signals(batch * width, len, |bh, sum| {
        let (b, h) = (bh / width, bh % width);
        let pairs = (0..channels).map(|c| {
            (
                row(&g_spectra, b * ch_width + c * width + h, bins),
                row(&saved.kernel_spectra, c * width + h, bins),
            )
        });
        product_sum(sum, pairs, true);
    });
    transpose_batched(grad_u, &grad_inputs, (batch, width, len), |g, v| *g += v);
    // ∂L/∂k̃, the whole circular kernel: Σ_b G ⊙ conj(Ũ).
    let grad_kernels = plan.signals(ch_width, n, |ch, sum| {
        let h = ch % width;
        let pairs = (0..batch).map(|b| {
            (
                row(&g_spectra, b * ch_width + ch, bins),
                row(&saved.input_spectra, b * width + h, bins),
            )
        });
        product_sum(sum, pairs, true);
    });
    for (ch, circular) in grad_kernels.chunks(n).enumerate() {
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
