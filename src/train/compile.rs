//! Spec → the configurations of the data layer and the engine. Infallible except for model
//! kinds whose engine is not built yet.

use super::error::{Result, RunError};
use super::objective::{Corruption, Denoiser};
use crate::data::{self, DataConfig, Dataset};
use crate::engine::layers::encoder::InputKind;
use crate::engine::layers::mega::chunked_attention::AttentionFunction;
use crate::engine::layers::mega::MegaConfig;
use crate::engine::layers::norm::NormKind;
use crate::engine::layers::pool::PoolKind;
use crate::engine::layers::position::PositionKind;
use crate::engine::layers::sequence::NormPlacement;
use crate::engine::layers::ssm::dlr::DlrConfig;
use crate::engine::layers::ssm::lru::LruConfig;
use crate::engine::layers::ssm::s4::{S4Config, S4Init, S4Mode};
use crate::engine::layers::ssm::s4d::{S4dConfig, S4dInit};
use crate::engine::layers::ssm::s5::S5Config;
use crate::engine::layers::ssm::Activation;
use crate::engine::models::transformer::TransformerConfig;
use crate::engine::models::{Model, SsmConfig, SsmKind, SsmModel, Transformer};
use crate::engine::ops::AttentionKind;
use crate::engine::ops::EngineDevice;
use crate::engine::optim::{OptimizerConfig, OptimizerKind};
use crate::engine::params::ParamStore;
use crate::engine::schedule::{Schedule, ScheduleKind};
use crate::spec::{self, ExperimentSpec, LayerSpec, PhaseSpec};

