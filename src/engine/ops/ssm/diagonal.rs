//! A diagonal SSM applied to a sequence, given its discrete parameters: ζ = log λ (H, N) per
//! channel h and mode n, and output weights W = C·B̄ (C·dirs, H, N). The output (B, L, C·H) is
//! y_t = 2·Re Σ_n W_n x_t,n with x_t = λ ⊙ x_{t−1} + u_t (S4D, Gu et al. 2022, eq. 4), plus,
//! when bidirectional, the same with the second half of W over the reversed sequence, read one
//! step later (the anticausal sum of [`long_conv`](super::long_conv)).
//!
//! Two forms compute it: the convolution form (CPU: [`vandermonde_cpu`] then
//! [`long_conv_cpu`], O(L log L)) and the recurrent form (composed: the parallel scan over
//! every (h, n), O(L·H·N) memory per round). Each is the other's oracle.
//!
//! DLR's SSM ([`SharedDiagonalParams`]) is the special case of one λ shared by every channel
//! and N unpaired states, y_t = Re Σ_n W_n x_t,n: on the CPU its kernel comes from
//! [`shared_vandermonde_cpu`] (one Vandermonde matrix for all channels); the composed form
//! broadcasts λ to every channel and halves W (2·Re Σ W/2 = Re Σ W), then runs the scan above.

use dfdx::prelude::*;
use realfft::FftNum;

use super::for_slicing;
use super::long_conv::long_conv_cpu;
use super::scan::{complex_scan_composed, shift_time};
use super::shared_vandermonde::{shared_vandermonde_cpu, Vector};
use super::vandermonde::{vandermonde_cpu, Cube, Mat};
use crate::engine::ops::{ComposedFloat, KernelFloat};

/// Discrete diagonal SSM parameters: ζ = (Re, Im) of log λ, W = (Re, Im) of C·B̄.
pub struct DiagonalParams<E: Dtype, D: Storage<E>, T> {
    pub zeta: (Mat<E, D, T>, Mat<E, D, T>),
    pub w: (Cube<E, D, T>, Cube<E, D, T>),
}

/// The convolution form on the CPU.
pub(crate) fn diagonal_ssm_cpu<E: KernelFloat + FftNum, T: Tape<E, Cpu> + Merge<T>>(
    u: Cube<E, Cpu, T>,
    params: DiagonalParams<E, Cpu, T>,
    bidirectional: bool,
) -> Result<Cube<E, Cpu, T>, CpuError> {
    let len = u.shape().1;
    let kernel = vandermonde_cpu(params.zeta, params.w, len)?;
    long_conv_cpu(u, kernel, bidirectional)
}

/// DLR's discrete parameters: ζ = (Re, Im) of log λ (N), shared by the channels, and W =
/// (Re, Im) of the output weights (C·dirs, H, N), with the kernel K_l = Re Σ_n W_n λ_n^l.
pub struct SharedDiagonalParams<E: Dtype, D: Storage<E>, T> {
    pub zeta: (Vector<E, D, T>, Vector<E, D, T>),
    pub w: (Cube<E, D, T>, Cube<E, D, T>),
}

/// The convolution form with a shared λ on the CPU.
pub(crate) fn shared_diagonal_ssm_cpu<E: KernelFloat + FftNum, T: Tape<E, Cpu> + Merge<T>>(
    u: Cube<E, Cpu, T>,
    params: SharedDiagonalParams<E, Cpu, T>,
    bidirectional: bool,
) -> Result<Cube<E, Cpu, T>, CpuError> {
    let len = u.shape().1;
    let kernel = shared_vandermonde_cpu(params.zeta, params.w, len)?;
    long_conv_cpu(u, kernel, bidirectional)
}

/// The recurrent form with a shared λ: ζ broadcast to every channel, and W/2 since the
/// per-channel form computes 2·Re Σ_n W_n x_n.
pub(crate) fn shared_diagonal_ssm_composed<
    E: ComposedFloat,
    D: Device<E>,
    T: Tape<E, D> + Merge<T>,
