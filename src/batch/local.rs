//! The local executor: the points of a plan on this machine, `jobs` at a time, shared
//! pretrainings first. A point that fails never stops the others; finished points are skipped,
//! partial ones resumed, failed ones rerun only when asked.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::plan::{Plan, Point};
use super::status::{self, PointState};
use crate::commands::jobs::{self, Workers};
use crate::rundir::state::FolderState;
use crate::train::{self, RunError, RunOptions};

pub struct LocalOptions {
    pub jobs: usize,
    /// Threads shared by the jobs.
    pub threads: usize,
    pub retry_failed: bool,
    pub quiet: bool,
}

/// How one point ended in this run of the batch.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Done {
        accuracy: f64,
    },
    /// Finished earlier, or running elsewhere, or failed earlier and not retried.
    Skipped(String),
    Failed(String),
    Interrupted,
}

/// Runs what is not done; returns each point's outcome, in plan order.
pub fn run(plan: &Plan, options: &LocalOptions, interrupt: &AtomicBool) -> Vec<Outcome> {
    let mut outcomes: Vec<Option<Outcome>> = vec![None; plan.points.len()];
    let progress = Progress::new(plan.points.len(), options.quiet);
    // Stage 1: points that need no other's pretraining; stage 2: those that reuse one.
    for stage in [false, true] {
        let points: Vec<&Point> = plan
            .points
            .iter()
            .filter(|p| p.pretrained_by.is_some() == stage)
            .collect();
        let workers = Workers::new(options.jobs, options.threads, points.len());
        let results = jobs::run_all(&points, workers, interrupt, |point| {
            progress.started();
            let outcome = run_point(plan, point, options, interrupt);
            progress.finished(point, &outcome);
            outcome
        });
        for (point, result) in points.iter().zip(results) {
            outcomes[point.index] = Some(result.unwrap_or(Outcome::Interrupted));
        }
        if interrupt.load(Ordering::SeqCst) {
            break;
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Outcome::Interrupted))
        .collect()
}

/// One point, unless its state says to leave it.
pub(crate) fn run_point(
    plan: &Plan,
    point: &Point,
    options: &LocalOptions,
    interrupt: &AtomicBool,
) -> Outcome {
    match status::of(plan, point) {
        PointState::Folder(FolderState::Done) => {
            return Outcome::Done {
                accuracy: status::accuracy(point).unwrap_or(f64::NAN),
            };
        }
        PointState::Folder(FolderState::Running(holder)) => {
            return Outcome::Skipped(format!("running in {holder}"));
        }
        PointState::Folder(FolderState::Failed(f)) if !options.retry_failed => {
            return Outcome::Failed(format!(
                "{} (an earlier run; `--retry-failed` runs it again)",
                f.error.lines().next().unwrap_or_default()
            ));
        }
        PointState::Blocked { by } => {
            return Outcome::Failed(format!("its shared pretraining, point {by}, failed"));
        }
        _ => {}
    }
    let run_options = RunOptions {
        resume: true,
        quiet: true,
        spec_path: point.spec_file.display().to_string(),
        source: std::fs::read_to_string(&point.spec_file).unwrap_or_default()
            + &format!(
                "\n// lra batch {}: point {} ({})\n",
                plan.name, point.index, point.label
            ),
        from_pretrained: point
            .pretrained_by
            .map(|leader| plan.points_by_index(leader).run_dir.clone()),
        ..RunOptions::default()
    };
    match train::run(&point.spec, &run_options, interrupt) {
        Ok(summary) => Outcome::Done {
            accuracy: summary.test_accuracy,
        },
        Err(RunError::Interrupted { .. }) => Outcome::Interrupted,
        Err(e) => Outcome::Failed(e.to_string().lines().next().unwrap_or_default().to_string()),
    }
}

/// One line per finished point: `[3/12: 2 done, 1 failed, 1 running] point 4 …`.
struct Progress {
    total: usize,
    quiet: bool,
    running: AtomicUsize,
    done: AtomicUsize,
    failed: AtomicUsize,
    skipped: AtomicUsize,
}

impl Progress {
    fn new(total: usize, quiet: bool) -> Self {
        Progress {
            total,
            quiet,
            running: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            skipped: AtomicUsize::new(0),
        }
    }

    fn started(&self) {
        self.running.fetch_add(1, Ordering::SeqCst);
    }

    fn finished(&self, point: &Point, outcome: &Outcome) {
        self.running.fetch_sub(1, Ordering::SeqCst);
        let what = match outcome {
            Outcome::Done { accuracy } => {
                self.done.fetch_add(1, Ordering::SeqCst);
                format!("done, test accuracy {:.2}%", accuracy * 100.0)
            }
            Outcome::Skipped(why) => {
                self.skipped.fetch_add(1, Ordering::SeqCst);
                format!("left alone: {why}")
            }
            Outcome::Failed(why) => {
                self.failed.fetch_add(1, Ordering::SeqCst);
                format!("FAILED: {why}")
            }
            Outcome::Interrupted => "interrupted (checkpoint saved)".into(),
        };
        if !self.quiet {
            eprintln!(
                "[{}/{} done, {} failed, {} running] point {} {} ({}): {what}",
                self.done.load(Ordering::SeqCst),
                self.total,
                self.failed.load(Ordering::SeqCst),
                self.running.load(Ordering::SeqCst),
                point.index,
                point.experiment,
                point.label,
            );
        }
    }
}
