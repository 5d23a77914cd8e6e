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
use super::hippo::legs_nplr;
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

/// The initialisation of A (S4D §4): Lin and Inv set Im A with Re A = −½; LegS takes the
/// eigenvalues of the normal part of HiPPO-LegS (S4D-LegS, the diagonal restriction of S4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum S4dInit {
    /// S4D-Lin: Im A_n = π·n.
    Lin,
    /// S4D-Inv: Im A_n = (N/π)·(N/(2n + 1) − 1).
    Inv,
    /// S4D-LegS: A = Λ and B = VᴴB of HiPPO-LegS's normal part S = VΛVᴴ (S4D §4, eq. 9).
    Legs,
}

impl S4dInit {
    /// The N/2 kept eigenvalues of A for state size N; Re A = −½ for every init (S4D §4; the
    /// normal part of HiPPO-LegS has −½ on its diagonal).
    pub(crate) fn eigenvalues(self, d_state: usize) -> Vec<Complex64> {
        // Lin and Inv are computed in f32, as the parameters are stored.
        let state = d_state as f32;
        let with_imaginary_parts = |im: &dyn Fn(f32) -> f32| {
            (0..d_state / 2)
                .map(|mode| Complex64::new(-0.5, im(mode as f32) as f64))
                .collect()
        };
        match self {
            // S4D-Lin: Im A_n = π·n.
            S4dInit::Lin => with_imaginary_parts(&|n| std::f32::consts::PI * n),
            // S4D-Inv: Im A_n = (N/π)·(N/(2n + 1) − 1).
            S4dInit::Inv => with_imaginary_parts(&|n| {
                state / std::f32::consts::PI * (state / (2.0 * n + 1.0) - 1.0)
            }),
            S4dInit::Legs => legs_nplr(d_state).lambda,
        }
    }

    /// B of each kept mode: 1 for Lin and Inv (the minimal S4D fixes B = 1), VᴴB for LegS.
    pub(crate) fn input_vector(self, d_state: usize) -> Vec<Complex64> {
        match self {
            S4dInit::Legs => legs_nplr(d_state).b,
            S4dInit::Lin | S4dInit::Inv => vec![Complex64::new(1.0, 0.0); d_state / 2],
        }
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

    pub(crate) fn validate(&self) -> Result<()> {
        if self.d_state < 2 || self.channels == 0 {
            return Err(EngineError::InvalidConfig(
                "S4D needs d_state ≥ 2 and at least one channel".into(),
            ));
        }
        if self.init == S4dInit::Legs && !self.d_state.is_multiple_of(2) {
            return Err(EngineError::InvalidConfig(
                "S4D-LegS needs an even d_state (HiPPO-LegS's modes come in conjugate pairs)"
                    .into(),
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
        // B stays fixed, so only the products C_n·B_n reach the kernel (eq. 5): B is folded
        // into C's draw, which gives LegS the reference's kernel at initialisation (B = VᴴB,
        // C ~ CN(0, 1)) with the parameters of the B = 1 layer.
        let c = complex_normal_param(scope, "C", &[2, config.kernels(), h, n], 1.0)?;
        if config.init == S4dInit::Legs {
            fold_input_vector(scope, c, &config.init.input_vector(config.d_state))?;
        }
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

/// C_n ← C_n·B_n for a complex parameter stored as real parts then imaginary parts, mode
/// fastest (n = index mod N/2).
fn fold_input_vector<D: EngineDevice>(
    scope: &mut Scope<'_, D>,
    c: ParamId,
    b: &[Complex64],
) -> Result<()> {
    let values = scope.store.values(c);
    let half = values.len() / 2;
    let mut folded = values.clone();
    for i in 0..half {
        let product = Complex64::new(values[i] as f64, values[half + i] as f64) * b[i % b.len()];
        folded[i] = product.re as f32;
        folded[half + i] = product.im as f32;
    }
    scope.store.set_values(c, &folded)?;
    Ok(())
}

#[cfg(test)]
mod tests;
