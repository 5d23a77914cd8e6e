//! S4D (Gu, Gupta, Goel & Ré 2022, "On the Parameterization and Initialization of Diagonal
//! State Space Models"), after the reference `models/s4/s4d.py` of state-spaces/s4.
//!
//! Per channel h of H: a diagonal complex A (N/2 modes; the conjugate half is implicit), B = 1,
//! C learned (one per output channel and direction), a learned step Δ, and a skip D.
//! Discretisation by zero-order hold (eq. 6): λ = exp(ΔA), W = C·(exp(ΔA) − 1)/A. The kernel
//! K_l = 2·Re Σ_n W_n λ_n^l (eq. 5, a Vandermonde product) is convolved with the input; see
//! [`crate::engine::ops::ssm::diagonal`].
//!
//! Parameters (under the layer's scope): `log_dt` (H), `log_A_real` (H, N/2), `A_imag`
//! (H, N/2) in the SSM group (`ssm_lr`, `ssm_weight_decay`); `C` (2, C·dirs, H, N/2) with real
//! parts then imaginary parts; `D` (C, H).

use dfdx::prelude::*;
use serde::{Deserialize, Serialize};

use num_complex::Complex64;

use super::discretise::{zero_order_hold, Zoh};
use super::{
    check_dt_range, complex_normal_param, complex_parts, diagonal_a, diagonal_a_params, directions,
    log_dt_param, skip_param,
};
use crate::engine::error::{EngineError, Result};
use crate::engine::layers::{Ctx, Scope};
use crate::engine::ops::ssm::complex_mul;
use crate::engine::ops::ssm::diagonal::DiagonalParams;
use crate::engine::ops::EngineDevice;
use crate::engine::params::{GroupId, ParamId};

/// The initialisation of A's imaginary parts (S4D §4; Re A = −½ in both).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum S4dInit {
    /// S4D-Lin: Im A_n = π·n.
    Lin,
    /// S4D-Inv: Im A_n = (N/π)·(N/(2n + 1) − 1).
    Inv,
}

impl S4dInit {
    /// Im A of mode n for state size N (both halves counted).
    pub(crate) fn imaginary_part(self, mode: usize, d_state: usize) -> f32 {
        let (mode, state) = (mode as f32, d_state as f32);
        match self {
            S4dInit::Lin => std::f32::consts::PI * mode,
            S4dInit::Inv => state / std::f32::consts::PI * (state / (2.0 * mode + 1.0) - 1.0),
        }
    }

    /// The N/2 kept eigenvalues of A for state size N, Re A = −½ for both inits (S4D §4).
    pub(crate) fn eigenvalues(self, d_state: usize) -> Vec<Complex64> {
        (0..d_state / 2)
            .map(|mode| Complex64::new(-0.5, self.imaginary_part(mode, d_state) as f64))
            .collect()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct S4dConfig {
    /// N, the state size counting both halves of each conjugate pair (N/2 modes are stored).
    pub d_state: usize,
    pub init: S4dInit,
    pub dt_min: f64,
    pub dt_max: f64,
    /// Output channels C per input channel (S4's `channels`).
    pub channels: usize,
    pub bidirectional: bool,
}

impl S4dConfig {
    fn modes(&self) -> usize {
        self.d_state / 2
    }

    fn kernels(&self) -> usize {
        self.channels * directions(self.bidirectional)
    }

    pub fn validate(&self) -> Result<()> {
        if self.d_state < 2 || self.channels == 0 {
            return Err(EngineError::InvalidConfig(
                "S4D needs d_state ≥ 2 and at least one channel".into(),
            ));
        }
        check_dt_range("S4D", self.dt_min, self.dt_max)
    }

    /// Trainable scalars of the SSM for `width` channels (output projection excluded).
    pub fn parameter_count(&self, width: usize) -> usize {
        let modes = self.modes();
        width + 2 * width * modes + 2 * self.kernels() * width * modes + self.channels * width
    }
}

#[derive(Clone, Debug)]
pub struct S4d {
    pub config: S4dConfig,
    pub width: usize,
    pub log_dt: ParamId,
    pub log_a_real: ParamId,
    pub a_imag: ParamId,
    pub c: ParamId,
    pub d: ParamId,
}

impl S4d {
    /// Creates the parameters in `scope`, the SSM's own in `ssm_group`.
    pub fn build<D: EngineDevice>(
        scope: &mut Scope<'_, D>,
        width: usize,
        config: S4dConfig,
        ssm_group: GroupId,
    ) -> Result<Self> {
        config.validate()?;
        let (h, n) = (width, config.modes());
        let log_dt = log_dt_param(scope, &[h], (config.dt_min, config.dt_max), ssm_group)?;
        let lambda = config.init.eigenvalues(config.d_state);
        let (log_a_real, a_imag) = diagonal_a_params(scope, h, &lambda, ssm_group)?;
        let c = complex_normal_param(scope, "C", &[2, config.kernels(), h, n], 1.0)?;
        let d = skip_param(scope, &[config.channels, h])?;
        Ok(S4d {
            config,
            width,
            log_dt,
            log_a_real,
            a_imag,
            c,
            d,
        })
    }

    /// The discrete parameters ζ = ΔA and W = C·(exp(ΔA) − 1)/A (ZOH with B = 1).
    fn discretise<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        ctx: &Ctx<'_, D>,
    ) -> DiagonalParams<f32, D, T> {
        let p = ctx.params;
        let (h, n, k) = (self.width, self.config.modes(), self.config.kernels());
        let (hn, khn) = ((h, n), (k, h, n));
        let dt = p
            .vector::<T>(self.log_dt)
            .exp()
            .broadcast_like::<_, Axis<1>>(&hn);
        let a = diagonal_a(ctx, self.log_a_real, self.a_imag);
        let Zoh {
            log_lambda_bar: (zeta_re, zeta_im),
            input_scale: (q_re, q_im),
        } = zero_order_hold(a, dt);
        let q_re = q_re.broadcast_like::<_, Axis<0>>(&khn);
        let q_im = q_im.broadcast_like::<_, Axis<0>>(&khn);
        DiagonalParams {
            zeta: (zeta_re, zeta_im),
            w: complex_mul(complex_parts(ctx, self.c, khn), (q_re, q_im)),
        }
    }
}

super::diagonal_state_space!(S4d, discretise);

#[cfg(test)]
mod tests;
