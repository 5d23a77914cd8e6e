//! The Transformer encoder of the LRA experiments, built from a plain configuration.
//!
//! input encoder → (+ positions) → dropout → blocks (attention, feed-forward; pre- or
//! post-norm residuals) → final norm (pre-norm only) → pooling over true lengths → head.
//! Parameter names: `encoder.*`, `positions.*`, `layers.<i>.{attn,attn_norm,ffn,ffn_norm}.*`,
//! `final_norm.*`, `head.*`.

use std::ops::Range;

use dfdx::prelude::*;
use serde::{Deserialize, Serialize};

use crate::engine::error::{EngineError, Result};
use crate::engine::layers::activation::Activation;
use crate::engine::layers::attention::MultiHeadAttention;
use crate::engine::layers::encoder::{InputEncoder, InputKind, Inputs};
use crate::engine::layers::feed_forward::FeedForward;
use crate::engine::layers::heads::ClassifierHead;
use crate::engine::layers::norm::{Norm, NormKind};
use crate::engine::layers::pool::PoolKind;
use crate::engine::layers::position::{AddedPositions, PositionKind, Rotary};
use crate::engine::layers::sequence::{Block, Mixer, NormPlacement, Residual};
use crate::engine::layers::{Ctx, Scope, Seq};
use crate::engine::ops::{AttentionKind, AttentionSpec, EngineDevice};
use crate::engine::params::ParamStore;

/// Everything that defines the model's shape; weights live in a [`ParamStore`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransformerConfig {
    pub input: InputKind,
    /// Longest sequence the model accepts (sizes learned positions and rotary tables).
    pub max_len: usize,
    pub d_model: usize,
    pub layers: usize,
    pub heads: usize,
    /// Hidden width of the feed-forward sub-layers.
    pub ffn: usize,
    /// The feed-forward's non-linearity (GELU in the SPT paper's and LRA's Transformers).
    #[serde(default = "default_activation")]
    pub activation: Activation,
    pub dropout: f32,
    pub norm: NormPlacement,
    /// Layer norm (Transformers) or batch norm (as S4 on ListOps).
    #[serde(default = "default_norm_kind")]
    pub norm_kind: NormKind,
    pub position: PositionKind,
    pub attention: AttentionKind,
    pub pool: PoolKind,
    pub n_classes: usize,
    /// Retrieval: classify the pair features of two separately encoded documents.
    pub two_tower: bool,
}

fn default_norm_kind() -> NormKind {
    NormKind::Layer
}

/// Configurations written before the activation was configurable used GELU.
fn default_activation() -> Activation {
    Activation::Gelu
}

impl TransformerConfig {
    pub(crate) fn d_head(&self) -> usize {
        self.d_model / self.heads.max(1)
    }

    /// Width of the classifier's input (see [`super::classifier::head_inputs`]).
    pub(crate) fn head_inputs(&self) -> usize {
        super::classifier::head_inputs(self.d_model, self.two_tower)
    }

    pub(crate) fn attention_spec(&self) -> AttentionSpec {
        AttentionSpec::new(self.heads, self.attention)
    }

