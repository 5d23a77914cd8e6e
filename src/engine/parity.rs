//! Device parity: the same tiny model trained for a few steps on two devices, from the same
//! initial weights and the same batches, must give the same losses.
//!
//! The initial weights are drawn on the host from the store's seed (`ParamStore::new`), and
//! the batches are a fixed function of the step, so two runs differ only in how their device
//! computes: the CPU's fused kernels against the composed dfdx ops that CUDA runs (or, with
//! [`crate::engine::ops::with_composed_ops`], against the same composed ops on the CPU). Dropout
//! is off, since the devices' generators differ. `benches/device_parity.rs` runs it;
//! `benches/gpu/check.sh` runs that on a GPU.

use dfdx::prelude::*;

use super::error::Result;
use super::layers::activation::Activation;
use super::layers::encoder::{InputKind, Inputs};
use super::layers::norm::NormKind;
use super::layers::pool::PoolKind;
use super::layers::position::PositionKind;
use super::layers::sequence::NormPlacement;
use super::layers::ssm::s4d::{S4dConfig, S4dInit};
use super::models::{
    SequenceClassifier, SsmConfig, SsmKind, SsmModel, Transformer, TransformerConfig,
};
use super::ops::{AttentionKind, EngineDevice};
use super::optim::{Optimizer, OptimizerConfig};
use super::params::ParamStore;
use super::step::optimise;

/// The two tiny models the parity check trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TinyModel {
    Transformer,
    S4d,
}

impl TinyModel {
    pub const ALL: [TinyModel; 2] = [TinyModel::Transformer, TinyModel::S4d];

    pub fn name(self) -> &'static str {
        match self {
            TinyModel::Transformer => "transformer",
            TinyModel::S4d => "s4d",
        }
    }
}

const BATCH: usize = 4;
const SEQ: usize = 64;
const VOCAB: usize = 16;
const CLASSES: usize = 4;

fn transformer_config() -> TransformerConfig {
    TransformerConfig {
        input: InputKind::Tokens { vocab: VOCAB },
        max_len: SEQ,
        d_model: 32,
        layers: 2,
        heads: 4,
        ffn: 64,
        activation: Activation::Gelu,
        dropout: 0.0,
        norm: NormPlacement::Pre,
        norm_kind: NormKind::Layer,
        position: PositionKind::Sinusoidal,
        attention: AttentionKind::Full,
        pool: PoolKind::Mean,
        n_classes: CLASSES,
        two_tower: false,
    }
}

fn s4d_config() -> SsmConfig {
    SsmConfig {
        input: InputKind::Tokens { vocab: VOCAB },
        d_model: 32,
        layers: 2,
        dropout: 0.0,
        norm: NormPlacement::Pre,
        norm_kind: NormKind::Layer,
        pool: PoolKind::Mean,
        n_classes: CLASSES,
        two_tower: false,
        kind: SsmKind::S4d(S4dConfig {
            d_state: 16,
            init: S4dInit::Lin,
            dt_min: 1e-3,
            dt_max: 1e-1,
            channels: 1,
            bidirectional: true,
        }),
        activation: super::layers::ssm::Activation::Gelu,
        glu: true,
        ssm_lr: 1e-3,
        ssm_weight_decay: 0.0,
    }
}

/// The batch of step `step`: token ids, padded lengths (so masks matter) and labels, all a
/// fixed function of the step. The label is the parity of the first token, something the
/// models can learn, so the losses move.
fn batch(step: usize) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
    let ids: Vec<usize> = (0..BATCH * SEQ)
        .map(|i| (i * 7 + step * 13 + i / 5) % VOCAB)
        .collect();
    let lengths: Vec<usize> = (0..BATCH)
        .map(|b| SEQ - (b * 9 + step) % (SEQ / 2))
        .collect();
    let labels: Vec<usize> = (0..BATCH).map(|b| ids[b * SEQ] % CLASSES).collect();
    (ids, lengths, labels)
}

