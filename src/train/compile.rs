//! Spec → the configurations of the data layer and the engine: the one lowering that `lra run`
//! builds and the estimate counts. Infallible: the checker has refused every spec the engine
//! could not build (tests/check_builds.rs holds the two together).

use super::error::Result;
use super::objective::{Corruption, Denoiser};
use crate::data::{self, DataConfig, Dataset};
use crate::engine::layers::encoder::InputKind;
use crate::engine::layers::heads::ClassifierHead;
use crate::engine::layers::mega::MegaConfig;
use crate::engine::layers::ssm::dlr::DlrConfig;
use crate::engine::layers::ssm::lru::LruConfig;
use crate::engine::layers::ssm::s4::{S4Config, S4Init};
use crate::engine::layers::ssm::s4d::{S4dConfig, S4dInit};
use crate::engine::layers::ssm::s5::S5Config;
use crate::engine::models::transformer::TransformerConfig;
use crate::engine::models::{Model, SsmConfig, SsmKind, SsmModel, Transformer};
use crate::engine::ops::AttentionKind;
use crate::engine::ops::EngineDevice;
use crate::engine::optim::{OptimizerConfig, OptimizerKind};
use crate::engine::params::ParamStore;
use crate::engine::schedule::Schedule;
use crate::spec::{self, ExperimentSpec, LayerSpec, PhaseSpec, TransformerSpec};

pub fn data_config(x: &ExperimentSpec) -> DataConfig {
    let t = &x.task;
    let mut cfg = DataConfig::preset(t.kind, &t.data);
    cfg.max_len = t.max_len;
    if let Some(tokenizer) = t.tokenizer {
        cfg.tokenizer = tokenizer;
    }
    if let Some(min_freq) = t.min_freq {
        cfg.min_freq = min_freq;
    }
    if let Some(encoding) = t.encoding {
        cfg.encoding = encoding;
    }
    if let Some(resolution) = t.resolution {
        cfg.resolution = resolution;
    }
    if let Some(difficulty) = t.difficulty {
        cfg.difficulty = difficulty;
    }
    if let Some(val_fraction) = t.val_fraction {
        cfg.val_fraction = val_fraction;
    }
    cfg.train_fraction = t.train_fraction;
    cfg.train_limit = t.train_limit;
    cfg.seed = x.seed;
    cfg
}

/// What a model is built for: the phases differ only in their input channels (masked
/// pretraining of continuous inputs adds a mask-indicator channel) and their head.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Role {
    Pretrain(Corruption),
    Finetune,
}

/// What the data decides about a model: its input layer, its classes, and whether it
/// classifies pairs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DataShape {
    pub input: InputKind,
    pub n_classes: usize,
    pub paired: bool,
}

impl DataShape {
    /// The shape `dataset` gives a model built for `role`.
    pub fn of(dataset: &Dataset, role: Role) -> Self {
        let tokens = matches!(dataset.input, data::InputKind::Tokens);
        DataShape {
            input: input_kind(tokens, dataset.vocab.len(), role),
            n_classes: dataset.num_classes,
            paired: dataset.paired,
        }
    }

    /// The shape from the spec alone, with the task's nominal vocabulary (what `check`'s
    /// estimate assumes).
    pub fn nominal(x: &ExperimentSpec, role: Role) -> Self {
        Self::with_vocab(x, role, x.task.nominal_vocab())
    }

    /// The shape of the task's data with a vocabulary of `vocab` tokens.
    pub(crate) fn with_vocab(x: &ExperimentSpec, role: Role, vocab: usize) -> Self {
        DataShape {
            input: input_kind(!x.task.is_continuous(), vocab, role),
            n_classes: x.task.n_classes,
            paired: x.task.documents() == 2,
        }
    }
}

/// The model's input layer: a token embedding, or a linear map of pixel values (with the
/// mask-indicator channel during masked pretraining).
fn input_kind(tokens: bool, vocab: usize, role: Role) -> InputKind {
    match (tokens, role) {
        (true, _) => InputKind::Tokens { vocab },
        (false, Role::Pretrain(corruption)) => InputKind::Continuous {
            channels: Denoiser::channels(corruption),
        },
        (false, Role::Finetune) => InputKind::Continuous { channels: 1 },
    }
}

