//! MEGA (Ma et al. 2023, "Mega: Moving Average Equipped Gated Attention") as a block of the
//! state-space model: the gated attention ([`gated_attention`], with the damped EMA of
//! [`ema`] inside and its own gated residual) followed by MEGA's normalized feed-forward
//! network, a residual SiLU [`FeedForward`] of width `ffn_expand`·d (the reference
//! `MegaSentenceEncoderLayer`: `MovingAverageGatedAttention` then
//! `NormalizedFeedForwardNetwork`). Parameter names under the block: `attn.*`, `ffn.*`,
//! `ffn_norm.*`.

pub mod chunked_attention;
pub mod ema;
pub mod gated_attention;

use dfdx::prelude::*;
use serde::{Deserialize, Serialize};

use self::chunked_attention::{AttentionFunction, ChunkedAttention};
use self::gated_attention::{GatedAttention, GatedSettings, GatedWidths};
use super::activation::Activation;
use super::feed_forward::FeedForward;
use super::norm::{Norm, NormKind};
use super::sequence::{NormPlacement, Residual, SequenceLayer};
use super::{Ctx, Scope, Seq};
use crate::engine::error::{EngineError, Result};
use crate::engine::ops::EngineDevice;
use crate::engine::params::GroupId;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MegaConfig {
    /// z: width of the shared query/key representation.
    pub d_attin: usize,
    /// v: width of the values and the attention output.
    pub d_attout: usize,
    /// EMA dimensions per feature (the paper's h).
    pub ema_dims: usize,
    /// Attention chunk length; `None` attends over the whole sequence.
    pub chunk: Option<usize>,
    pub attention: AttentionFunction,
    /// Feed-forward width as a multiple of d_model.
    pub ffn_expand: usize,
    /// Causal when false: a one-way EMA and causal attention.
    pub bidirectional: bool,
    /// Dropout probability of the attention weights (the reference's `attention_dropout`).
    pub attention_dropout: f32,
    /// The longest input: it sizes the relative position bias when attention is not chunked
    /// (the reference's `max_positions`).
    pub max_len: usize,
}

impl MegaConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        if [
            self.d_attin,
            self.d_attout,
            self.ema_dims,
            self.ffn_expand,
            self.max_len,
        ]
        .contains(&0)
            || self.chunk == Some(0)
        {
            return Err(EngineError::InvalidConfig(
                "MEGA needs positive d_attin, d_attout, ema_dims, ffn_expand, max_len and chunk"
                    .into(),
            ));
        }
        if !(0.0..1.0).contains(&self.attention_dropout) {
            return Err(EngineError::InvalidConfig(format!(
                "attention dropout must be in [0, 1), got {}",
                self.attention_dropout
            )));
        }
        Ok(())
    }

    fn widths(&self, width: usize) -> GatedWidths {
        GatedWidths {
            model: width,
            shared: self.d_attin,
            value: self.d_attout,
            ema_dims: self.ema_dims,
        }
    }

    fn attention(&self) -> ChunkedAttention {
        ChunkedAttention {
            chunk: self.chunk,
            function: self.attention,
            causal: !self.bidirectional,
            dropout: self.attention_dropout,
            positions: ChunkedAttention::positions(self.chunk, self.max_len),
        }
    }

    /// Trainable scalars of one block of `width` channels, norms included.
    pub fn parameter_count(&self, width: usize) -> usize {
        GatedAttention::parameter_count(
            self.widths(width),
            self.bidirectional,
            self.attention().bias_len(),
        ) + Norm::parameter_count(width)
            + FeedForward::parameter_count(width, self.ffn_expand * width)
    }
}

/// Everything a block takes from its model besides the MEGA settings.
pub struct BlockSettings {
    pub norm: NormKind,
    pub placement: NormPlacement,
    pub dropout: f32,
    /// The learning-rate group of the EMA parameters.
    pub ema_group: GroupId,
}

#[derive(Clone, Debug)]
pub struct MegaBlock {
    pub attention: GatedAttention,
    pub ffn: Residual<FeedForward>,
}

impl MegaBlock {
    pub fn build<D: EngineDevice>(
        mut scope: Scope<'_, D>,
        width: usize,
        config: &MegaConfig,
        settings: BlockSettings,
    ) -> Result<Self> {
        config.validate()?;
        let attention = GatedAttention::build(
            scope.sub("attn"),
            config.widths(width),
            GatedSettings {
                attention: config.attention(),
                bidirectional: config.bidirectional,
                norm: settings.norm,
                placement: settings.placement,
                dropout: settings.dropout,
                ema_group: settings.ema_group,
            },
        )?;
        let feed_forward = FeedForward::build(
            scope.sub("ffn"),
            width,
            config.ffn_expand * width,
            Activation::Silu,
            settings.dropout,
        )?;
        let ffn = Residual::build(
            scope.sub("ffn_norm"),
            width,
            feed_forward,
            settings.norm,
            settings.placement,
            settings.dropout,
        )?;
        Ok(MegaBlock { attention, ffn })
    }
}

impl SequenceLayer for MegaBlock {
    fn forward<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        x: Seq<D, T>,
        ctx: &Ctx<'_, D>,
    ) -> Result<Seq<D, T>> {
        let x = self.attention.forward(x, ctx)?;
        self.ffn.forward(x, ctx)
    }
}
