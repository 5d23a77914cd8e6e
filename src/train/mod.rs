//! Phase 3: a checked experiment → a trained model, its run directory and its test result.
//! Entry point: [`run`].

pub mod compile;
pub mod cuda;
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

use crate::data::Dataset;
use crate::engine::checkpoint::{self, LoadFilter};
use crate::engine::layers::heads::PredictionHead;
use crate::engine::layers::Scope;
use crate::engine::models::Model;
use crate::engine::ops::EngineDevice;
use crate::engine::params::ParamStore;
use crate::spec::PhaseSpec;
use crate::spec::{Device, ExperimentSpec};
use compile::{DataShape, Role};
use metrics::{MetricsLog, Record};
use objective::{Corruption, Denoiser, Objective};
use phase::{train_phase, PhaseContext, PhaseOutcome};
use rundir::{Opened, RunDir, Start};

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Overrides the spec's runs folder.
    pub out: Option<PathBuf>,
    /// Overrides the spec's device.
    pub device: Option<Device>,
    /// Continue the run's folder where a killed run stopped.
    pub resume: bool,
    /// Move an existing run folder aside and start over.
    pub restart: bool,
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

impl RunOptions {
    /// What to do with a run folder that exists.
    fn start(&self) -> Start {
        match (self.restart, self.resume) {
            (true, _) => Start::Restart,
            (false, true) => Start::Resume,
            (false, false) => Start::New,
        }
    }
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
    /// The lra that wrote the run (the results index refuses folders of a newer one).
    #[serde(default)]
    pub lra_version: Option<String>,
}