/// The engine's configuration of a spec's model: every model kind of the language lowers to
/// one of the two model families, without a refusal (the checker has refused what the engine
/// cannot build).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub enum ModelConfig {
    Transformer(TransformerConfig),
    Ssm(SsmConfig),
}

impl ModelConfig {
    /// Trainable parameters of the model this configuration builds.
    pub fn parameter_count(&self) -> usize {
        match self {
            ModelConfig::Transformer(c) => c.parameter_count(),
            ModelConfig::Ssm(c) => c.parameter_count(),
        }
    }

    /// The classifier head's part of [`Self::parameter_count`] (pretraining swaps it).
    pub(crate) fn classifier_parameter_count(&self) -> usize {
        let (inputs, d_model, classes) = match self {
            ModelConfig::Transformer(c) => (c.head_inputs(), c.d_model, c.n_classes),
            ModelConfig::Ssm(c) => (c.head_inputs(), c.d_model, c.n_classes),
        };
        ClassifierHead::parameter_count(inputs, d_model, classes)
    }
}

fn transformer_config(
    x: &ExperimentSpec,
    t: &TransformerSpec,
    shape: DataShape,
) -> TransformerConfig {
    let m = &x.model;
    let attention = match (t.attention, m.bidirectional) {
        (spec::Attention::Full, true) => AttentionKind::Full,
        (spec::Attention::Full, false) => AttentionKind::Causal,
        (spec::Attention::Local { window }, bidirectional) => AttentionKind::Local {
            window,
            causal: !bidirectional,
        },
    };
    TransformerConfig {
        input: shape.input,
        max_len: x.task.max_len,
        d_model: m.d_model,
        layers: m.layers,
        heads: t.heads,
        ffn: t.ffn,
        activation: t.activation,
        dropout: m.dropout as f32,
        norm: m.norm,
        norm_kind: m.norm_kind,
        position: t.position,
        attention,
        pool: m.pool,
        n_classes: shape.n_classes,
        two_tower: shape.paired,
    }
}

/// Builds the spec's model in `store`, sized by `shape` (usually [`DataShape::of`] the
/// dataset).
pub fn build_model<D: EngineDevice>(
    x: &ExperimentSpec,
    shape: DataShape,
    store: &mut ParamStore<D>,
) -> Result<Model> {
    Ok(match model_config(x, shape) {
        ModelConfig::Transformer(config) => Model::Transformer(Transformer::build(config, store)?),
        ModelConfig::Ssm(config) => Model::Ssm(SsmModel::build(config, store)?),
    })
}

/// S4's initialisation: in NPLR mode the checker admits only LegS (rule `nplr-needs-legs`).
fn s4_init(init: spec::SsmInit) -> S4Init {
    match init {
        spec::SsmInit::Lin => S4Init::Lin,
        spec::SsmInit::Inv => S4Init::Inv,
        spec::SsmInit::Legs => S4Init::Legs,
    }
}

