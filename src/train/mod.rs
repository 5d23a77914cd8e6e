//! Phase 3: a checked experiment → a trained model, its run directory and its test result.
//! Entry point: [`run`].

pub mod compile;
pub mod error;
pub mod eval;
pub mod masking;
pub mod metrics;
pub mod model;
pub mod objective;
pub mod phase;
pub mod prepare;
pub mod progress;
pub mod rundir;
pub mod state;
pub mod transfer;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use dfdx::prelude::*;
use serde::{Deserialize, Serialize};

pub use error::{Result, RunError};

use crate::engine::checkpoint::{self, LoadFilter};
use crate::engine::layers::heads::PredictionHead;
use crate::engine::layers::Scope;
use crate::engine::ops::EngineDevice;
use crate::engine::params::ParamStore;
use crate::spec::{Device, ExperimentSpec};
use compile::{DataShape, Role};
use metrics::{MetricsLog, Record};
use objective::{Corruption, Denoiser, Objective};
use phase::{train_phase, PhaseContext};
use rundir::RunDir;

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Overrides the spec's runs folder.
    pub out: Option<PathBuf>,
    /// Overrides the spec's device.
    pub device: Option<Device>,
    /// Continue the run's folder where a killed run stopped.
    pub resume: bool,
    /// No progress bar, no log lines.
    pub quiet: bool,
    /// The spec file as the user named it, and its text (kept in the run folder).
    pub spec_path: String,
    pub source: String,
    /// Stop as Ctrl-C would after this many steps of a phase (to test resumption).
    pub stop_at: Option<u64>,
    /// Fine-tune from the pretraining of this finished run folder instead of pretraining.
    pub from_pretrained: Option<PathBuf>,
    /// Evaluate on at most this many validation and test examples (smoke runs).
    pub eval_limit: Option<usize>,
    /// Draw the progress bars among those of other runs in flight (`lra run --jobs`), each
    /// labelled with its experiment.
    pub bars: Option<indicatif::MultiProgress>,
}

/// `summary.json`: what a finished run reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub experiment: String,
    pub run_dir: PathBuf,
    pub parameters: usize,
    /// The pretraining checkpoint fine-tuning started from.
    pub pretrained_from: Option<PathBuf>,
    pub finetune_steps: u64,
    /// The selected checkpoint's validation metric and the step it was taken at.
    pub selected_step: Option<u64>,
    pub selected_value: Option<f64>,
    pub test_loss: f64,
    pub test_accuracy: f64,
    pub test_examples: usize,
    pub seconds: f64,
}

/// Trains `x` and tests its selected checkpoint. A finished run folder is not trained again:
/// its summary is returned.
pub fn run(x: &ExperimentSpec, options: &RunOptions, interrupt: &AtomicBool) -> Result<RunSummary> {
    match options.device.unwrap_or(x.device) {
        Device::Cpu => run_on(Cpu::seed_from_u64(x.seed), x, options, interrupt),
        #[cfg(feature = "cuda")]
        Device::Cuda(ordinal) => {
            let device =
                Cuda::try_build(ordinal, x.seed).map_err(crate::engine::EngineError::device)?;
            run_on(device, x, options, interrupt)
        }
        #[cfg(not(feature = "cuda"))]
        Device::Cuda(_) => Err(RunError::NoCuda),
    }
}

/// A line for the user on stderr, above the progress bars of runs in flight.
fn note(options: &RunOptions, line: String) {
    if options.quiet {
        return;
    }
    // Only a terminal draws the bars; elsewhere the line goes out as it is.
    match options.bars.as_ref().filter(|bars| !bars.is_hidden()) {
        Some(bars) => {
            let _ = bars.println(&line);
        }
        None => eprintln!("{line}"),
    }
}

