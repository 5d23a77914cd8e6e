//! The Linear Recurrent Unit (Orvieto, Smith, Gu, Fernando, Gulcehre, Pascanu & De 2023,
//! "Resurrecting Recurrent Neural Networks for Long Sequences"), after the paper's appendix A
//! code: x_t = Λ ⊙ x_{t−1} + γ ⊙ (B u_t), y_t = Re(C x_t) + D ⊙ u_t, with N complex states.
//!
//! - Exponential parametrisation (§3.3): Λ = exp(−exp(ν_log) + i·exp(θ_log)), so |Λ| < 1.
//! - Ring initialisation (Lemma 3.2): |Λ| uniform on the ring [r_min, r_max] (by area),
//!   arg Λ uniform in [0, max_phase].
//! - γ normalisation (§3.4): γ_log initialised to log √(1 − |Λ|²), learned.
//! - B ~ N(0, 1/(2H)) and C ~ N(0, 1/N) per real and imaginary part, D ~ N(0, 1).
//!
//! Bidirectional: a second recurrence (its own ν, θ, γ, B, C) runs over the reversed sequence
//! and the two readouts add. Parameters: `nu_log`, `theta_log`, `gamma_log` (N), `B`
//! (2, N, H), `C` (2, H, N) (real parts, then imaginary parts), the reversed direction's
//! under `reverse.*`; `D` (H). ν, θ, γ and B are in the SSM group.

use dfdx::prelude::*;
use serde::{Deserialize, Serialize};

use super::{directions, param_with, readout_map, skip_param, StateSpace};
use crate::engine::error::{EngineError, Result};
use crate::engine::layers::{Ctx, Scope, Seq};
use crate::engine::ops::EngineDevice;
use crate::engine::params::{GroupId, Init, ParamId, DEFAULT_GROUP};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LruConfig {
    /// N, the number of complex states.
    pub d_state: usize,
    pub r_min: f64,
    pub r_max: f64,
    pub max_phase: f64,
    pub bidirectional: bool,
}

impl LruConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.d_state == 0 || !(0.0 <= self.r_min && self.r_min < self.r_max && self.r_max < 1.0)
        {
            return Err(EngineError::InvalidConfig(format!(
                "LRU needs d_state > 0 and 0 ≤ r_min < r_max < 1, got {}, {} and {}",
                self.d_state, self.r_min, self.r_max
            )));
        }
        if self.max_phase <= 0.0 {
            return Err(EngineError::InvalidConfig(
                "LRU needs a positive max_phase".into(),
            ));
        }
        Ok(())
    }

    /// Trainable scalars of the recurrence for `width` channels (output projection excluded).
    pub fn parameter_count(&self, width: usize) -> usize {
        let n = self.d_state;
        directions(self.bidirectional) * (3 * n + 4 * n * width) + width
    }
}

/// The parameters of one recurrence.
#[derive(Clone, Debug)]
pub struct LruDirection {
    pub nu_log: ParamId,
    pub theta_log: ParamId,
    pub gamma_log: ParamId,
    pub b: ParamId,
    pub c: ParamId,
    pub reverse: bool,
}

impl LruDirection {
    fn build<D: EngineDevice>(
        scope: &mut Scope<'_, D>,
        width: usize,
        config: &LruConfig,
        ssm_group: GroupId,
        reverse: bool,
    ) -> Result<Self> {
        let n = config.d_state;
        let uniform = Init::Uniform { bound: 0.5 };
        let (r_min, r_max) = (config.r_min as f32, config.r_max as f32);
        // |Λ|² uniform in [r_min², r_max²], |Λ| = exp(−ν): ν = −½·log(u·(r_max² − r_min²) + r_min²).
        let nu_log = param_with(scope, "nu_log", &[n], uniform, ssm_group, |u| {
            u.into_iter()
                .map(|u| {
                    let radius2 = (u + 0.5) * (r_max * r_max - r_min * r_min) + r_min * r_min;
                    (-0.5 * radius2.ln()).ln()
                })
                .collect()
        })?;
        let max_phase = config.max_phase as f32;
        let theta_log = param_with(scope, "theta_log", &[n], uniform, ssm_group, |u| {
            u.into_iter()
                .map(|u| (max_phase * (u + 0.5)).max(f32::MIN_POSITIVE).ln())
                .collect()
        })?;
        let nu: Vec<f32> = scope.store().values(nu_log);
        let gamma_log = param_with(scope, "gamma_log", &[n], Init::Zeros, ssm_group, |_| {
            nu.iter()
                .map(|&nu_log| {
                    let modulus = (-nu_log.exp()).exp();
                    (1.0 - modulus * modulus).sqrt().ln()
                })
                .collect()
        })?;
        let b = scope.param(
            "B",
            &[2, n, width],
            Init::Normal {
                std: (1.0 / (2.0 * width as f32)).sqrt(),
            },
            ssm_group,
        )?;
        let c = scope.param(
            "C",
            &[2, width, n],
            Init::Normal {
                std: (1.0 / n as f32).sqrt(),
            },
            DEFAULT_GROUP,
        )?;
        Ok(LruDirection {
            nu_log,
            theta_log,
            gamma_log,
            b,
            c,
            reverse,
        })
    }