/// The engine configuration of the spec's model, sized by `shape`.
pub fn model_config(x: &ExperimentSpec, shape: DataShape) -> ModelConfig {
    let m = &x.model;
    let (kind, activation, glu, group) = match &m.layer {
        LayerSpec::Transformer(t) => {
            return ModelConfig::Transformer(transformer_config(x, t, shape))
        }
        LayerSpec::S4(s) => {
            let init = s4_init(s.init);
            let kind = SsmKind::S4(S4Config {
                d_state: s.d_state,
                mode: s.mode,
                init,
                dt_min: s.dt_min,
                dt_max: s.dt_max,
                channels: s.channels,
                bidirectional: m.bidirectional,
                kernel_len: x.task.max_len,
            });
            (kind, s.activation, s.glu, s.ssm)
        }
        LayerSpec::S4d(s) => {
            let init = match s.init {
                spec::SsmInit::Lin => S4dInit::Lin,
                spec::SsmInit::Inv => S4dInit::Inv,
                spec::SsmInit::Legs => S4dInit::Legs,
            };
            let kind = SsmKind::S4d(S4dConfig {
                d_state: s.d_state,
                init,
                dt_min: s.dt_min,
                dt_max: s.dt_max,
                channels: s.channels,
                bidirectional: m.bidirectional,
            });
            (kind, s.activation, s.glu, s.ssm)
        }
        LayerSpec::Dlr(s) => {
            let kind = SsmKind::Dlr(DlrConfig {
                d_state: s.d_state,
                dt_min: s.dt_min,
                dt_max: s.dt_max,
                channels: spec::DlrSpec::CHANNELS,
                bidirectional: m.bidirectional,
            });
            (kind, s.activation, s.glu, s.ssm)
        }
        LayerSpec::Lru(s) => {
            let kind = SsmKind::Lru(LruConfig {
                d_state: s.d_state,
                r_min: s.r_min,
                r_max: s.r_max,
                max_phase: s.max_phase,
                bidirectional: m.bidirectional,
            });
            (kind, s.activation, s.glu, s.ssm)
        }
        LayerSpec::S5(s) => {
            let kind = SsmKind::S5(S5Config {
                d_state: s.d_state,
                blocks: s.blocks,
                conj_sym: s.conj_sym,
                clip_eigs: s.clip_eigs,
                dt_min: s.dt_min,
                dt_max: s.dt_max,
                bidirectional: m.bidirectional,
            });
            (kind, s.activation, s.glu, s.ssm)
        }
        LayerSpec::Mega(s) => {
            let kind = SsmKind::Mega(MegaConfig {
                d_attin: s.d_attin,
                d_attout: s.d_attout,
                ema_dims: s.ema_dims,
                chunk: s.chunk,
                attention: s.attention_activation,
                ffn_expand: s.ffn_expand,
                bidirectional: m.bidirectional,
                attention_dropout: s.attention_dropout as f32,
                max_len: x.task.max_len,
            });
            // MEGA's block has no activation or GLU after a mixer: its own are fixed.
            (kind, spec::Activation::None, false, s.ssm)
        }
    };
    ModelConfig::Ssm(SsmConfig {
        input: shape.input,
        d_model: m.d_model,
        layers: m.layers,
        dropout: m.dropout as f32,
        norm: m.norm,
        norm_kind: m.norm_kind,
        pool: m.pool,
        n_classes: shape.n_classes,
        two_tower: shape.paired,
        kind,
        activation,
        glu,
        ssm_lr: group.lr as f32,
        ssm_weight_decay: group.weight_decay as f32,
    })
}

pub(crate) fn optimizer_config(phase: &PhaseSpec) -> OptimizerConfig {
    match phase.optimizer {
        spec::Optimizer::AdamW {
            lr,
            weight_decay,
            betas,
            eps,
        } => OptimizerConfig {
            kind: OptimizerKind::AdamW,
            lr: lr as f32,
            betas: (betas.0 as f32, betas.1 as f32),
            eps: eps as f32,
            weight_decay: weight_decay as f32,
        },
        spec::Optimizer::Adam { lr, betas, eps } => OptimizerConfig {
            kind: OptimizerKind::Adam,
            lr: lr as f32,
            betas: (betas.0 as f32, betas.1 as f32),
            eps: eps as f32,
            weight_decay: 0.0,
        },
    }
}

/// The phase's schedule over `total_steps` (a warm-up percentage becomes steps here).
pub fn schedule(phase: &PhaseSpec, total_steps: u64) -> Schedule {
    Schedule {
        kind: phase.schedule.kind,
        warmup_steps: phase.schedule.warmup.steps(total_steps as usize) as u64,
        total_steps,
        min_lr: phase.schedule.min_lr as f32,
    }
}

/// Optimiser steps of a phase with `steps_per_epoch` batches per epoch.
pub(crate) fn total_steps(phase: &PhaseSpec, steps_per_epoch: usize) -> u64 {
    match phase.budget {
        spec::Budget::Epochs(e) => (e * steps_per_epoch) as u64,
        spec::Budget::Steps(s) => s as u64,
    }
}