/// Trains `x` and tests its selected checkpoint. A finished run folder is not trained again:
/// its summary is returned.
pub fn run(x: &ExperimentSpec, options: &RunOptions, interrupt: &AtomicBool) -> Result<RunSummary> {
    match options.device.unwrap_or(x.device) {
        Device::Cpu => run_on(Cpu::seed_from_u64(x.seed), x, options, interrupt),
        #[cfg(feature = "cuda")]
        Device::Cuda(ordinal) => run_on(cuda::open(ordinal, x.seed)?, x, options, interrupt),
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

/// The run on one device: its folder opened (locked, finished, resumed or refused), then the
/// phase sequence pretrain → transfer → fine-tune → test, then the summary.
fn run_on<D: EngineDevice>(
    device: D,
    x: &ExperimentSpec,
    options: &RunOptions,
    interrupt: &AtomicBool,
) -> Result<RunSummary> {
    let started = Instant::now();
    let pretrained_from = match &options.from_pretrained {
        Some(run) => Some(pretrained_checkpoint(run)?),
        None => None,
    };
    let out = options.out.clone().unwrap_or_else(|| x.out.clone());
    let dir = RunDir::new(&out, x, options.from_pretrained.as_deref());
    let _lock = match dir.open(options.start(), &options.spec_path, |line| {
        note(options, line)
    })? {
        Opened::Finished(summary) => return Ok(summary),
        Opened::Ready(lock) => lock,
    };
    let result = train_in(
        device,
        x,
        options,
        interrupt,
        &dir,
        pretrained_from,
        started,
    );
    // A failure is recorded in the folder for `lra batch status` and the results index; an
    // interrupted run is not a failure, and a run that ends well clears an earlier one.
    match &result {
        Err(RunError::Interrupted { .. }) => {}
        Err(e) => dir.record_failure(e),
        Ok(_) => dir.clear_failure(),
    }
    result
}

/// The phase sequence pretrain → fine-tune → test in a locked run folder, then the summary.
fn train_in<D: EngineDevice>(
    device: D,
    x: &ExperimentSpec,
    options: &RunOptions,
    interrupt: &AtomicBool,
    dir: &RunDir,
    pretrained_from: Option<PathBuf>,
    started: Instant,
) -> Result<RunSummary> {
    dir.record_spec(&options.source, x, options.resume)?;
    let dataset = load_dataset(x, options, dir)?;
    for warning in &dataset.warnings {
        note(options, format!("warning: {warning}"));
    }
    let run = Run {
        x,
        options,
        interrupt,
        dir,
        metrics: MetricsLog::new(&dir.metrics()),
        dataset: &dataset,
    };
    let pretrained = match pretrained_from {
        Some(path) => Some(path),
        None => run.pretrain(device.clone())?,
    };
    let mut finetuned = run.finetune(device, pretrained.as_deref())?;
    let test = run.test(&mut finetuned)?;
    let summary = RunSummary {
        experiment: x.name.clone(),
        run_dir: dir.path.clone(),
        parameters: finetuned.store.parameter_count(),
        pretrained_from: pretrained,
        finetune_steps: finetuned.outcome.steps,
        selected_step: finetuned.outcome.best.map(|b| b.step),
        selected_value: finetuned.outcome.best.map(|b| b.value),
        test_loss: test.loss,
        test_accuracy: test.accuracy,
        test_examples: test.examples,
        seconds: started.elapsed().as_secs_f64(),
        lra_version: Some(env!("CARGO_PKG_VERSION").to_string()),
    };
    let json = serde_json::to_string_pretty(&summary).unwrap_or_default();
    dir.write("summary.json", json.as_bytes())?;
    Ok(summary)
}

/// The task's data (generated first when the spec says how), with the run's vocabulary.
fn load_dataset(x: &ExperimentSpec, options: &RunOptions, dir: &RunDir) -> Result<Dataset> {
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
    Ok(dataset)
}

/// One run in progress: the phase sequence pretrain → fine-tune → test.
struct Run<'a> {
    x: &'a ExperimentSpec,
    options: &'a RunOptions,
    interrupt: &'a AtomicBool,
    dir: &'a RunDir,
    metrics: MetricsLog,
    dataset: &'a Dataset,
}

/// The fine-tuned model and what its phase selected.
struct Finetuned<D: EngineDevice> {
    model: Model,
    store: ParamStore<D>,
    outcome: PhaseOutcome,
}

impl Run<'_> {
    fn phase<'p>(&'p self, name: &'static str, spec: &'p PhaseSpec) -> PhaseContext<'p> {
        PhaseContext {
            name,
            spec,
            seed: self.x.seed,
            dir: self.dir,
            metrics: &self.metrics,
            quiet: self.options.quiet,
            resume: self.options.resume,
            interrupt: self.interrupt,
            spec_path: self.options.spec_path.clone(),
            stop_at: self.options.stop_at,
            bars: self.options.bars.as_ref(),
            experiment: &self.x.name,
        }
    }

    /// Self-pretraining on the training split, when the spec has it: the checkpoint it
    /// selected.
    fn pretrain<D: EngineDevice>(&self, device: D) -> Result<Option<PathBuf>> {
        let Some(pretrain) = &self.x.pretrain else {
            return Ok(None);
        };
        let (x, dataset) = (self.x, self.dataset);
        let corruption = Corruption::from(pretrain.objective);
        let mut store = ParamStore::new(device, x.seed);
        let model = compile::build_model(
            x,
            DataShape::of(dataset, Role::Pretrain(corruption)),
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
        let context = self.phase("pretrain", &pretrain.phase);
        let outcome = train_phase(&context, &objective, &model, &mut store, dataset)?;
        Ok(Some(outcome.selected))
    }

    /// Fine-tuning on the task, from the pretrained checkpoint when there is one.
    fn finetune<D: EngineDevice>(
        &self,
        device: D,
        pretrained: Option<&std::path::Path>,
    ) -> Result<Finetuned<D>> {
        let mut store = ParamStore::new(device, self.x.seed);
        let shape = DataShape::of(self.dataset, Role::Finetune);
        let model = compile::build_model(self.x, shape, &mut store)?;
        if let Some(path) = pretrained {
            let count = transfer::load_pretrained(path, &mut store)?;
            // Shapes are checked tensor by tensor above (naming the first that differs);
            // settings that keep the shapes but change the weights' meaning, here.
            if let Some(run) = &self.options.from_pretrained {
                transfer::require_same_model(run, self.x)?;
            }
            note(
                self.options,
                format!(
                    "fine-tuning from {} ({count} tensors transferred)",
                    path.display()
                ),
            );
        }
        let context = self.phase("finetune", &self.x.finetune);
        let outcome = train_phase(
            &context,
            &Objective::Classify,
            &model,
            &mut store,
            self.dataset,
        )?;
        Ok(Finetuned {
            model,
            store,
            outcome,
        })
    }

    /// Tests the selected checkpoint and logs the result (once, however often a killed run
    /// is resumed).
    fn test<D: EngineDevice>(&self, finetuned: &mut Finetuned<D>) -> Result<eval::Evaluation> {
        checkpoint::load(
            &finetuned.outcome.selected,
            &mut finetuned.store,
            None,
            LoadFilter::All,
        )?;
        let test = eval::evaluate(
            &Objective::Classify,
            &finetuned.model,
            &finetuned.store,
            self.dataset,
            &self.dataset.test,
            self.x.finetune.batch,
        )?;
        let outcome = &finetuned.outcome;
        self.metrics.replace_test(&Record {
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
        Ok(test)
    }
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
