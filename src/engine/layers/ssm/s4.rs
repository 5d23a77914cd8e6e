//! S4 (Gu, Goel & Ré 2022, "Efficiently Modeling Long Sequences with Structured State
//! Spaces"), after the reference `SSMKernelDPLR` of state-spaces/s4 (`models/s4/s4.py`).
//!
//! Per channel h of H: a state matrix in normal-plus-low-rank form A = Λ − P P* (Λ diagonal,
//! M = N/2 modes kept, the conjugate half implicit), complex B and P, one C per output channel
//! and direction, a learned step Δ and a skip D. The convolution kernel is Algorithm 1:
//!
//! 1. C̃ = C (I − Ā^L) is what is learned (as in the reference): it is computed once, at
//!    initialisation, from a random C, for the kernel length L (the task's maximum length).
//!    Shorter inputs use the kernel's first coefficients, which are those of the same system.
//! 2. The truncated generating function of (Ā, B̄, C) at the roots of unity ω_f, under the
//!    bilinear transform (Lemma C.3), is 2/(1 + ω)·C̃ (z − A)⁻¹ B with z = (2/Δ)(1 − ω)/(1 + ω);
//!    the Woodbury identity reduces (z − Λ + P P*)⁻¹ to Cauchy sums r_XY = X (z − Λ)⁻¹ Y
//!    (Lemma C.2): k̂ = r_C̃B − r_C̃P·r_P*B / (1 + r_P*P). The four sums are one call of the
//!    [Cauchy kernel](crate::engine::ops::ssm::cauchy), whose nodes carry the factor
//!    2/(1 + ω) so that the Nyquist bin stays finite; with those nodes the correction term is
//!    scaled by b = (1 + ω)/2: k̂ = r′_C̃B − b·r′_C̃P·r′_P*B / (1 + b·r′_P*P).
//! 3. The inverse real FFT of k̂ gives the kernel's L coefficients, which are convolved with
//!    the input by FFT; bidirectional layers use a second C̃ for the reversed direction, as S4D.
//!
//! `mode diag` drops P (A = Λ) and computes k̂ = r′_C̃B through the same path. Keeping the
//! bilinear discretisation, the learned C̃ and the Cauchy evaluation makes the two modes differ
//! only by the low-rank term (the NPLR-vs-diagonal ablation), where S4D's Vandermonde path
//! would also change the discretisation (ZOH) and the parametrisation of C.
//!
//! Initialisation: `legs` takes Λ, P̃ and B̃ from HiPPO-LegS's NPLR form (see [`super::hippo`];
//! B is not clipped, unlike later versions of the reference); `lin` and `inv` (diag mode only)
//! take S4D's Λ with B = 1. Δ is log-uniform in [dt_min, dt_max]; C ~ CN(0, 1) before the
//! correction; D ~ N(0, 1).
//!
//! Parameters: `log_dt` (H), `log_A_real` (H, M), `A_imag` (H, M), `B` (2, H, M), `P`
//! (2, H, M, nplr only), all in the SSM group; `C` (2, C·dirs, H, M), holding C̃; `D` (C, H).
//! Complex parameters store all real parts, then all imaginary parts.

pub mod dense;

use std::sync::Arc;

use dfdx::prelude::*;
use num_complex::Complex64;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::hippo::legs_nplr;
use super::s4d::S4dInit;
use super::{
    add_skip, check_dt_range, complex_normal_param, complex_parts, diagonal_a, diagonal_a_params,
    directions, log_dt_param, skip_param, StateSpace,
};
use crate::engine::error::{EngineError, Result};
use crate::engine::layers::{Ctx, Scope, Seq};
use crate::engine::linalg::Matrix;
use crate::engine::ops::ssm::cauchy::Nodes;
use crate::engine::ops::ssm::spectrum::bins;
use crate::engine::ops::ssm::{complex_mul, for_slicing, Parts};
use crate::engine::ops::EngineDevice;
use crate::engine::params::{GroupId, Init, ParamId, ParamStore};

/// The language's S4 modes are the engine's.
pub use crate::spec::S4Mode;

/// The initialisation of (Λ, P, B).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum S4Init {
    /// HiPPO-LegS in NPLR form (in diag mode: its eigenvalues, S4D-LegS).
    Legs,
    /// S4D-Lin eigenvalues, B = 1 (diag mode).
    Lin,
    /// S4D-Inv eigenvalues, B = 1 (diag mode).
    Inv,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct S4Config {
    /// N, the state size counting both halves of each conjugate pair (N/2 modes are stored).
    pub d_state: usize,
    pub mode: S4Mode,
    pub init: S4Init,
    pub dt_min: f64,
    pub dt_max: f64,
    /// Output channels C per input channel.
    pub channels: usize,
    pub bidirectional: bool,
    /// L, the kernel length C̃ is set up for: the longest input.
    pub kernel_len: usize,
}

