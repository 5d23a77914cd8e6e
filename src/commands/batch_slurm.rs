//! `lra batch run|status|cancel` with the Slurm executor: the plan's points that are not done
//! become job arrays (fine-tuning after the shared pretraining it starts from), `status` adds
//! Slurm's word on each point to its run folder's, and `cancel` scancels the batch's jobs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{EXIT_ERRORS, EXIT_OK};
use crate::batch::file::Executor;
use crate::batch::plan::Plan;
use crate::batch::status::{self, PointState};
use crate::rundir::state::FolderState;
use crate::slurm::{self, ArrayPlan, PointSlurmState, SlurmOptions, WorkerCommand};

/// Stage of the points that start from scratch or run their own pretraining.
const POINTS: &str = "points";
/// Stage of the points that fine-tune from another point's pretraining.
const FINETUNE: &str = "finetune";

/// Submits the points that are not done and returns right after printing the job ids.
pub fn run(plan: &Plan, retry_failed: bool) -> u8 {
    let options = match &plan.executor {
        Some(Executor::Slurm { options, .. }) => match SlurmOptions::from_executor(options) {
            Ok(options) => options,
            Err(e) => {
                eprintln!("error: the batch file's Slurm executor: {e}");
                return EXIT_ERRORS;
            }
        },
        // `--executor slurm` over a local batch file: the cluster's defaults.
        _ => SlurmOptions::default(),
    };
    let batch_dir = match plan.batch_dir.canonicalize() {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("error: cannot find {}: {e}", plan.batch_dir.display());
            return EXIT_ERRORS;
        }
    };
    // Points Slurm is still busy with are not submitted twice.
    let queued = match slurm::batch_states(&batch_dir) {
        Ok((states, _)) => by_index(states),
        Err(e) => return report(e),
    };
    let mut leaders = Vec::new();
    let mut followers: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut left = Vec::new();
    for point in &plan.points {
        let why_not = match status::of(plan, point) {
            PointState::Folder(FolderState::Done) => continue,
            PointState::Folder(FolderState::Running(holder)) => {
                Some(format!("running in {holder}"))
            }
            PointState::Folder(FolderState::Failed(_)) if !retry_failed => {
                Some("failed before (`--retry-failed` runs it again)".into())
            }
            PointState::Blocked { by } if !retry_failed => {
                Some(format!("its shared pretraining, point {by}, failed"))
            }
            _ => queued
                .get(&point.index)
                .filter(|q| !q.status.state.is_final())
                .map(|q| {
                    format!(
                        "already {} as Slurm task {}_{}",
                        q.status.state, q.task.job, q.task.task
                    )
                }),
        };
        if let Some(why) = why_not {
            left.push(format!(
                "  point {} {}: {why}",
                point.index, point.experiment
            ));
            continue;
        }
        match point.pretrained_by.filter(|&leader| leader != point.index) {
            Some(leader) => followers.entry(leader).or_default().push(point.index),
            None => leaders.push(point.index),
        }
    }
    let mut arrays = vec![ArrayPlan {
        stage: POINTS.into(),
        indices: leaders,
        after_points: vec![],
    }];
    // One array per shared pretraining: a failed one cancels only its own fine-tuning.
    arrays.extend(followers.into_iter().map(|(leader, indices)| ArrayPlan {
        stage: FINETUNE.into(),
        indices,
        after_points: vec![(POINTS.into(), leader)],
    }));
    let worker = match WorkerCommand::lra_batch_worker(&batch_dir) {
        Ok(worker) => worker,
        Err(e) => return report(e),
    };
    let submitted = match slurm::submit_batch(&batch_dir, &plan.name, &options, &worker, &arrays) {
        Ok(submitted) => submitted,
        Err(e) => return report(e),
    };
    if submitted.is_empty() {
        println!("batch {}: nothing to submit", plan.name);
    }
    for s in &submitted {
        let after = if s.after_ok.is_empty() {
            String::new()
        } else {
            format!(", after {}", s.after_ok.join(", "))
        };
        let offset = if s.offset > 0 {
            format!(" + {}", s.offset)
        } else {
            String::new()
        };
        println!(
            "submitted job {} ({}: points {}{offset}{after})",
            s.job_id, s.stage, s.task_ids
        );
    }
    if !left.is_empty() {
        println!("not submitted:\n{}", left.join("\n"));
    }
    let file = plan.source.display();
    println!(
        "scripts and logs: {}\nfollow with `lra batch status {file}`; stop with `lra batch cancel {file}`",
        slurm::script::slurm_dir(&batch_dir).display()
    );
    EXIT_OK
}

/// Slurm's state of each point the batch submitted; `None` when it never submitted any.
pub fn states(plan: &Plan) -> Option<BTreeMap<usize, PointSlurmState>> {
    if !slurm::JobsRecord::path(&plan.batch_dir).exists() {
        return None;
    }
    match slurm::batch_states(&plan.batch_dir) {
        Ok((states, accounting)) => {
            if let slurm::Accounting::Unavailable(why) = accounting {
                eprintln!(
                    "note: no Slurm accounting here ({why}); finished jobs are shown while \
                     slurmctld keeps them"
                );
            }
            Some(by_index(states))
        }
        Err(e) => {
            eprintln!("warning: cannot ask Slurm about the batch's jobs: {e}");
            None
        }
    }
}

/// Slurm's column of `lra batch status` for one point.
pub fn column(states: &BTreeMap<usize, PointSlurmState>, index: usize) -> String {
    match states.get(&index) {
        Some(point) => format!(
            "{} ({}_{})",
            point.status.detail, point.task.job, point.task.task
        ),
        None => "-".into(),
    }
}

/// Cancels every job the batch submitted; `None` when it never submitted any.
pub fn cancel(plan: &Plan) -> Option<u8> {
    let record: PathBuf = slurm::JobsRecord::path(&plan.batch_dir);
    if !record.exists() {
        return None;
    }
    Some(match slurm::cancel_batch(&plan.batch_dir) {
        Ok(ids) => {
            let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
            println!(
                "cancelled the Slurm jobs of batch {}: {}\nfinished points stay finished; \
                 partial ones resume on the next `lra batch run`",
                plan.name,
                ids.join(" ")
            );
            EXIT_OK
        }
        Err(e) => report(e),
    })
}

/// A point is in one stage: its states by plan index.
fn by_index(states: slurm::PointStates) -> BTreeMap<usize, PointSlurmState> {
    states
        .into_iter()
        .map(|((_, index), state)| (index, state))
        .collect()
}

fn report(error: slurm::SlurmError) -> u8 {
    eprintln!("{:?}", miette::Report::new(error));
    EXIT_ERRORS
}