pub fn data_config(x: &ExperimentSpec) -> DataConfig {
    let t = &x.task;
    let task = match t.kind {
        spec::TaskKind::ListOps => data::Task::ListOps,
        spec::TaskKind::Text => data::Task::Text,
        spec::TaskKind::Retrieval => data::Task::Retrieval,
        spec::TaskKind::Image => data::Task::Image,
        spec::TaskKind::Pathfinder => data::Task::Pathfinder,
        spec::TaskKind::PathX => data::Task::PathX,
    };
    let mut cfg = DataConfig::preset(task, &t.data);
    cfg.max_len = t.max_len;
    if let Some(tokenizer) = t.tokenizer {
        cfg.tokenizer = match tokenizer {
            spec::Tokenizer::Char => data::Tokenizer::Char,
            spec::Tokenizer::Byte => data::Tokenizer::Byte,
        };
    }
    if let Some(min_freq) = t.min_freq {
        cfg.min_freq = min_freq;
    }
    if let Some(encoding) = t.encoding {
        cfg.encoding = match encoding {
            spec::Encoding::Tokens => data::Encoding::Tokens,
            spec::Encoding::Continuous => data::Encoding::Continuous,
        };
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
        DataShape {
            input: input_kind(!x.task.is_continuous(), x.task.nominal_vocab(), role),
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

pub fn transformer_config(x: &ExperimentSpec, shape: DataShape) -> Result<TransformerConfig> {
    let m = &x.model;
    let LayerSpec::Transformer(t) = &m.layer else {
        return Err(RunError::UnsupportedModel {
            kind: m.kind.name(),
        });
    };
    if t.activation != spec::Activation::Gelu {
        return Err(RunError::Unsupported {
            what: format!("activation {:?}", t.activation).to_lowercase(),
            why: "the Transformer's feed-forward uses GELU".into(),
        });
    }
    let attention = match (t.attention, m.bidirectional) {
        (spec::Attention::Full, true) => AttentionKind::Full,
        (spec::Attention::Full, false) => AttentionKind::Causal,
        (spec::Attention::Local { window }, bidirectional) => AttentionKind::Local {
            window,
            causal: !bidirectional,
        },
    };
    Ok(TransformerConfig {
        input: shape.input,
        max_len: x.task.max_len,
        d_model: m.d_model,
        layers: m.layers,
        heads: t.heads,
        ffn: t.ffn,
        dropout: m.dropout as f32,
        norm: norm_placement(m.norm),
        norm_kind: norm_kind(m.norm_kind),
        position: match t.position {
            spec::Position::None => PositionKind::None,
            spec::Position::Learned => PositionKind::Learned,
            spec::Position::Sinusoidal => PositionKind::Sinusoidal,
            spec::Position::Rotary => PositionKind::Rotary,
        },
        attention,
        pool: pool_kind(m.pool),
        n_classes: shape.n_classes,
        two_tower: shape.paired,
    })
}

/// Builds the spec's model in `store`, sized by `shape` (usually [`DataShape::of`] the
/// dataset).
pub fn build_model<D: EngineDevice>(
    x: &ExperimentSpec,
    shape: DataShape,
    store: &mut ParamStore<D>,
) -> Result<Model> {
    match &x.model.layer {
        LayerSpec::Transformer(_) => Ok(Model::Transformer(Transformer::build(
            transformer_config(x, shape)?,
            store,
        )?)),
        LayerSpec::S4(_)
        | LayerSpec::S4d(_)
        | LayerSpec::Dlr(_)
        | LayerSpec::Lru(_)
        | LayerSpec::S5(_)
        | LayerSpec::Mega(_) => Ok(Model::Ssm(SsmModel::build(ssm_config(x, shape)?, store)?)),
    }
}

fn norm_placement(norm: spec::NormPlace) -> NormPlacement {
    match norm {
        spec::NormPlace::Pre => NormPlacement::Pre,
        spec::NormPlace::Post => NormPlacement::Post,
    }
}

fn norm_kind(kind: spec::NormKind) -> NormKind {
    match kind {
        spec::NormKind::Layer => NormKind::Layer,
        spec::NormKind::Batch => NormKind::Batch,
    }
}

fn pool_kind(pool: spec::Pool) -> PoolKind {
    match pool {
        spec::Pool::Mean => PoolKind::Mean,
        spec::Pool::Max => PoolKind::Max,
        spec::Pool::Last => PoolKind::Last,
        spec::Pool::First => PoolKind::First,
    }
}

fn ssm_activation(activation: spec::Activation) -> Activation {
    match activation {
        spec::Activation::Gelu => Activation::Gelu,
        spec::Activation::Relu => Activation::Relu,
        spec::Activation::Silu => Activation::Silu,
        spec::Activation::None => Activation::None,
    }
}

/// S4's structure and initialisation: LegS in either mode, S4D's lin and inv in diag mode.
fn s4_mode_and_init(s: &spec::SsmSpec) -> Result<(S4Mode, S4Init)> {
    let mode = match s.mode {
        spec::SsmMode::Nplr => S4Mode::Nplr,
        spec::SsmMode::Diag => S4Mode::Diag,
    };
    let init = match (s.init, mode) {
        (spec::SsmInit::Legs, _) => S4Init::Legs,
        (spec::SsmInit::Lin, S4Mode::Diag) => S4Init::Lin,
        (spec::SsmInit::Inv, S4Mode::Diag) => S4Init::Inv,
        (other, _) => {
            return Err(RunError::Unsupported {
                what: format!("s4 init {other:?} with mode {:?}", s.mode).to_lowercase(),
                why: "S4 is built with init legs (mode nplr or diag), or init lin or inv with \
                      mode diag"
                    .into(),
            })
        }
    };
    Ok((mode, init))
}

/// The configuration of a state-space model (every kind but the Transformer).
pub fn ssm_config(x: &ExperimentSpec, shape: DataShape) -> Result<SsmConfig> {
    let m = &x.model;
    let (kind, activation, glu, group) = match &m.layer {
        LayerSpec::S4(s) => {
            let (mode, init) = s4_mode_and_init(s)?;
            let kind = SsmKind::S4(S4Config {
                d_state: s.d_state,
                mode,
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
                other => {
                    return Err(RunError::Unsupported {
                        what: format!("s4d init {other:?}").to_lowercase(),
                        why: "S4D is built with init lin, inv or legs".into(),
                    })
                }
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
                channels: s.channels,
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
                attention: match s.attention_activation {
                    spec::AttentionActivation::Softmax => AttentionFunction::Softmax,
                    spec::AttentionActivation::Laplace => AttentionFunction::Laplace,
                },
                ffn_expand: s.ffn_expand,
                bidirectional: m.bidirectional,
                attention_dropout: s.attention_dropout as f32,
                max_len: x.task.max_len,
            });
            // MEGA's block has no activation or GLU after a mixer: its own are fixed.
            (kind, spec::Activation::None, false, s.ssm)
        }
        _ => {
            return Err(RunError::UnsupportedModel {
                kind: m.kind.name(),
            })
        }
    };
    Ok(SsmConfig {
        input: shape.input,
        d_model: m.d_model,
        layers: m.layers,
        dropout: m.dropout as f32,
        norm: norm_placement(m.norm),
        norm_kind: norm_kind(m.norm_kind),
        pool: pool_kind(m.pool),
        n_classes: shape.n_classes,
        two_tower: shape.paired,
        kind,
        activation: ssm_activation(activation),
        glu,
        ssm_lr: group.lr as f32,
        ssm_weight_decay: group.weight_decay as f32,
    })
}

pub fn optimizer_config(phase: &PhaseSpec) -> OptimizerConfig {
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
        kind: match phase.schedule.kind {
            spec::ScheduleKind::Constant => ScheduleKind::Constant,
            spec::ScheduleKind::Cosine => ScheduleKind::Cosine,
            spec::ScheduleKind::Linear => ScheduleKind::Linear,
        },
        warmup_steps: phase.schedule.warmup.steps(total_steps as usize) as u64,
        total_steps,
        min_lr: phase.schedule.min_lr as f32,
    }
}

/// Optimiser steps of a phase with `steps_per_epoch` batches per epoch.
pub fn total_steps(phase: &PhaseSpec, steps_per_epoch: usize) -> u64 {
    match phase.budget {
        spec::Budget::Epochs(e) => (e * steps_per_epoch) as u64,
        spec::Budget::Steps(s) => s as u64,
    }
}