    /// Re(C x) for x_t = Λ ⊙ x_{t∓1} + γ ⊙ (B u_t), u as (batch·length, H) rows.
    fn forward<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        u: Tensor<(usize, usize), f32, D, T>,
        shape: (usize, usize, usize),
        ctx: &Ctx<'_, D>,
    ) -> Result<Tensor<(usize, usize), f32, D, T>> {
        let p = ctx.params;
        let (batch, len, width) = shape;
        let n = p.param(self.nu_log).numel();
        // log Λ = −exp(ν_log) + i·exp(θ_log), as [Re | Im].
        let zeta = (
            p.vector::<T>(self.nu_log).exp().negate(),
            p.vector::<T>(self.theta_log).exp(),
        )
            .concat_along(Axis::<0>);
        // γ ⊙ B as one (H, 2N) matrix, so B u is one real matmul giving [Re | Im].
        let gamma = p
            .vector::<T>(self.gamma_log)
            .exp()
            .broadcast_like::<_, Axes2<0, 2>>(&(2, n, width));
        let b = p.flat::<T>(self.b).reshape_like(&(2, n, width)) * gamma;
        let b = b.reshape_like(&(2 * n, width)).permute::<_, Axes2<1, 0>>();
        let bu = D::matmul(u, b)?.reshape_like(&(batch, len, 2 * n));
        let x = D::complex_scan(bu, zeta, self.reverse)?.reshape_like(&(batch * len, 2 * n));
        D::matmul(x, readout_map(p.flat::<T>(self.c), width, n))
    }
}

#[derive(Clone, Debug)]
pub struct Lru {
    pub config: LruConfig,
    pub width: usize,
    pub directions: Vec<LruDirection>,
    pub d: ParamId,
}

impl Lru {
    pub fn build<D: EngineDevice>(
        scope: &mut Scope<'_, D>,
        width: usize,
        config: LruConfig,
        ssm_group: GroupId,
    ) -> Result<Self> {
        config.validate()?;
        let mut directions = vec![LruDirection::build(
            scope, width, &config, ssm_group, false,
        )?];
        if config.bidirectional {
            directions.push(LruDirection::build(
                &mut scope.sub("reverse"),
                width,
                &config,
                ssm_group,
                true,
            )?);
        }
        let d = skip_param(scope, &[width])?;
        Ok(Lru {
            config,
            width,
            directions,
            d,
        })
    }
}

impl StateSpace for Lru {
    fn output_width(&self) -> usize {
        self.width
    }

    fn forward<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        u: Seq<D, T>,
        ctx: &Ctx<'_, D>,
    ) -> Result<Seq<D, T>> {
        let shape = *u.shape();
        let rows = (shape.0 * shape.1, shape.2);
        let u = u.reshape_like(&rows);
        let mut y = None;
        for direction in &self.directions {
            let out = direction.forward(u.with_empty_tape(), shape, ctx)?;
            y = Some(match y {
                None => out,
                Some(y) => D::add(y, out)?,
            });
        }
        let y = y.expect("an LRU has one direction at least");
        // y + D·u; u's own tape (its reshape's backward) joins y's here.
        let d = ctx.params.vector::<T>(self.d).reshape_like(&(1, shape.2));
        Ok(D::skip(y, u, d)?.reshape_like(&shape))
    }
}

#[cfg(test)]
mod tests;
