//! What a batch will cost before anything runs: parameters, training FLOPs, hours on the
//! executor and disk for checkpoints. Hours come from tokens per second measured in run
//! folders of the same model where there are any (a point's own, or another point's with the
//! same model, sequence length, batch and device), otherwise from the FLOPs at an assumed
//! sustained throughput (docs/ESTIMATES.md, "Batches").

use std::collections::HashMap;
use std::path::Path;

use super::plan::Point;
use crate::estimate::estimate;
use crate::spec::{Budget, Device, ExperimentSpec, Generate, PhaseSpec, TaskKind};

/// Sustained training throughput assumed for one CPU core, in FLOP/s, where nothing was
/// measured (dfdx on AVX-512, docs/PERFORMANCE.md: ≈98 GFLOP per Transformer step in ≈1 s on
/// two cores, so ≈50 GFLOP/s per core; taken lower for smaller, less efficient models).
pub(crate) const CPU_CORE_FLOPS: f64 = 25e9;
/// Sustained training throughput assumed for one GPU (an A100/H100-class card at a third of
/// its dense FP32 tensor-core peak), in FLOP/s.
pub(crate) const GPU_FLOPS: f64 = 30e12;
/// A checkpointed phase keeps its best and last weights and a resume state (weights and two
/// Adam moments): five copies of the weights.
const CHECKPOINT_COPIES: u64 = 5;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PointCost {
    pub params: u64,
    /// Training FLOPs of both phases.
    pub flops: f64,
    pub steps: u64,
    /// Estimated seconds of training.
    pub seconds: f64,
    /// Whether `seconds` comes from a measured speed.
    pub measured: bool,
    pub checkpoint_bytes: u64,
}

/// Training examples of a task's data: the generated count, or the LRA release's training
/// split (docs/METHOD.md, "Training set sizes"), after `train_fraction` and `train_limit`.
pub(crate) fn training_examples(x: &ExperimentSpec) -> usize {
    let t = &x.task;
    let full = match t.generate {
        Some(Generate::ListOps { train, .. }) => train,
        // The Pathfinder split: 80% training.
        Some(Generate::Pathfinder { n, .. }) => n * 8 / 10,
        None => match t.kind {
            TaskKind::ListOps => 96_000,
            TaskKind::Text => 25_000,
            TaskKind::Retrieval => 147_086,
            TaskKind::Image => (50_000.0 * (1.0 - t.val_fraction.unwrap_or(0.1))) as usize,
            TaskKind::Pathfinder | TaskKind::PathX => 160_000,
        },
    };
    let fraction = (full as f64 * t.train_fraction.unwrap_or(1.0)) as usize;
    t.train_limit.map_or(fraction, |limit| fraction.min(limit))
}

/// Optimiser steps of a phase over `examples` training examples.
pub(crate) fn phase_steps(phase: &PhaseSpec, examples: usize) -> u64 {
    match phase.budget {
        Budget::Steps(s) => s as u64,
        Budget::Epochs(e) => (e * examples.div_ceil(phase.batch.max(1))) as u64,
    }
}

/// Tokens one training step of `phase` reads.
fn tokens_per_step(x: &ExperimentSpec, phase: &PhaseSpec) -> f64 {
    (phase.batch * x.task.max_len * x.task.documents()) as f64
}

/// Measured training speeds (tokens/s) by model, length, batch and device, from the run
/// folders of the points.
pub struct Speeds {
    by_key: HashMap<String, f64>,
}

fn speed_key(x: &ExperimentSpec) -> String {
    serde_json::json!({
        "model": x.model,
        "max_len": x.task.max_len,
        "batch": x.finetune.batch,
        "device": x.device,
        "threads": x.threads,
    })
    .to_string()
}

impl Speeds {
    pub fn measure(points: &[Point]) -> Self {
        let mut by_key = HashMap::new();
        for point in points {
            if let Some(speed) = median_speed(&point.run_dir) {
                by_key.entry(speed_key(&point.spec)).or_insert(speed);
            }
        }
        Speeds { by_key }
    }

    fn get(&self, x: &ExperimentSpec) -> Option<f64> {
        self.by_key.get(&speed_key(x)).copied()
    }
}