impl S4Config {
    fn modes(&self) -> usize {
        self.d_state / 2
    }

    fn kernels(&self) -> usize {
        self.channels * directions(self.bidirectional)
    }

    fn low_rank(&self) -> bool {
        self.mode == S4Mode::Nplr
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.d_state < 2 || self.channels == 0 {
            return Err(EngineError::InvalidConfig(format!(
                "S4 needs d_state ≥ 2 and at least one channel, got {} and {}",
                self.d_state, self.channels
            )));
        }
        // HiPPO-LegS's modes come in conjugate pairs; S4D-Lin and -Inv keep ⌊N/2⌋ modes as
        // S4D does.
        if self.init == S4Init::Legs && !self.d_state.is_multiple_of(2) {
            return Err(EngineError::InvalidConfig(format!(
                "S4 with init legs needs an even d_state, got {}",
                self.d_state
            )));
        }
        check_dt_range("S4", self.dt_min, self.dt_max)?;
        if self.kernel_len == 0 {
            return Err(EngineError::InvalidConfig(
                "S4 needs a positive kernel length".into(),
            ));
        }
        if self.low_rank() && self.init != S4Init::Legs {
            return Err(EngineError::InvalidConfig(format!(
                "S4 in NPLR mode is initialised from HiPPO-LegS (init legs), not {:?}",
                self.init
            )));
        }
        Ok(())
    }

    /// Trainable scalars of the SSM for `width` channels (output projection excluded).
    pub fn parameter_count(&self, width: usize) -> usize {
        let hm = width * self.modes();
        let low_rank = if self.low_rank() { 2 * hm } else { 0 };
        width + 2 * hm + 2 * hm + low_rank + 2 * self.kernels() * hm + self.channels * width
    }
}

#[derive(Clone, Debug)]
pub struct S4 {
    pub config: S4Config,
    pub width: usize,
    pub log_dt: ParamId,
    pub log_a_real: ParamId,
    pub a_imag: ParamId,
    pub b: ParamId,
    /// The low-rank term (nplr mode).
    pub p: Option<ParamId>,
    /// C̃.
    pub c: ParamId,
    pub d: ParamId,
    /// The Cauchy nodes (a_f, b_f) = (1 − ω_f, (1 + ω_f)/2) of the kernel length.
    nodes: Nodes,
}

/// A complex (K, H, ·) tensor as its parts.
type CubeParts<D, T> = Parts<(usize, usize, usize), f32, D, T>;

/// (a_f, b_f) for the roots of unity ω_f = exp(−2πi·f/L), f ≤ L/2.
fn nodes(len: usize) -> Nodes {
    Nodes(
        (0..bins(len))
            .map(|f| {
                let omega =
                    Complex64::from_polar(1.0, -std::f64::consts::TAU * f as f64 / len as f64);
                (1.0 - omega, (1.0 + omega) / 2.0)
            })
            .collect::<Arc<[_]>>(),
    )
}

/// The initial (Λ, P, B) of one channel, kept halves.
fn initial_modes(config: &S4Config) -> (Vec<Complex64>, Option<Vec<Complex64>>, Vec<Complex64>) {
    let diagonal = |init: S4dInit| {
        let ones = vec![1.0.into(); config.modes()];
        (init.eigenvalues(config.d_state), None, ones)
    };
    match config.init {
        S4Init::Legs => {
            let legs = legs_nplr(config.d_state);
            let p = config.low_rank().then_some(legs.p);
            (legs.lambda, p, legs.b)
        }
        S4Init::Lin => diagonal(S4dInit::Lin),
        S4Init::Inv => diagonal(S4dInit::Inv),
    }
}

/// A (H, M) complex parameter holding `values` (M) in every channel.
fn complex_param_with<D: EngineDevice>(
    scope: &mut Scope<'_, D>,
    name: &str,
    width: usize,
    values: &[Complex64],
    group: GroupId,
) -> Result<ParamId> {
    let m = values.len();
    super::param_with(scope, name, &[2, width, m], Init::Zeros, group, |v| {
        let half = v.len() / 2;
        (0..v.len())
            .map(|i| {
                let x = values[i % m];
                (if i < half { x.re } else { x.im }) as f32
            })
            .collect()
    })
}