    /// The checks the engine relies on (the language's checker reports them to users first).
    pub(crate) fn validate(&self) -> Result<()> {
        let fail = |msg: String| Err(EngineError::InvalidConfig(msg));
        if self.d_model == 0
            || self.layers == 0
            || self.heads == 0
            || self.ffn == 0
            || self.n_classes == 0
            || self.max_len == 0
        {
            return fail(
                "d_model, layers, heads, ffn, n_classes and max_len must be positive".into(),
            );
        }
        if !self.d_model.is_multiple_of(self.heads) {
            return fail(format!(
                "heads ({}) must divide d_model ({})",
                self.heads, self.d_model
            ));
        }
        if self.position.rotates() && !self.d_head().is_multiple_of(2) {
            return fail(format!(
                "rotary positions need an even head size, got {}",
                self.d_head()
            ));
        }
        if let AttentionKind::Local { window: 0, .. } = self.attention {
            return fail("the local attention window must be positive".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return fail(format!("dropout must be in [0, 1), got {}", self.dropout));
        }
        Ok(())
    }

    /// The number of trainable parameters, from the configuration alone.
    pub fn parameter_count(&self) -> usize {
        let d = self.d_model;
        let block = MultiHeadAttention::parameter_count(d)
            + FeedForward::parameter_count(d, self.ffn)
            + 2 * Norm::parameter_count(d);
        InputEncoder::parameter_count(self.input, d)
            + AddedPositions::parameter_count(self.position, self.max_len, d)
            + self.layers * block
            + super::classifier::top_parameter_count(
                self.norm,
                d,
                self.head_inputs(),
                self.n_classes,
            )
    }
}

#[derive(Clone, Debug)]
pub struct Transformer {
    pub config: TransformerConfig,
    pub encoder: InputEncoder,
    pub positions: AddedPositions,
    pub blocks: Vec<Block>,
    pub final_norm: Option<Norm>,
    pub head: ClassifierHead,
    /// The store indices of this model's parameters.
    params: Range<usize>,
}

impl Transformer {
    /// Creates the model's parameters in `store` (names in the module documentation).
    pub fn build<D: EngineDevice>(
        config: TransformerConfig,
        store: &mut ParamStore<D>,
    ) -> Result<Self> {
        config.validate()?;
        let first = store.len();
        let d = config.d_model;
        let mut root = Scope::root(store);
        let encoder = InputEncoder::build(root.sub("encoder"), config.input, d)?;
        let positions =
            AddedPositions::build(root.sub("positions"), config.position, config.max_len, d)?;
        let rotary = config
            .position
            .rotates()
            .then(|| Rotary::new(config.max_len, d, config.d_head()));
        let mut blocks = Vec::with_capacity(config.layers);
        for i in 0..config.layers {
            let mut layer = root.sub(format!("layers.{i}"));
            let attention = MultiHeadAttention::build(
                layer.sub("attn"),
                d,
                config.attention_spec(),
                rotary.clone(),
            )?;
            let ffn = FeedForward::build(
                layer.sub("ffn"),
                d,
                config.ffn,
                config.activation,
                config.dropout,
            )?;
            blocks.push(Block {
                mixer: Residual::build(
                    layer.sub("attn_norm"),
                    d,
                    Mixer::Attention(attention),
                    config.norm_kind,
                    config.norm,
                    config.dropout,
                )?,
                ffn: Residual::build(
                    layer.sub("ffn_norm"),
                    d,
                    ffn,
                    config.norm_kind,
                    config.norm,
                    config.dropout,
                )?,
            });
        }
        let (final_norm, head) = super::classifier::build_top(
            &mut root,
            config.norm,
            config.norm_kind,
            d,
            config.head_inputs(),
            config.n_classes,
        )?;
        let params = first..store.len();
        Ok(Transformer {
            config,
            encoder,
            positions,
            blocks,
            final_norm,
            head,
            params,
        })
    }

    /// Trainable scalars of this model (its head included).
    pub fn parameter_count<D: EngineDevice>(&self, store: &ParamStore<D>) -> usize {
        super::classifier::scalars_in(store, &self.params)
    }

    fn check_inputs(&self, inputs: &Inputs<'_>) -> Result<()> {
        if inputs.seq > self.config.max_len || inputs.lengths.len() != inputs.batch {
            return Err(EngineError::ShapeMismatch {
                op: "transformer",
                detail: format!(
                    "batch of {} examples of length {} with {} lengths; the model takes lengths up to {}",
                    inputs.batch,
                    inputs.seq,
                    inputs.lengths.len(),
                    self.config.max_len
                ),
            });
        }
        Ok(())
    }

    /// The contextual representation of every position, (batch, length, d_model).
    pub(crate) fn encode<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        params: &ParamStore<D>,
        inputs: &Inputs<'_>,
        train: bool,
    ) -> Result<Seq<D, T>> {
        self.check_inputs(inputs)?;
        let ctx = Ctx::new(params, train, inputs.lengths);
        let x = self.encoder.forward::<D, T>(inputs, &ctx)?;
        let x = ctx.dropout(self.positions.forward(x, &ctx)?, self.config.dropout);
        super::classifier::run_blocks(x, &self.blocks, self.final_norm.as_ref(), &ctx)
    }
}

super::classifier::sequence_classifier!(Transformer);

#[cfg(test)]
mod tests;
