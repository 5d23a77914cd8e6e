//! The state-space models of the LRA experiments (S4's architecture):
//! input encoder → dropout → blocks (norm, SSM layer, residual; pre- or post-norm) → final
//! norm (pre-norm only) → pooling over true lengths → classifier head. No positions and no
//! feed-forward sub-layer: the SSM layer's GLU output is the block's only projection.
//! MEGA's blocks take the place of those blocks: each holds its EMA-gated attention and its
//! feed-forward network ([`MegaBlock`]).
//! Parameter names: `encoder.*`, `layers.<i>.norm.*`, `layers.<i>.ssm.*` (the kind's own, and
//! `layers.<i>.ssm.output.*`), or MEGA's `layers.<i>.{attn,ffn,ffn_norm}.*`, `final_norm.*`,
//! `head.*`. SSM parameters (MEGA: the EMA's) go to a group `ssm` with their own learning
//! rate and weight decay (S4 §4, "SSM parameters at lr 0.001 without weight decay").

use std::ops::Range;

use dfdx::prelude::*;
use serde::{Deserialize, Serialize};

use crate::engine::error::{EngineError, Result};
use crate::engine::layers::encoder::{InputEncoder, InputKind, Inputs};
use crate::engine::layers::heads::ClassifierHead;
use crate::engine::layers::mega::{BlockSettings, MegaBlock, MegaConfig};
use crate::engine::layers::norm::{Norm, NormKind};
use crate::engine::layers::pool::PoolKind;
use crate::engine::layers::sequence::{Mixer, NormPlacement, Residual, SequenceLayer};
use crate::engine::layers::ssm::dlr::{Dlr, DlrConfig};
use crate::engine::layers::ssm::lru::{Lru, LruConfig};
use crate::engine::layers::ssm::s4::{S4Config, S4};
use crate::engine::layers::ssm::s4d::{S4d, S4dConfig};
use crate::engine::layers::ssm::s5::{S5Config, S5};
use crate::engine::layers::ssm::{Activation, SsmLayer};
use crate::engine::layers::{Ctx, Scope, Seq};
use crate::engine::ops::EngineDevice;
use crate::engine::params::{GroupId, ParamGroup, ParamStore};

/// The state-space kind of every block, with its own settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum SsmKind {
    S4(S4Config),
    S4d(S4dConfig),
    Dlr(DlrConfig),
    Lru(LruConfig),
    S5(S5Config),
    Mega(MegaConfig),
}

/// One block of a state-space model: an SSM layer in a residual, or a MEGA block (which
/// holds its own gated residual and feed-forward network).
#[derive(Clone, Debug)]
pub enum SsmBlock {
    Residual(Residual<Mixer>),
    Mega(MegaBlock),
}

