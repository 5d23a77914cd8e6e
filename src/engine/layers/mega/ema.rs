//! MEGA's multi-dimensional damped EMA layer (Ma et al. 2023, §3.1, eq. 2–3), after the
//! reference `MultiHeadEMA` (facebookresearch/mega, `fairseq/modules/exponential_moving_average.py`).
//!
//! Each feature is expanded to `dims` EMA dimensions by β, each decays by its own
//! α = σ(·) damped by δ = σ(·): h_t = α⊙β·x_t + (1 − α⊙δ)⊙h_{t−1}, and the dimensions are
//! projected back by η (scaled by √(1/dims), as the reference). The output is
//! SiLU(EMA(x) + ω⊙x), ω a learned residual weight. Bidirectional: a second set of
//! parameters runs over the reversed sequence (see [`crate::engine::ops::ssm::ema`]).
//! Initialisation as the reference: α, δ ~ N(0, 0.2²) before the sigmoid, β ~ N(±1, 0.02²)
//! alternating in sign across dimensions, η and ω ~ N(0, 1).
//!
//! Parameters `alpha`, `delta`, `beta`, `eta` (K, H, dims) with K = 1 or 2 directions, and
//! `omega` (H); all in the SSM group (own learning rate, no weight decay by default).

use dfdx::prelude::*;

use crate::engine::error::Result;
use crate::engine::layers::ssm::{param_with, zero_padding};
use crate::engine::layers::{Ctx, Scope, Seq};
use crate::engine::ops::ssm::ema::EmaParams;
use crate::engine::ops::EngineDevice;
use crate::engine::params::{GroupId, Init, ParamId};

#[derive(Clone, Debug)]
pub struct MultiHeadEma {
    pub alpha: ParamId,
    pub delta: ParamId,
    pub beta: ParamId,
    pub eta: ParamId,
    pub omega: ParamId,
    pub width: usize,
    pub dims: usize,
    pub bidirectional: bool,
}

impl MultiHeadEma {
    pub fn build<D: EngineDevice>(
        mut scope: Scope<'_, D>,
        width: usize,
        dims: usize,
        bidirectional: bool,
        group: GroupId,
    ) -> Result<Self> {
        let shape = [Self::kernels(bidirectional), width, dims];
        let logit = Init::Normal { std: 0.2 };
        Ok(MultiHeadEma {
            alpha: scope.param("alpha", &shape, logit, group)?,
            delta: scope.param("delta", &shape, logit, group)?,
            // β ≈ (1, −1, 1, …) over the EMA dimensions ("seems more stable", the reference).
            beta: param_with(
                &mut scope,
                "beta",
                &shape,
                Init::Normal { std: 0.02 },
                group,
                |noise| {
                    let sign = |i: usize| {
                        if (i % dims).is_multiple_of(2) {
                            1.0
                        } else {
                            -1.0
                        }
                    };
                    noise.iter().enumerate().map(|(i, v)| v + sign(i)).collect()
                },
            )?,
            eta: scope.param("eta", &shape, Init::Normal { std: 1.0 }, group)?,
            omega: scope.param("omega", &[width], Init::Normal { std: 1.0 }, group)?,
            width,
            dims,
            bidirectional,
        })
    }

    fn kernels(bidirectional: bool) -> usize {
        if bidirectional {
            2
        } else {
            1
        }
    }

    pub fn parameter_count(width: usize, dims: usize, bidirectional: bool) -> usize {
        4 * Self::kernels(bidirectional) * width * dims + width
    }

    /// x (B, L, H) → SiLU(EMA(x) + ω⊙x), padding zeroed first so no direction reads it.
    pub fn forward<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        x: Seq<D, T>,
        ctx: &Ctx<'_, D>,
    ) -> Result<Seq<D, T>> {
        let x = zero_padding(x, ctx);
        let shape = (Self::kernels(self.bidirectional), self.width, self.dims);
        let table = |id: ParamId| ctx.params.flat::<T>(id).reshape_like(&shape);
        let alpha = table(self.alpha).sigmoid();
        let delta = table(self.delta).sigmoid();
        // q = 1 − α⊙δ ∈ (0, 1): the damped decay.
        let log_q = ((alpha.with_empty_tape() * delta).negate() + 1.0).ln();
        let scale = (1.0 / self.dims as f32).sqrt();
        let w = alpha * table(self.beta) * table(self.eta) * scale;
        let ema = D::ema(
            x.with_empty_tape(),
            EmaParams { log_q, w },
            self.bidirectional,
        )?;
        D::ema_output(ema, x, ctx.params.vector::<T>(self.omega))
    }
}