/// The complex values of a parameter stored as real parts then imaginary parts.
fn complex_values(values: &[f32]) -> Vec<Complex64> {
    let half = values.len() / 2;
    (0..half)
        .map(|i| Complex64::new(values[i] as f64, values[half + i] as f64))
        .collect()
}

impl S4 {
    /// Creates the parameters in `scope`, the SSM's own in `ssm_group`, and sets C̃ up for
    /// the kernel length.
    pub fn build<D: EngineDevice>(
        scope: &mut Scope<'_, D>,
        width: usize,
        config: S4Config,
        ssm_group: GroupId,
    ) -> Result<Self> {
        config.validate()?;
        let (h, m) = (width, config.modes());
        let log_dt = log_dt_param(scope, &[h], (config.dt_min, config.dt_max), ssm_group)?;
        let (lambda, p, b) = initial_modes(&config);
        let (log_a_real, a_imag) = diagonal_a_params(scope, h, &lambda, ssm_group)?;
        let b = complex_param_with(scope, "B", h, &b, ssm_group)?;
        let p = match p {
            Some(p) => Some(complex_param_with(scope, "P", h, &p, ssm_group)?),
            None => None,
        };
        let c = complex_normal_param(scope, "C", &[2, config.kernels(), h, m], 1.0)?;
        let d = skip_param(scope, &[config.channels, h])?;
        let nodes = nodes(config.kernel_len);
        let s4 = S4 {
            config,
            width,
            log_dt,
            log_a_real,
            a_imag,
            b,
            p,
            c,
            d,
            nodes,
        };
        let values = s4.values(scope.store);
        let c_tilde = s4.corrected_c(&values);
        scope.store.set_values(c, &c_tilde)?;
        Ok(s4)
    }

    /// The current parameter values, for the dense form.
    pub fn values<D: EngineDevice>(&self, store: &ParamStore<D>) -> SystemValues {
        SystemValues {
            log_dt: store.values(self.log_dt),
            log_a_real: store.values(self.log_a_real),
            a_imag: store.values(self.a_imag),
            b: complex_values(&store.values(self.b)),
            p: self.p.map(|p| complex_values(&store.values(p))),
            c: complex_values(&store.values(self.c)),
            modes: self.config.modes(),
        }
    }

    /// C̃ = C (I − Ā^L) for every kernel and channel, from C's current values, as the stored
    /// parameter (S4 Algorithm 1, step 1; the reference's `_setup_C`).
    fn corrected_c(&self, values: &SystemValues) -> Vec<f32> {
        let (h, m, k) = (self.width, self.config.modes(), self.config.kernels());
        let truncations: Vec<Matrix> = (0..h)
            .into_par_iter()
            .map(|ch| {
                let system = values.channel(ch);
                let discrete =
                    dense::bilinear(&system.lambda, system.p.as_deref(), &system.b, system.dt);
                dense::truncation(&discrete.a, self.config.kernel_len)
            })
            .collect();
        let mut c_tilde = vec![Complex64::default(); k * h * m];
        for kk in 0..k {
            for (ch, truncation) in truncations.iter().enumerate() {
                let row = (kk * h + ch) * m;
                let full = dense::with_conjugates(&values.c[row..row + m]);
                let corrected = dense::row_times(&full, truncation);
                c_tilde[row..row + m].copy_from_slice(&corrected[..m]);
            }
        }
        c_tilde
            .iter()
            .map(|x| x.re as f32)
            .chain(c_tilde.iter().map(|x| x.im as f32))
            .collect()
    }
}

/// S4's parameter values on the host (complex ones as complex numbers).
pub struct SystemValues {
    pub log_dt: Vec<f32>,
    pub log_a_real: Vec<f32>,
    pub a_imag: Vec<f32>,
    /// (H, M).
    pub b: Vec<Complex64>,
    /// (H, M).
    pub p: Option<Vec<Complex64>>,
    /// C̃ (C·dirs, H, M).
    pub c: Vec<Complex64>,
    modes: usize,
}

/// The continuous system (Λ, P, B) and the step Δ of one channel, kept halves.
pub struct ChannelSystem {
    pub lambda: Vec<Complex64>,
    pub p: Option<Vec<Complex64>>,
    pub b: Vec<Complex64>,
    pub dt: f64,
}

impl SystemValues {
    pub fn channel(&self, h: usize) -> ChannelSystem {
        let m = self.modes;
        let range = h * m..(h + 1) * m;
        ChannelSystem {
            lambda: range
                .clone()
                .map(|i| Complex64::new(-(self.log_a_real[i] as f64).exp(), self.a_imag[i] as f64))
                .collect(),
            p: self.p.as_ref().map(|p| p[range.clone()].to_vec()),
            b: self.b[range].to_vec(),
            dt: (self.log_dt[h] as f64).exp(),
        }
    }
}

