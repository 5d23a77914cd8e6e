//! A whole batch on Slurm, for `lra batch run|status|cancel`: stages submitted in order with
//! per-point dependencies, recorded in `jobs.json` as each array is accepted; the states of
//! the batch's points; cancelling every job it submitted.
//!
//! Dependencies are per point, not per stage: a fine-tuning array waits only for the
//! pretraining tasks its points start from (`afterok:<job>_<task>`), so one failed pretraining
//! cancels only the fine-tuning that needed it, and the other points finish.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::error::{io, Result};
use super::jobs_file::{JobsRecord, PointStates, Submission};
use super::options::SlurmOptions;
use super::query::{query, Accounting};
use super::script::{StageScript, WorkerCommand};
use super::submit::{max_array_size, submit, ArrayRequest};

/// Points of one stage that wait for the same points of earlier stages: one array (or
/// several, past MaxArraySize).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrayPlan {
    pub stage: String,
    pub indices: Vec<usize>,
    /// (stage, plan index) of the points that must succeed first. A point that was never
    /// submitted (it is done already) is no dependency.
    pub after_points: Vec<(String, usize)>,
}

/// Writes each stage's script and submits `arrays` in order (dependencies before the arrays
/// that wait for them), running `worker` in each task; every accepted array is recorded in
/// `jobs.json` at once, so an sbatch refusal midway leaves a record of what is queued.
pub fn submit_batch(
    batch_dir: &Path,
    batch_name: &str,
    options: &SlurmOptions,
    worker: &WorkerCommand,
    arrays: &[ArrayPlan],
) -> Result<Vec<Submission>> {
    let batch_dir = absolute(batch_dir)?;
    let max = max_array_size()?;
    let mut scripts: BTreeMap<&str, PathBuf> = BTreeMap::new();
    let mut record = JobsRecord::load(&batch_dir)?;
    let mut submitted = Vec::new();
    for array in arrays.iter().filter(|a| !a.indices.is_empty()) {
        let script = match scripts.get(array.stage.as_str()) {
            Some(path) => path.clone(),
            None => {
                let path = StageScript {
                    batch_name,
                    stage: &array.stage,
                    batch_dir: &batch_dir,
                    options,
                    worker,
                }
                .write()?;
                scripts.insert(&array.stage, path.clone());
                path
            }
        };
        let after_ok = dependencies(&record, &array.after_points);
        let request = ArrayRequest {
            stage: &array.stage,
            script: &script,
            indices: &array.indices,
            parallel: options.parallel,
            after_ok: &after_ok,
        };
        let accepted = submit(&request, max)?;
        record = JobsRecord::append(&batch_dir, &accepted)?;
        submitted.extend(accepted);
    }
    Ok(submitted)
}

/// `job_task` of the latest submission of each point, for `--dependency=afterok:`.
fn dependencies(record: &JobsRecord, points: &[(String, usize)]) -> Vec<String> {
    let mut after = Vec::new();
    for (stage, index) in points {
        let latest = record.submissions.iter().rev().find_map(|s| {
            if &s.stage != stage {
                return None;
            }
            s.points()
                .ok()?
                .into_iter()
                .find(|(i, _)| i == index)
                .map(|(_, task)| format!("{}_{}", task.job, task.task))
        });
        if let Some(job_task) = latest {
            if !after.contains(&job_task) {
                after.push(job_task);
            }
        }
    }
    after
}

/// What Slurm says of each (stage, plan index) the batch submitted, and where it was read.
pub fn batch_states(batch_dir: &Path) -> Result<(PointStates, Accounting)> {
    let record = JobsRecord::load(batch_dir)?;
    let result = query(&record.job_ids())?;
    Ok((record.point_states(&result.states), result.accounting))
}

/// Cancels every job the batch submitted and returns their ids.
pub fn cancel_batch(batch_dir: &Path) -> Result<Vec<u64>> {
    let ids = JobsRecord::load(batch_dir)?.job_ids();
    super::cancel(&ids)?;
    Ok(ids)
}

/// Compute nodes may start in another folder: scripts and logs need absolute paths.
fn absolute(path: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(path).map_err(io(path))?;
    path.canonicalize().map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_name_the_latest_task_of_each_point() {
        let submission = |job_id, offset, task_ids: &str| Submission {
            stage: "pretrain".into(),
            job_id,
            offset,
            task_ids: task_ids.into(),
            after_ok: vec![],
            command: String::new(),
            submitted_at: 0,
        };
        let record = JobsRecord {
            version: 1,
            submissions: vec![
                submission(5, 0, "0-3"),
                submission(6, 4, "0-1"),
                // Point 1 again, after a failure.
                submission(9, 0, "1"),
            ],
        };
        let points = |ids: &[usize]| -> Vec<(String, usize)> {
            ids.iter().map(|&i| ("pretrain".to_string(), i)).collect()
        };
        assert_eq!(dependencies(&record, &points(&[0])), vec!["5_0"]);
        assert_eq!(dependencies(&record, &points(&[1, 5])), vec!["9_1", "6_1"]);
        // Never submitted (done before this run): no dependency.
        assert!(dependencies(&record, &points(&[7])).is_empty());
        let finetune = vec![("finetune".to_string(), 0)];
        assert!(dependencies(&record, &finetune).is_empty());
    }
}