fn run_on<D: EngineDevice>(
    device: D,
    x: &ExperimentSpec,
    options: &RunOptions,
    interrupt: &AtomicBool,
) -> Result<RunSummary> {
    let started = Instant::now();
    let out = options.out.clone().unwrap_or_else(|| x.out.clone());
    let pretrained_from = match &options.from_pretrained {
        Some(run) => Some(pretrained_checkpoint(run)?),
        None => None,
    };
    let origin = pretrained_from
        .as_ref()
        .map_or(String::new(), |p| p.display().to_string());
    let dir = RunDir::new(&out, x, &origin);
    let summary_path = dir.file("summary.json");
    if summary_path.exists() {
        if let Some(summary) = std::fs::read_to_string(&summary_path)
            .ok()
            .and_then(|s| serde_json::from_str::<RunSummary>(&s).ok())
        {
            return Ok(summary);
        }
    }
    if !options.resume && dir.path.exists() {
        // A fresh start: what an earlier, unfinished attempt left is replaced.
        std::fs::remove_dir_all(&dir.path).map_err(error::io(&dir.path))?;
    }
    dir.create()?;
    dir.record_spec(&options.source, x, options.resume)?;

    if prepare::ensure_data(x)? {
        note(
            options,
            format!(
                "generated {} as its `generate` section says",
                x.task.data.display()
            ),
        );
    }
    let mut dataset = crate::data::load(&compile::data_config(x), Some(&dir.vocab()))?;
    if let Some(limit) = options.eval_limit {
        dataset.val.indices.truncate(limit);
        dataset.test.indices.truncate(limit);
    }
    let metrics = MetricsLog::new(&dir.metrics());
    let phase = |name: &'static str, spec| PhaseContext {
        name,
        spec,
        seed: x.seed,
        dir: &dir,
        metrics: &metrics,
        quiet: options.quiet,
        resume: options.resume,
        interrupt,
        spec_path: options.spec_path.clone(),
        stop_at: options.stop_at,
        bars: options.bars.as_ref(),
        experiment: &x.name,
    };

    // Self-pretraining on the training split, unless a finished one is reused.
    let pretrained = match (&x.pretrain, pretrained_from) {
        (_, Some(path)) => Some(path),
        (Some(pretrain), None) => {
            let corruption = Corruption::from(pretrain.objective);
            let mut store = ParamStore::new(device.clone(), x.seed);
            let model = compile::build_model(
                x,
                DataShape::of(&dataset, Role::Pretrain(corruption)),
                &mut store,
            )?;
            let outputs = Denoiser::outputs(pretrain.loss, dataset.input, dataset.vocab.len());
            let head = PredictionHead::build(
                Scope::root(&mut store).sub("pretrain_head"),
                model.d_model(),
                outputs,
            )?;
            let objective = Objective::Denoise(Denoiser {
                corruption,
                loss: pretrain.loss,
                head,
                mask_id: dataset.vocab.mask(),
                input: dataset.input,
            });
            let outcome = train_phase(
                &phase("pretrain", &pretrain.phase),
                &objective,
                &model,
                &mut store,
                &dataset,
            )?;
            Some(outcome.selected)
        }
        (None, None) => None,
    };

    let mut store = ParamStore::new(device, x.seed);
    let model = compile::build_model(x, DataShape::of(&dataset, Role::Finetune), &mut store)?;
    if let Some(path) = &pretrained {
        let count = transfer::load_pretrained(path, &mut store)?;
        note(
            options,
            format!(
                "fine-tuning from {} ({count} tensors transferred)",
                path.display()
            ),
        );
    }
    let objective = Objective::Classify;
    let outcome = train_phase(
        &phase("finetune", &x.finetune),
        &objective,
        &model,
        &mut store,
        &dataset,
    )?;

    checkpoint::load(&outcome.selected, &mut store, None, LoadFilter::All)?;
    let test = eval::evaluate(
        &objective,
        &model,
        &store,
        &dataset,
        &dataset.test,
        x.finetune.batch,
    )?;
    metrics.append(&Record {
        phase: "finetune".into(),
        split: "test".into(),
        step: outcome.best.map_or(outcome.steps, |b| b.step),
        epoch: 0.0,
        loss: test.loss,
        accuracy: test.accuracy,
        mae: None,
        r2: None,
        lr: None,
        tokens_per_s: None,
    })?;
    let summary = RunSummary {
        experiment: x.name.clone(),
        run_dir: dir.path.clone(),
        parameters: store.parameter_count(),
        pretrained_from: pretrained,
        finetune_steps: outcome.steps,
        selected_step: outcome.best.map(|b| b.step),
        selected_value: outcome.best.map(|b| b.value),
        test_loss: test.loss,
        test_accuracy: test.accuracy,
        test_examples: test.examples,
        seconds: started.elapsed().as_secs_f64(),
    };
    dir.write(
        "summary.json",
        serde_json::to_string_pretty(&summary)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    Ok(summary)
}

/// The pretraining checkpoint a finished run folder selected.
fn pretrained_checkpoint(run: &std::path::Path) -> Result<PathBuf> {
    let state = state::PhaseState::load(
        &RunDir {
            path: run.to_path_buf(),
        },
        "pretrain",
    )?;
    match state {
        Some(state) if state.finished => {
            let dir = RunDir {
                path: run.to_path_buf(),
            };
            let best = dir.checkpoint("pretrain", "best");
            Ok(if best.exists() {
                best
            } else {
                dir.checkpoint("pretrain", "last")
            })
        }
        _ => Err(RunError::NoPretraining {
            path: run.to_path_buf(),
        }),
    }
}