impl StateSpace for S4 {
    fn output_width(&self) -> usize {
        self.config.channels * self.width
    }

    fn forward<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        u: Seq<D, T>,
        ctx: &Ctx<'_, D>,
    ) -> Result<Seq<D, T>> {
        let len = u.shape().1;
        if len > self.config.kernel_len {
            return Err(EngineError::ShapeMismatch {
                op: "s4",
                detail: format!(
                    "input of length {len}, longer than the kernel length {} the layer was built for",
                    self.config.kernel_len
                ),
            });
        }
        let kernel = self.kernel::<D, T>(ctx)?;
        let kernel = if len < self.config.kernel_len {
            kernel.slice((.., .., ..len))
        } else {
            kernel
        };
        let y = D::long_conv(u.with_empty_tape(), kernel, self.config.bidirectional)?;
        add_skip(y, u, self.d, ctx)
    }
}

impl S4 {
    /// The convolution kernels (C·dirs, H, L) of the kernel length (Algorithm 1, steps 2–4).
    fn kernel<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        ctx: &Ctx<'_, D>,
    ) -> Result<Seq<D, T>> {
        let p = ctx.params;
        let (h, m, k) = (self.width, self.config.modes(), self.config.kernels());
        let (hm, khm) = ((h, m), (k, h, m));
        let dt = p.vector::<T>(self.log_dt).exp();
        // The poles w = Δ·Λ.
        let (a_re, a_im) = diagonal_a::<D, T>(ctx, self.log_a_real, self.a_imag);
        let w = (
            a_re * dt.with_empty_tape().broadcast_like::<_, Axis<1>>(&hm),
            a_im * dt.with_empty_tape().broadcast_like::<_, Axis<1>>(&hm),
        );
        // Δ per (channel, mode), consumed once by `scale` (its tape carries exp's backward).
        let dt_hm = dt.broadcast_like::<_, Axis<1>>(&hm);
        let scale = |x: CubeParts<D, T>, dt: Tensor<(usize, usize), f32, D, T>| {
            let shape = *x.0.shape();
            let dt = dt.broadcast_like::<_, Axis<0>>(&shape);
            (x.0 * dt.with_empty_tape(), x.1 * dt)
        };
        let c = complex_parts(ctx, self.c, khm);
        let b = complex_parts(ctx, self.b, (1, h, m));
        let broadcast = |x: CubeParts<D, T>, shape| {
            (
                x.0.reshape_like(&hm).broadcast_like::<_, Axis<0>>(&shape),
                x.1.reshape_like(&hm).broadcast_like::<_, Axis<0>>(&shape),
            )
        };
        let Some(p_id) = self.p else {
            let sources = scale(complex_mul(c, broadcast(b, khm)), dt_hm);
            let r = self.cauchy::<D, T>(sources, w, k)?;
            return self.coefficients::<D, T>(r);
        };
        let low = complex_parts(ctx, p_id, (1, h, m));
        let (low_re, low_im) = (for_slicing(low.0), for_slicing(low.1));
        let low_copy = || (low_re.with_empty_tape(), low_im.with_empty_tape());
        let (c_re, c_im) = (for_slicing(c.0), for_slicing(c.1));
        let (b_re, b_im) = (for_slicing(b.0), for_slicing(b.1));
        // The four Cauchy sources: C̃∘B, C̃∘P (K each), P̄∘B and |P|² (one each), times Δ.
        let cb = complex_mul(
            (c_re.with_empty_tape(), c_im.with_empty_tape()),
            broadcast((b_re.with_empty_tape(), b_im.with_empty_tape()), khm),
        );
        let cp = complex_mul((c_re, c_im), broadcast(low_copy(), khm));
        let (q_re, q_im) = low_copy();
        let qb = complex_mul((q_re, q_im.negate()), (b_re, b_im));
        let qp_re = low_re.square() + low_im.square();
        let qp_im = qp_re.with_empty_tape() * 0.0;
        type Cube<D, T> = Tensor<(usize, usize, usize), f32, D, T>;
        let stack = |a: Cube<D, T>, b: Cube<D, T>, c: Cube<D, T>, d: Cube<D, T>| -> Cube<D, T> {
            let ab: Cube<D, T> = (a, b).concat_along(Axis::<0>);
            let abc: Cube<D, T> = (ab, c).concat_along(Axis::<0>);
            (abc, d).concat_along(Axis::<0>)
        };
        let sources = (
            stack(cb.0, cp.0, qb.0, qp_re),
            stack(cb.1, cp.1, qb.1, qp_im),
        );
        let sources = scale(sources, dt_hm);
        let r = self.cauchy::<D, T>(sources, w, 2 * k + 2)?;
        let f = self.nodes.len();
        let (r_re, r_im) = (for_slicing(r.0), for_slicing(r.1));
        let part = |x: &Tensor<(usize, usize, usize), f32, D, T>, from: usize, to: usize| {
            x.with_empty_tape().slice((from..to, .., ..))
        };
        let r_cb = (part(&r_re, 0, k), part(&r_im, 0, k));
        let r_cp = (part(&r_re, k, 2 * k), part(&r_im, k, 2 * k));
        let r_qb = (part(&r_re, 2 * k, 2 * k + 1), part(&r_im, 2 * k, 2 * k + 1));
        let r_qp = (
            r_re.slice((2 * k + 1.., .., ..)),
            r_im.slice((2 * k + 1.., .., ..)),
        );
        // b_f = (1 + ω_f)/2 per bin.
        let node_b = |part: fn(&Complex64) -> f64, shape: (usize, usize, usize)| {
            let values: Vec<f32> = self.nodes.0.iter().map(|n| part(&n.1) as f32).collect();
            ctx.device()
                .tensor_from_vec(values, (f,))
                .broadcast_like::<_, Axes2<0, 1>>(&shape)
        };
        let one = (1, h, f);
        let (nb_re, nb_im) = (node_b(|b| b.re, one), node_b(|b| b.im, one));
        // den = 1 + b·r_P*P, num = b·r_C̃P·r_P*B, k̂ = r_C̃B − num/den.
        let b_qp = complex_mul(
            r_qp,
            (nb_re.clone().retaped::<T>(), nb_im.clone().retaped::<T>()),
        );
        let den = (b_qp.0 + 1.0, b_qp.1);
        let b_qb = complex_mul(r_qb, (nb_re.retaped::<T>(), nb_im.retaped::<T>()));
        let kf = (k, h, f);
        let num = complex_mul(
            r_cp,
            (
                b_qb.0
                    .reshape_like(&(h, f))
                    .broadcast_like::<_, Axis<0>>(&kf),
                b_qb.1
                    .reshape_like(&(h, f))
                    .broadcast_like::<_, Axis<0>>(&kf),
            ),
        );
        // num/den = num·conj(den)/|den|².
        let inv_norm = (den.0.with_empty_tape().square() + den.1.with_empty_tape().square())
            .recip()
            .reshape_like(&(h, f))
            .broadcast_like::<_, Axis<0>>(&kf);
        let den = (
            den.0
                .reshape_like(&(h, f))
                .broadcast_like::<_, Axis<0>>(&kf),
            den.1
                .reshape_like(&(h, f))
                .broadcast_like::<_, Axis<0>>(&kf)
                .negate(),
        );
        let correction = complex_mul(num, den);
        let spectrum = (
            r_cb.0 - correction.0 * inv_norm.with_empty_tape(),
            r_cb.1 - correction.1 * inv_norm,
        );
        self.coefficients::<D, T>(spectrum)
    }

    /// The Cauchy sums of `count` sources (count, H, M) at the nodes, as parts (count, H, F).
    fn cauchy<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        sources: CubeParts<D, T>,
        w: Parts<(usize, usize), f32, D, T>,
        count: usize,
    ) -> Result<CubeParts<D, T>> {
        let f = self.nodes.len();
        let r = for_slicing(D::cauchy(sources, w, &self.nodes)?);
        debug_assert_eq!(r.shape().0, count);
        Ok((
            r.with_empty_tape().slice((.., .., ..f)),
            r.slice((.., .., f..)),
        ))
    }

    /// The kernel's coefficients (K, H, L) from its spectrum (K, H, F) (Algorithm 1, step 4).
    fn coefficients<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        spectrum: CubeParts<D, T>,
    ) -> Result<Seq<D, T>> {
        let (k, h, f) = *spectrum.0.shape();
        let rows = (k * h, f);
        let len = self.config.kernel_len;
        let kernel = D::inverse_rfft(
            (
                spectrum.0.reshape_like(&rows),
                spectrum.1.reshape_like(&rows),
            ),
            len,
        )?;
        Ok(kernel.reshape_like(&(k, h, len)))
    }
}

#[cfg(test)]
mod tests;