impl SequenceLayer for SsmBlock {
    fn forward<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        x: Seq<D, T>,
        ctx: &Ctx<'_, D>,
    ) -> Result<Seq<D, T>> {
        match self {
            SsmBlock::Residual(block) => block.forward(x, ctx),
            SsmBlock::Mega(block) => block.forward(x, ctx),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SsmConfig {
    pub input: InputKind,
    pub d_model: usize,
    pub layers: usize,
    pub dropout: f32,
    pub norm: NormPlacement,
    pub norm_kind: NormKind,
    pub pool: PoolKind,
    pub n_classes: usize,
    /// Retrieval: classify the pair features of two separately encoded documents.
    pub two_tower: bool,
    pub kind: SsmKind,
    /// The non-linearity after the SSM (not used by MEGA).
    pub activation: Activation,
    /// Output linear to 2·d_model followed by a GLU (`post glu`), or to d_model (not used by
    /// MEGA).
    pub glu: bool,
    /// Learning rate and weight decay of the SSM parameters (A, B, Δ and the like).
    pub ssm_lr: f32,
    pub ssm_weight_decay: f32,
}

impl SsmConfig {
    /// Width of the classifier's input (see [`super::classifier::head_inputs`]).
    pub(crate) fn head_inputs(&self) -> usize {
        super::classifier::head_inputs(self.d_model, self.two_tower)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.d_model == 0 || self.layers == 0 || self.n_classes == 0 {
            return Err(EngineError::InvalidConfig(
                "d_model, layers and n_classes must be positive".into(),
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(EngineError::InvalidConfig(format!(
                "dropout must be in [0, 1), got {}",
                self.dropout
            )));
        }
        match &self.kind {
            SsmKind::S4(c) => c.validate(),
            SsmKind::S4d(c) => c.validate(),
            SsmKind::Dlr(c) => c.validate(),
            SsmKind::Lru(c) => c.validate(),
            SsmKind::S5(c) => c.validate(),
            SsmKind::Mega(c) => c.validate(),
        }
    }

    /// The number of trainable parameters, from the configuration alone.
    pub fn parameter_count(&self) -> usize {
        let d = self.d_model;
        let block = match &self.kind {
            SsmKind::S4(c) => self.residual_block(c.parameter_count(d), c.channels * d),
            SsmKind::S4d(c) => self.residual_block(c.parameter_count(d), c.channels * d),
            SsmKind::Dlr(c) => self.residual_block(c.parameter_count(d), c.channels * d),
            SsmKind::Lru(c) => self.residual_block(c.parameter_count(d), d),
            SsmKind::S5(c) => self.residual_block(c.parameter_count(d), d),
            SsmKind::Mega(c) => c.parameter_count(d),
        };
        InputEncoder::parameter_count(self.input, d)
            + self.layers * block
            + super::classifier::top_parameter_count(
                self.norm,
                d,
                self.head_inputs(),
                self.n_classes,
            )
    }

    /// Parameters of a norm + SSM layer block whose SSM has `ssm` parameters and
    /// `ssm_outputs` output channels.
    fn residual_block(&self, ssm: usize, ssm_outputs: usize) -> usize {
        let d = self.d_model;
        Norm::parameter_count(d)
            + ssm
            + SsmLayer::<S4d>::output_parameter_count(ssm_outputs, d, self.glu)
    }

    fn block<D: EngineDevice>(&self, mut layer: Scope<'_, D>, group: GroupId) -> Result<SsmBlock> {
        if let SsmKind::Mega(c) = &self.kind {
            let settings = BlockSettings {
                norm: self.norm_kind,
                placement: self.norm,
                dropout: self.dropout,
                ema_group: group,
            };
            return Ok(SsmBlock::Mega(MegaBlock::build(
                layer,
                self.d_model,
                c,
                settings,
            )?));
        }
        let mixer = self.mixer(layer.sub("ssm"), group)?;
        Ok(SsmBlock::Residual(Residual::build(
            layer.sub("norm"),
            self.d_model,
            mixer,
            self.norm_kind,
            self.norm,
            self.dropout,
        )?))
    }

    fn mixer<D: EngineDevice>(&self, mut scope: Scope<'_, D>, group: GroupId) -> Result<Mixer> {
        let d = self.d_model;
        Ok(match &self.kind {
            SsmKind::S4(c) => {
                let ssm = S4::build(&mut scope, d, c.clone(), group)?;
                Mixer::S4(self.layer(scope, ssm)?)
            }
            SsmKind::S4d(c) => {
                let ssm = S4d::build(&mut scope, d, c.clone(), group)?;
                Mixer::S4d(self.layer(scope, ssm)?)
            }
            SsmKind::Dlr(c) => {
                let ssm = Dlr::build(&mut scope, d, c.clone(), group)?;
                Mixer::Dlr(self.layer(scope, ssm)?)
            }
            SsmKind::Lru(c) => {
                let ssm = Lru::build(&mut scope, d, c.clone(), group)?;
                Mixer::Lru(self.layer(scope, ssm)?)
            }
            SsmKind::S5(c) => {
                let ssm = S5::build(&mut scope, d, c.clone(), group)?;
                Mixer::S5(self.layer(scope, ssm)?)
            }
            SsmKind::Mega(_) => {
                return Err(EngineError::InvalidConfig(
                    "a MEGA block is built whole, not as a mixer".into(),
                ))
            }
        })
    }

    fn layer<D: EngineDevice, K: crate::engine::layers::ssm::StateSpace>(
        &self,
        scope: Scope<'_, D>,
        ssm: K,
    ) -> Result<SsmLayer<K>> {
        SsmLayer::build(
            scope,
            ssm,
            self.d_model,
            self.glu,
            self.activation,
            self.dropout,
        )
    }
}

#[derive(Clone, Debug)]
pub struct SsmModel {
    pub config: SsmConfig,
    pub encoder: InputEncoder,
    pub blocks: Vec<SsmBlock>,
    pub final_norm: Option<Norm>,
    pub head: ClassifierHead,
    /// The store indices of this model's parameters.
    params: Range<usize>,
}

impl SsmModel {
    /// Creates the model's parameters in `store` (names in the module documentation).
    pub fn build<D: EngineDevice>(config: SsmConfig, store: &mut ParamStore<D>) -> Result<Self> {
        config.validate()?;
        let group = store.add_group(
            ParamGroup::new("ssm")
                .with_lr(config.ssm_lr)
                .with_weight_decay(config.ssm_weight_decay),
        );
        let first = store.len();
        let d = config.d_model;
        let mut root = Scope::root(store);
        let encoder = InputEncoder::build(root.sub("encoder"), config.input, d)?;
        let mut blocks = Vec::with_capacity(config.layers);
        for i in 0..config.layers {
            blocks.push(config.block(root.sub(format!("layers.{i}")), group)?);
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
        Ok(SsmModel {
            config,
            encoder,
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

    /// The contextual representation of every position, (batch, length, d_model).
    pub(crate) fn encode<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        params: &ParamStore<D>,
        inputs: &Inputs<'_>,
        train: bool,
    ) -> Result<Seq<D, T>> {
        if inputs.lengths.len() != inputs.batch {
            return Err(EngineError::ShapeMismatch {
                op: "ssm",
                detail: format!(
                    "batch of {} examples with {} lengths",
                    inputs.batch,
                    inputs.lengths.len()
                ),
            });
        }
        let ctx = Ctx::new(params, train, inputs.lengths);
        let x = ctx.dropout(
            self.encoder.forward::<D, T>(inputs, &ctx)?,
            self.config.dropout,
        );
        super::classifier::run_blocks(x, &self.blocks, self.final_norm.as_ref(), &ctx)
    }
}

super::classifier::sequence_classifier!(SsmModel);

#[cfg(test)]
mod tests;
