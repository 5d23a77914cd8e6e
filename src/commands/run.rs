//! `lra run FILE [--only NAME] [--device D] [--threads N] [--jobs N] [--out DIR] [--resume | --restart]`

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::jobs::{self, Workers};
use super::{machine, print_diagnostics, EXIT_ERRORS, EXIT_OK, EXIT_USAGE};
use crate::spec::{Device, ExperimentSpec, Objective};
use crate::train::{self, RunError, RunOptions, RunSummary};

/// Exit status of a run stopped by Ctrl-C (128 + SIGINT, as shells report it).
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

pub struct RunArgs {
    pub file: PathBuf,
    pub only: Vec<String>,
    pub device: Option<Device>,
    pub threads: Option<usize>,
    /// Experiments trained at once, sharing the threads.
    pub jobs: usize,
    pub out: Option<PathBuf>,
    pub resume: bool,
    pub restart: bool,
    pub quiet: bool,
    pub from_pretrained: Option<PathBuf>,
}

/// Parses `cpu`, `cuda`, `cuda:N`.
pub fn parse_device(text: &str) -> Result<Device, String> {
    match text {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda(0)),
        other => other
            .strip_prefix("cuda:")
            .and_then(|i| i.parse().ok())
            .map(Device::Cuda)
            .ok_or_else(|| format!("`{other}` is not a device: use cpu, cuda or cuda:N")),
    }
}

/// The process's stop flag: Ctrl-C, SIGTERM, SIGHUP and SIGUSR1 set it, and the training loop
/// then saves a checkpoint and stops after the step (see [`super::interrupt`]).
pub(crate) fn interrupt_flag() -> Arc<AtomicBool> {
    super::interrupt::flag()
}

pub fn run(args: &RunArgs) -> u8 {
    let context = machine::context(true);
    let checked = match crate::check::check(&args.file, &context) {
        Ok(checked) => checked,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", args.file.display());
            return EXIT_USAGE;
        }
    };
    print_diagnostics(&checked);
    let Some(spec) = checked.spec else {
        return EXIT_ERRORS;
    };
    if spec.experiments.is_empty() {
        // `check` warned; for `run` a file with nothing to train is a mistake.
        eprintln!(
            "error: {} holds no experiment, so there is nothing to run",
            args.file.display()
        );
        return EXIT_ERRORS;
    }
    let unknown: Vec<&String> = args
        .only
        .iter()
        .filter(|name| !spec.experiments.iter().any(|x| &x.name == *name))
        .collect();
    if !unknown.is_empty() {
        eprintln!(
            "error: no experiment named {} in {} (it has: {})",
            unknown
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", "),
            args.file.display(),
            spec.experiments
                .iter()
                .map(|x| format!("\"{}\"", x.name))
                .collect::<Vec<_>>()
                .join(", ")
        );
        return EXIT_USAGE;
    }
    let selected: Vec<&ExperimentSpec> = spec
        .experiments
        .iter()
        .filter(|x| args.only.is_empty() || args.only.contains(&x.name))
        .collect();
    let threads = args
        .threads
        .or_else(|| selected.iter().find_map(|x| x.threads))
        // rayon's default: every core, or RAYON_NUM_THREADS when set.
        .unwrap_or_else(rayon::current_num_threads);
    let workers = Workers::new(args.jobs, threads, selected.len());
    let parallel = workers.jobs > 1;
    let options = RunOptions {
        out: args.out.clone(),
        device: args.device,
        resume: args.resume,
        restart: args.restart,
        quiet: args.quiet,
        spec_path: display(&args.file),
        source: std::fs::read_to_string(&args.file).unwrap_or_default(),
        stop_at: None,
        from_pretrained: args.from_pretrained.clone(),
        eval_limit: None,
        bars: (parallel && !args.quiet).then(indicatif::MultiProgress::new),
    };
    let interrupt = interrupt_flag();
    let finished = jobs::run_all(&selected, workers, &interrupt, |x| {
        run_one(x, &options, &interrupt)
    });
    let mut code = EXIT_OK;
    let mut rows = Vec::new();
    for (row, outcome) in finished.into_iter().flatten() {
        rows.push(row);
        match outcome {
            Outcome::Interrupted => return EXIT_INTERRUPTED,
            Outcome::Failed => code = EXIT_ERRORS,
            Outcome::Done => {}
        }
    }
    if rows.len() > 1 {
        print!("\n{}", table(&rows));
    }
    code
}

enum Outcome {
    Done,
    Failed,
    Interrupted,
}

/// Trains one experiment and prints its result line (or its error) as soon as it ends.
fn run_one(x: &ExperimentSpec, options: &RunOptions, interrupt: &AtomicBool) -> (Row, Outcome) {
    match train::run(x, options, interrupt) {
        Ok(summary) => {
            println!(
                "{}: test accuracy {:.2}% (loss {:.4}, {} examples) after {} steps; run folder {}",
                summary.experiment,
                summary.test_accuracy * 100.0,
                summary.test_loss,
                summary.test_examples,
                summary.finetune_steps,
                summary.run_dir.display()
            );
            (Row::finished(x, &summary), Outcome::Done)
        }
        Err(e) => {
            let row = Row::failed(x, &e);
            let outcome = if matches!(e, RunError::Interrupted { .. }) {
                Outcome::Interrupted
            } else {
                Outcome::Failed
            };
            eprintln!("{:?}", miette::Report::new(e));
            (row, outcome)
        }
    }
}

/// One line of the closing table.
struct Row {
    experiment: String,
    model: String,
    pretraining: String,
    result: String,
    minutes: String,
}

impl Row {
    fn new(x: &ExperimentSpec, result: String, minutes: String) -> Self {
        Row {
            experiment: x.name.clone(),
            model: format!(
                "{} {}×{}",
                x.model.kind.name(),
                x.model.layers,
                x.model.d_model
            ),
            pretraining: match &x.pretrain {
                None => "none".into(),
                Some(p) => match p.objective {
                    Objective::Masked { rate, .. } => format!("masked ({rate})"),
                    Objective::Causal => "causal".into(),
                },
            },
            result,
            minutes,
        }
    }

    fn finished(x: &ExperimentSpec, summary: &RunSummary) -> Self {
        Row::new(
            x,
            format!("{:.2}%", summary.test_accuracy * 100.0),
            format!("{:.1}", summary.seconds / 60.0),
        )
    }

    fn failed(x: &ExperimentSpec, error: &RunError) -> Self {
        let what = match error {
            RunError::Interrupted { .. } => "interrupted",
            RunError::Diverged { .. } => "diverged",
            _ => "failed",
        };
        Row::new(x, what.into(), "-".into())
    }
}

/// The experiments of a file side by side, as a markdown table.
fn table(rows: &[Row]) -> String {
    let mut out = String::from("| experiment | model | self-pretraining | test accuracy | minutes |\n|---|---|---|---|---|\n");
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            r.experiment, r.model, r.pretraining, r.result, r.minutes
        ));
    }
    out
}

fn display(path: &Path) -> String {
    path.display().to_string()
}