>(
    u: Cube<E, D, T>,
    params: SharedDiagonalParams<E, D, T>,
    bidirectional: bool,
) -> Cube<E, D, T> {
    let hn = (u.shape().2, params.zeta.0.shape().0);
    let (zeta_re, zeta_im) = params.zeta;
    let (w_re, w_im) = params.w;
    let half = E::from_f64(0.5).unwrap();
    let params = DiagonalParams {
        zeta: (
            zeta_re.broadcast_like::<_, Axis<0>>(&hn),
            zeta_im.broadcast_like::<_, Axis<0>>(&hn),
        ),
        w: (w_re * half, w_im * half),
    };
    diagonal_ssm_composed(u, params, bidirectional)
}

/// 2·Re Σ_n W[c, h, n]·x[b, t, h, n] for states x (B, L, 2·H·N) `[Re | Im]` → (B, L, C·H).
fn readout<E: ComposedFloat, D: Device<E>, T: Tape<E, D> + Merge<T>>(
    x: Cube<E, D, T>,
    w: (Cube<E, D, T>, Cube<E, D, T>),
) -> Cube<E, D, T> {
    let (batch, len, _) = *x.shape();
    let (channels, width, modes) = *w.0.shape();
    let states = (batch, len, width, modes);
    let full = (batch, len, channels, width, modes);
    let half = width * modes;
    let x = for_slicing(x);
    let x_re = x
        .with_empty_tape()
        .slice((.., .., ..half))
        .reshape_like(&states);
    let x_im = x.slice((.., .., half..)).reshape_like(&states);
    let real = x_re.broadcast_like::<_, Axis<2>>(&full)
        * w.0.broadcast_like::<_, Axes2<0, 1>>(&full)
        - x_im.broadcast_like::<_, Axis<2>>(&full) * w.1.broadcast_like::<_, Axes2<0, 1>>(&full);
    (real.sum::<(usize, usize, usize, usize), Axis<4>>() * E::from_f64(2.0).unwrap())
        .reshape_like(&(batch, len, channels * width))
}

/// The recurrent form from dfdx ops (the parallel scan).
pub(crate) fn diagonal_ssm_composed<E: ComposedFloat, D: Device<E>, T: Tape<E, D> + Merge<T>>(
    u: Cube<E, D, T>,
    params: DiagonalParams<E, D, T>,
    bidirectional: bool,
) -> Cube<E, D, T> {
    let (batch, len, width) = *u.shape();
    let (kernels, _, modes) = *params.w.0.shape();
    debug_assert!(kernels % if bidirectional { 2 } else { 1 } == 0);
    let channels = kernels / if bidirectional { 2 } else { 1 };
    let states = width * modes;
    let v_re = u
        .broadcast_like::<_, Axis<3>>(&(batch, len, width, modes))
        .reshape_like(&(batch, len, states));
    let v_im = v_re
        .device()
        .zeros_like(&(batch, len, states))
        .retaped::<T>();
    let v = (v_re, v_im).concat_along(Axis::<2>);
    let (zeta_re, zeta_im) = params.zeta;
    let zeta = (
        zeta_re.reshape_like(&(states,)),
        zeta_im.reshape_like(&(states,)),
    )
        .concat_along(Axis::<0>);
    let (w_re, w_im) = params.w;
    let (w_re, w_im) = (for_slicing(w_re), for_slicing(w_im));
    if !bidirectional {
        return readout(complex_scan_composed(v, zeta, false), (w_re, w_im));
    }
    let forward_w = (
        w_re.with_empty_tape().slice((..channels, .., ..)),
        w_im.with_empty_tape().slice((..channels, .., ..)),
    );
    let causal = readout(
        complex_scan_composed(v.with_empty_tape(), zeta.with_empty_tape(), false),
        forward_w,
    );
    let backward_w = (
        w_re.slice((channels.., .., ..)),
        w_im.slice((channels.., .., ..)),
    );
    let later = shift_time(complex_scan_composed(v, zeta, true), 1, true);
    causal + readout(later, backward_w)
}

#[cfg(test)]
mod tests;
