//! Phase 3: a checked experiment → a trained model, its run directory and its test result.
//! Entry point: [`run`].

pub mod compile;
pub mod error;
pub mod eval;
pub mod metrics;
pub mod model;
pub mod phase;
pub mod prepare;
pub mod progress;
pub mod rundir;
pub mod state;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use dfdx::prelude::*;
use serde::{Deserialize, Serialize};

pub use error::{Result, RunError};

use crate::engine::checkpoint::{self, LoadFilter};
use crate::engine::ops::EngineDevice;
use crate::engine::params::ParamStore;
use crate::spec::{Device, ExperimentSpec};
use metrics::{MetricsLog, Record};
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
    /// Stop as Ctrl-C would after this many fine-tuning steps (to test resumption).
    pub stop_at: Option<u64>,
}

/// `summary.json`: what a finished run reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub experiment: String,
    pub run_dir: PathBuf,
    pub parameters: usize,
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

fn run_on<D: EngineDevice>(
    device: D,
    x: &ExperimentSpec,
    options: &RunOptions,
    interrupt: &AtomicBool,
) -> Result<RunSummary> {
    let started = Instant::now();
    let out = options.out.clone().unwrap_or_else(|| x.out.clone());
    let dir = RunDir::new(&out, x);
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
    if x.pretrain.is_some() {
        return Err(RunError::Unsupported {
            what: "`pretrain`".into(),
            why: "self-pretraining lands with the objectives of the SPT issue; remove the section to train from scratch".into(),
        });
    }

    if prepare::ensure_data(x)? && !options.quiet {
        eprintln!(
            "generated {} as its `generate` section says",
            x.task.data.display()
        );
    }
    let dataset = crate::data::load(&compile::data_config(x), Some(&dir.vocab()))?;
    let mut store = ParamStore::new(device, x.seed);
    let model = compile::build_model(x, &dataset, &mut store)?;
    let metrics = MetricsLog::new(&dir.metrics());

    let context = PhaseContext {
        name: "finetune",
        spec: &x.finetune,
        seed: x.seed,
        dir: &dir,
        metrics: &metrics,
        quiet: options.quiet,
        resume: options.resume,
        interrupt,
        spec_path: options.spec_path.clone(),
        stop_at: options.stop_at,
    };
    let outcome = train_phase(&context, &model, &mut store, &dataset)?;

    checkpoint::load(&outcome.selected, &mut store, None, LoadFilter::All)?;
    let test = eval::evaluate(&model, &store, &dataset, &dataset.test, x.finetune.batch)?;
    metrics.append(&Record {
        phase: "finetune".into(),
        split: "test".into(),
        step: outcome.best.map_or(outcome.steps, |b| b.step),
        epoch: 0.0,
        loss: test.loss,
        accuracy: test.accuracy,
        lr: None,
        tokens_per_s: None,
    })?;
    let summary = RunSummary {
        experiment: x.name.clone(),
        run_dir: dir.path.clone(),
        parameters: store.parameter_count(),
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