/// The median training tokens/s a run folder's `metrics.jsonl` records.
fn median_speed(run: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).ok()?;
    let mut speeds: Vec<f64> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("tokens_per_s").and_then(serde_json::Value::as_f64))
        .filter(|s| s.is_finite() && *s > 0.0)
        .collect();
    if speeds.is_empty() {
        return None;
    }
    speeds.sort_by(f64::total_cmp);
    Some(speeds[speeds.len() / 2])
}

/// The cost of one point; `pretrains` is false for a point that reuses another's pretraining.
pub fn of(x: &ExperimentSpec, pretrains: bool, threads: usize, speeds: &Speeds) -> PointCost {
    let cost = estimate(x, None);
    let examples = training_examples(x);
    let mut phases: Vec<(&PhaseSpec, f64)> = vec![(&x.finetune, cost.flops_per_step)];
    if let (Some(pretrain), true) = (&x.pretrain, pretrains) {
        // The pretraining model costs about what the fine-tuning one does per token; scale by
        // the batch.
        let per_example = cost.flops_per_step / x.finetune.batch.max(1) as f64;
        phases.push((&pretrain.phase, per_example * pretrain.phase.batch as f64));
    }
    let mut point = PointCost {
        params: cost.params,
        ..PointCost::default()
    };
    point.measured = speeds.get(x).is_some();
    for (phase, flops_per_step) in phases {
        let steps = phase_steps(phase, examples);
        point.steps += steps;
        point.flops += flops_per_step * steps as f64;
        point.seconds += seconds(x, phase, flops_per_step, steps, threads, speeds);
        point.checkpoint_bytes += CHECKPOINT_COPIES * cost.params * 4;
    }
    point
}

/// Seconds of `steps` training steps of `phase`: at the speed measured for this model where
/// there is one, otherwise at the assumed throughput of the device.
fn seconds(
    x: &ExperimentSpec,
    phase: &PhaseSpec,
    flops_per_step: f64,
    steps: u64,
    threads: usize,
    speeds: &Speeds,
) -> f64 {
    let throughput = match x.device {
        Device::Cpu => CPU_CORE_FLOPS * threads.max(1) as f64,
        Device::Cuda(_) => GPU_FLOPS,
    };
    match speeds.get(x) {
        Some(tokens_per_s) => steps as f64 * tokens_per_step(x, phase) / tokens_per_s,
        None => flops_per_step * steps as f64 / throughput,
    }
}

/// Estimated seconds of one fine-tuning epoch (training only), and whether a measured speed
/// gave it: what `lra batch plan` sets beside the sources' reported times per epoch.
pub(crate) fn epoch_seconds(x: &ExperimentSpec, threads: usize, speeds: &Speeds) -> (f64, bool) {
    let steps = training_examples(x).div_ceil(x.finetune.batch.max(1)) as u64;
    let flops_per_step = estimate(x, None).flops_per_step;
    let measured = speeds.get(x).is_some();
    (
        seconds(x, &x.finetune, flops_per_step, steps, threads, speeds),
        measured,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_count_whole_batches() {
        let text = "experiment \"x\" { task listops { generate { train 100 val 10 test 10 } } model s4d { layers 1 d_model 8 } finetune { epochs 3 batch 32 } }";
        let checked = crate::check::check_source(
            Path::new("x.lra"),
            text.into(),
            &crate::check::rules::test_support::context(),
        );
        let x = &checked.spec.expect("a valid spec").experiments[0];
        assert_eq!(training_examples(x), 100);
        assert_eq!(phase_steps(&x.finetune, 100), 3 * 4);
        let cost = of(
            x,
            true,
            2,
            &Speeds {
                by_key: HashMap::new(),
            },
        );
        assert_eq!(cost.steps, 12);
        assert!(!cost.measured);
        assert!((cost.seconds - cost.flops / (2.0 * CPU_CORE_FLOPS)).abs() < 1e-9);
        // One epoch is a third of the three epochs' time.
        let (epoch, measured) = epoch_seconds(
            x,
            2,
            &Speeds {
                by_key: HashMap::new(),
            },
        );
        assert!(!measured);
        assert!(
            (3.0 * epoch - cost.seconds).abs() < 1e-9,
            "{epoch} {}",
            cost.seconds
        );
    }
}
