//! DLR, the diagonal linear RNN (Gupta, Mehta & Berant 2022, "Simplifying and Understanding
//! State Space Models with Diagonal Linear RNNs", §3), after the reference `DLRKernel` of
//! ag1988/dlr. No continuous-time system and no discretisation: the recurrence itself is
//! learned,
//!
//!   x_k = λ ⊙ x_{k−1} + u_k,   y_k = Re(W x_k) + D u_k,
//!
//! with N complex states (no conjugate pairing, so the real part is taken, not 2·Re). As a
//! convolution its kernel is K_l = Re Σ_n W_n λ_n^l, then the FFT convolution.
//!
//! λ is learned directly, in log form log λ = −ρ² + i·θ (the reference's `Lambda_log_neg_re`
//! and `Lambda_im`), which keeps |λ| ≤ 1 for any ρ. It is shared by the H channels, as in the
//! reference; W and D are per channel. Sharing makes the kernel one N × L Vandermonde matrix
//! and a matrix product ([`crate::engine::ops::ssm::shared_vandermonde`]) on the CPU; the
//! composed form (GPUs) runs S4D's per-channel recurrence with λ broadcast.
//!
//! Initialisation (the reference's `Lambda_init: omega`): log λ_n = −½Δ_n + 2πi·n/N with Δ_n
//! log-uniform in [dt_min, dt_max], i.e. slowly decaying rotations spread evenly over the
//! circle; W ~ CN(0, 1)/N (`W_scale` 1/N), D ~ N(0, 1).
//!
//! Parameters: `lambda_rho` (N) and `lambda_theta` (N) in the SSM group; `W` (2, C·dirs, H, N)
//! with real parts then imaginary parts; `D` (C, H).

use dfdx::prelude::*;
use serde::{Deserialize, Serialize};

use super::{
    check_dt_range, complex_normal_param, complex_parts, directions, log_uniform, param_with,
    skip_param,
};
use crate::engine::error::{EngineError, Result};
use crate::engine::layers::{Ctx, Scope};
use crate::engine::ops::ssm::diagonal::SharedDiagonalParams;
use crate::engine::ops::EngineDevice;
use crate::engine::params::{GroupId, Init, ParamId};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DlrConfig {
    /// N, the number of complex states.
    pub d_state: usize,
    /// The range of the decay rates at initialisation (|λ| = exp(−Δ/2)).
    pub dt_min: f64,
    pub dt_max: f64,
    /// Output channels C per input channel.
    pub channels: usize,
    pub bidirectional: bool,
}

impl DlrConfig {
    fn kernels(&self) -> usize {
        self.channels * directions(self.bidirectional)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.d_state == 0 || self.channels == 0 {
            return Err(EngineError::InvalidConfig(
                "DLR needs d_state > 0 and at least one channel".into(),
            ));
        }
        check_dt_range("DLR", self.dt_min, self.dt_max)
    }

    /// Trainable scalars of the recurrence for `width` channels (output projection excluded).
    pub fn parameter_count(&self, width: usize) -> usize {
        let n = self.d_state;
        2 * n + 2 * self.kernels() * width * n + self.channels * width
    }
}

#[derive(Clone, Debug)]
pub struct Dlr {
    pub config: DlrConfig,
    pub width: usize,
    pub lambda_rho: ParamId,
    pub lambda_theta: ParamId,
    pub w: ParamId,
    pub d: ParamId,
}

impl Dlr {
    /// Creates the parameters in `scope`, λ's in `ssm_group`.
    pub fn build<D: EngineDevice>(
        scope: &mut Scope<'_, D>,
        width: usize,
        config: DlrConfig,
        ssm_group: GroupId,
    ) -> Result<Self> {
        config.validate()?;
        let n = config.d_state;
        let (dt_min, dt_max) = (config.dt_min, config.dt_max);
        // Re log λ = −ρ² = −Δ/2.
        let lambda_rho = param_with(
            scope,
            "lambda_rho",
            &[n],
            Init::Uniform { bound: 0.5 },
            ssm_group,
            |u| {
                u.into_iter()
                    .map(|u| (0.5 * log_uniform(u, dt_min, dt_max)).sqrt())
                    .collect()
            },
        )?;
        let lambda_theta = param_with(scope, "lambda_theta", &[n], Init::Zeros, ssm_group, |v| {
            (0..v.len())
                .map(|i| std::f32::consts::TAU * i as f32 / n as f32)
                .collect()
        })?;
        let w = complex_normal_param(scope, "W", &[2, config.kernels(), width, n], n as f32)?;
        let d = skip_param(scope, &[config.channels, width])?;
        Ok(Dlr {
            config,
            width,
            lambda_rho,
            lambda_theta,
            w,
            d,
        })
    }

    /// log λ (shared by the channels) and W.
    fn recurrence<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        ctx: &Ctx<'_, D>,
    ) -> SharedDiagonalParams<f32, D, T> {
        let p = ctx.params;
        let (h, n) = (self.width, self.config.d_state);
        let log_re = p.vector::<T>(self.lambda_rho).square().negate();
        let log_im = p.vector::<T>(self.lambda_theta);
        SharedDiagonalParams {
            zeta: (log_re, log_im),
            w: complex_parts(ctx, self.w, (self.config.kernels(), h, n)),
        }
    }
}

super::diagonal_state_space!(Dlr, recurrence, shared_diagonal_ssm);

#[cfg(test)]
mod tests;