/// The loss of each of `steps` AdamW steps (lr 3·10⁻³, clip 1) of `model` on `device`, whose
/// weights are drawn from `seed`.
pub fn losses<D: EngineDevice>(
    device: D,
    model: TinyModel,
    steps: usize,
    seed: u64,
) -> Result<Vec<f32>> {
    let mut store = ParamStore::new(device, seed);
    let mut losses = Vec::with_capacity(steps);
    match model {
        TinyModel::Transformer => {
            let m = Transformer::build(transformer_config(), &mut store)?;
            train(&m, &mut store, steps, &mut losses)?;
        }
        TinyModel::S4d => {
            let m = SsmModel::build(s4d_config(), &mut store)?;
            train(&m, &mut store, steps, &mut losses)?;
        }
    }
    Ok(losses)
}

fn train<D: EngineDevice, M: SequenceClassifier>(
    model: &M,
    store: &mut ParamStore<D>,
    steps: usize,
    losses: &mut Vec<f32>,
) -> Result<()> {
    let mut optimizer = Optimizer::new(OptimizerConfig::adamw(3e-3), store)?;
    for step in 0..steps {
        let (ids, lengths, labels) = batch(step);
        let inputs = Inputs::tokens(&ids, &lengths);
        let logits = model.logits::<D, OwnedTape<f32, D>>(store, &inputs, true)?;
        let loss = D::cross_entropy(logits, &labels, &[1.0; BATCH])?;
        losses.push(optimise(loss, store, &mut optimizer, 1.0, Some(1.0))?.loss);
    }
    Ok(())
}

/// How far two loss curves are apart.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// |a − b| / max(|a|, |b|) per step.
    pub relative: Vec<f64>,
    /// The first step over the tolerance, if any.
    pub first_over: Option<usize>,
}

impl Comparison {
    pub fn worst(&self) -> f64 {
        self.relative.iter().cloned().fold(0.0, f64::max)
    }
}

/// Compares two loss curves step by step against a relative tolerance; curves of different
/// lengths fail at the first missing step.
pub fn compare(a: &[f32], b: &[f32], tolerance: f64) -> Comparison {
    let relative: Vec<f64> = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let (x, y) = (x as f64, y as f64);
            let scale = x.abs().max(y.abs());
            if scale == 0.0 {
                0.0
            } else if !(x.is_finite() && y.is_finite()) {
                f64::INFINITY
            } else {
                (x - y).abs() / scale
            }
        })
        .collect();
    let first_over = relative
        .iter()
        .position(|&r| r > tolerance)
        .or((a.len() != b.len()).then_some(relative.len()));
    Comparison {
        relative,
        first_over,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ops::with_composed_ops;

    /// The check `benches/gpu/check.sh` runs on a GPU, here CPU (fused kernels) against CPU
    /// running the composed ops CUDA runs: the same losses for 20 steps within 10⁻³.
    #[test]
    fn fused_and_composed_training_give_the_same_losses() {
        for model in TinyModel::ALL {
            let fused = losses(Cpu::seed_from_u64(0), model, 20, 7).unwrap();
            let composed =
                with_composed_ops(|| losses(Cpu::seed_from_u64(0), model, 20, 7)).unwrap();
            let c = compare(&fused, &composed, 1e-3);
            assert_eq!(c.first_over, None, "{model:?}: {fused:?} vs {composed:?}");
            assert!(fused.iter().all(|l| l.is_finite()));
            assert!(
                fused[19] < fused[0],
                "{model:?} learns, so the comparison covers moving weights: {fused:?}"
            );
        }
    }

    #[test]
    fn comparison_finds_the_first_step_over_the_tolerance() {
        let c = compare(&[1.0, 2.0, 3.0], &[1.0, 2.01, 3.0], 1e-3);
        assert_eq!(c.first_over, Some(1));
        assert!((c.worst() - 0.01 / 2.01).abs() < 1e-6, "{}", c.worst());
        assert_eq!(compare(&[1.0], &[1.0, 2.0], 1e-3).first_over, Some(1));
        assert_eq!(compare(&[f32::NAN], &[1.0], 1e-3).first_over, Some(0));
        assert_eq!(compare(&[0.0], &[0.0], 1e-3).first_over, None);
    }
}
