//! MEGA's moving-average equipped gated attention (Ma et al. 2023, §3.2–3.3), after the
//! reference `MovingAverageGatedAttention` (facebookresearch/mega,
//! `fairseq/modules/moving_average_gated_attention.py`), with X the block input (normalised
//! first in pre-norm):
//!
//! - X′ = EMA(X), the damped EMA layer ([`super::ema`]), then dropout;
//! - one projection of X′ gives the update gate φ = σ(·), the shared representation
//!   Z = SiLU(·) (width z), the reset gate γ = SiLU(·) (width v) and X′W_h;
//! - Q = κ_q⊙Z + μ_q, K = κ_k⊙Z + μ_k (per-dimension scale and offset), V = SiLU(X·W_v);
//! - O = f(Q·Kᵀ + B)·V in chunks ([`super::chunked_attention`]), B the relative position
//!   bias, with attention dropout on f(·) in training;
//! - candidate H = SiLU(X′W_h + (γ⊙O)·U_h), then dropout;
//! - Y = φ⊙H + (1 − φ)⊙X, with the unnormalised input as X (the reference's
//!   `addcmul(residual, u, h − residual)`); post-norm normalises Y.
//!
//! Parameters: `norm.*`, `ema.*`, `value.*` (X → V), `mixed.*` (X′ → φ, Z, γ, X′W_h),
//! `output.*` (U_h), `qk_scale` and `qk_offset` (2, z): rows for Q then K, and
//! `rel_pos_bias` (2P − 1), the bias per relative offset.

use dfdx::prelude::*;

use super::chunked_attention::ChunkedAttention;
use super::ema::MultiHeadEma;
use crate::engine::error::Result;
use crate::engine::layers::activation::Activation;
use crate::engine::layers::linear::Linear;
use crate::engine::layers::norm::{Norm, NormKind};
use crate::engine::layers::sequence::{NormPlacement, SequenceLayer};
use crate::engine::layers::{Ctx, Scope, Seq};
use crate::engine::ops::EngineDevice;
use crate::engine::params::{GroupId, Init, ParamId, NO_DECAY_GROUP};

/// The widths of a gated-attention layer.
#[derive(Clone, Copy, Debug)]
pub struct GatedWidths {
    /// d: the model width.
    pub model: usize,
    /// z: the shared query/key representation.
    pub shared: usize,
    /// v: the values, the attention output and the reset gate.
    pub value: usize,
    /// EMA dimensions per feature.
    pub ema_dims: usize,
}

#[derive(Clone, Debug)]
pub struct GatedAttention {
    pub norm: Norm,
    pub placement: NormPlacement,
    pub ema: MultiHeadEma,
    pub value: Linear,
    pub mixed: Linear,
    pub output: Linear,
    pub qk_scale: ParamId,
    pub qk_offset: ParamId,
    pub rel_pos_bias: ParamId,
    pub attention: ChunkedAttention,
    pub widths: GatedWidths,
    pub dropout: f32,
}

/// How a gated-attention layer is built besides its widths.
pub struct GatedSettings {
    pub attention: ChunkedAttention,
    pub bidirectional: bool,
    pub norm: NormKind,
    pub placement: NormPlacement,
    pub dropout: f32,
    /// The learning-rate group of the EMA parameters.
    pub ema_group: GroupId,
}

impl GatedAttention {
    pub fn build<D: EngineDevice>(
        mut scope: Scope<'_, D>,
        widths: GatedWidths,
        settings: GatedSettings,
    ) -> Result<Self> {
        let GatedWidths {
            model: d,
            shared: z,
            value: v,
            ema_dims,
        } = widths;
        Ok(GatedAttention {
            norm: Norm::build(scope.sub("norm"), settings.norm, d)?,
            placement: settings.placement,
            ema: MultiHeadEma::build(
                scope.sub("ema"),
                d,
                ema_dims,
                settings.bidirectional,
                settings.ema_group,
            )?,
            value: Linear::build(scope.sub("value"), d, v)?,
            mixed: Linear::build(scope.sub("mixed"), d, d + z + v + d)?,
            output: Linear::build(scope.sub("output"), v, d)?,
            // κ ~ N(0, 0.02²), μ = 0, as the reference's `gamma` and `beta`.
            qk_scale: scope.param(
                "qk_scale",
                &[2, z],
                Init::Normal { std: 0.02 },
                NO_DECAY_GROUP,
            )?,
            qk_offset: scope.param("qk_offset", &[2, z], Init::Zeros, NO_DECAY_GROUP)?,
            // w ~ N(0, 0.02²), as the reference's `SimpleRelativePositionalBias`; a bias, so
            // without weight decay like μ.
            rel_pos_bias: scope.param(
                "rel_pos_bias",
                &[settings.attention.bias_len()],
                Init::Normal { std: 0.02 },
                NO_DECAY_GROUP,
            )?,
            attention: settings.attention,
            widths,
            dropout: settings.dropout,
        })
    }

    /// Trainable scalars, for a bias table of `bias_len` offsets.
    pub fn parameter_count(widths: GatedWidths, bidirectional: bool, bias_len: usize) -> usize {
        let GatedWidths {
            model: d,
            shared: z,
            value: v,
            ema_dims,
        } = widths;
        Norm::parameter_count(d)
            + MultiHeadEma::parameter_count(d, ema_dims, bidirectional)
            + Linear::parameter_count(d, v)
            + Linear::parameter_count(d, d + z + v + d)
            + Linear::parameter_count(v, d)
            + 4 * z
            + bias_len
    }
}

impl SequenceLayer for GatedAttention {
    fn forward<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        x: Seq<D, T>,
        ctx: &Ctx<'_, D>,
    ) -> Result<Seq<D, T>> {
        let input = match self.placement {
            NormPlacement::Pre => self.norm.forward(x.with_empty_tape(), ctx)?,
            NormPlacement::Post => x.with_empty_tape(),
        };
        let silu = Activation::Silu;
        let values = silu.apply(self.value.forward_seq(input.with_empty_tape(), ctx)?)?;
        let smoothed = ctx.dropout(self.ema.forward(input, ctx)?, self.dropout);
        let mixed = self.mixed.forward_seq(smoothed, ctx)?;
        // φ, Q, K, γ and X′W_h from the one projection, in one pass (one fused op on the CPU).
        let gates = D::mega_gates(
            mixed,
            ctx.params.flat::<T>(self.qk_scale),
            ctx.params.flat::<T>(self.qk_offset),
            self.widths.model,
        )?;
        let bias = ctx.params.vector::<T>(self.rel_pos_bias);
        let attended = self
            .attention
            .forward(gates.q, gates.k, values, bias, ctx)?;
        let reset = D::product(attended, gates.reset)?;
        let candidate = silu.apply(D::add(
            gates.projected,
            self.output.forward_seq(reset, ctx)?,
        )?)?;
        let candidate = ctx.dropout(candidate, self.dropout);
        let y = D::gated_residual(x, gates.update, candidate)?;
        match self.placement {
            NormPlacement::Pre => Ok(y),
            NormPlacement::Post => self.norm.forward(y, ctx),
        }
    }
}
