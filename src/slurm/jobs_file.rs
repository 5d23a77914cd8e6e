//! `<batch-dir>/slurm/jobs.json`: every array lra submitted for a batch, so `lra batch status`
//! and `lra batch cancel` find the batch's jobs later, from any shell on the login node.
//! Written atomically: a kill during a write leaves the previous record.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::array;
use super::error::{io, Result, SlurmError};
use super::script::slurm_dir;
use super::state::{TaskId, TaskStates, TaskStatus};

/// The record's format version; a reader refuses others.
const VERSION: u32 = 1;

/// One `sbatch` of one array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    pub stage: String,
    pub job_id: u64,
    /// The plan index of task `t` is `offset + t`.
    pub offset: usize,
    /// The array's task ids as given to `--array` (without the `%parallel` limit).
    pub task_ids: String,
    /// Jobs this array waits for (`--dependency=afterok:…`).
    #[serde(default)]
    pub after_ok: Vec<String>,
    /// The sbatch command line, as a user could run it again.
    pub command: String,
    /// Seconds since the Unix epoch.
    pub submitted_at: u64,
}

impl Submission {
    /// The plan indices this array runs, each with its task id.
    pub fn points(&self) -> Result<Vec<(usize, TaskId)>, String> {
        Ok(array::expand(&self.task_ids)?
            .into_iter()
            .map(|task| {
                (
                    self.offset + task,
                    TaskId {
                        job: self.job_id,
                        task,
                    },
                )
            })
            .collect())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobsRecord {
    pub version: u32,
    /// In submission order: a point submitted again (after a failure) is found in a later one.
    pub submissions: Vec<Submission>,
}

impl JobsRecord {
    pub fn path(batch_dir: &Path) -> PathBuf {
        slurm_dir(batch_dir).join("jobs.json")
    }

    /// The batch's record; empty when nothing was submitted yet.
    pub fn load(batch_dir: &Path) -> Result<JobsRecord> {
        let path = Self::path(batch_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(JobsRecord {
                    version: VERSION,
                    submissions: Vec::new(),
                })
            }
            Err(e) => return Err(io(&path)(e)),
        };
        let record: JobsRecord =
            serde_json::from_str(&text).map_err(|e| SlurmError::BadJobsFile {
                path: path.clone(),
                why: e.to_string(),
            })?;
        if record.version != VERSION {
            return Err(SlurmError::BadJobsFile {
                path,
                why: format!(
                    "it is version {}, and this lra reads version {VERSION}",
                    record.version
                ),
            });
        }
        for submission in &record.submissions {
            submission.points().map_err(|why| SlurmError::BadJobsFile {
                path: path.clone(),
                why: format!("job {}: {why}", submission.job_id),
            })?;
        }
        Ok(record)
    }

    /// Adds submissions and writes the record (creating `<batch-dir>/slurm/`).
    pub fn append(batch_dir: &Path, submissions: &[Submission]) -> Result<JobsRecord> {
        let mut record = Self::load(batch_dir)?;
        record.submissions.extend_from_slice(submissions);
        let path = Self::path(batch_dir);
        let folder = slurm_dir(batch_dir);
        std::fs::create_dir_all(&folder).map_err(io(&folder))?;
        let mut text = serde_json::to_string_pretty(&record).expect("a jobs record serialises");
        text.push('\n');
        crate::rundir::write_atomic(&path, text.as_bytes())?;
        Ok(record)
    }

    /// Every job id submitted, in order, without repeats.
    pub fn job_ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = Vec::new();
        for submission in &self.submissions {
            if !ids.contains(&submission.job_id) {
                ids.push(submission.job_id);
            }
        }
        ids
    }

    /// The latest Slurm state of each (stage, plan index) submitted; a point absent from
    /// `states` (Slurm has forgotten its job) is left out. A later submission of the same
    /// point wins over an earlier one.
    pub(crate) fn point_states(&self, states: &TaskStates) -> PointStates {
        let mut points = BTreeMap::new();
        for submission in &self.submissions {
            // `load` checked every submission's task list.
            for (index, task) in submission.points().unwrap_or_default() {
                let key = (submission.stage.clone(), index);
                match states.get(&task) {
                    Some(status) => {
                        points.insert(
                            key,
                            PointSlurmState {
                                task,
                                status: status.clone(),
                            },
                        );
                    }
                    None => {
                        points.remove(&key);
                    }
                }
            }
        }
        points
    }
}

/// What Slurm says of each (stage, plan index).
pub type PointStates = BTreeMap<(String, usize), PointSlurmState>;

/// What Slurm says of one point: the task that ran it last, and its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PointSlurmState {
    pub task: TaskId,
    pub status: TaskStatus,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slurm::state::TaskState;

    fn submission(job_id: u64, offset: usize, task_ids: &str) -> Submission {
        Submission {
            stage: "points".into(),
            job_id,
            offset,
            task_ids: task_ids.into(),
            after_ok: vec![],
            command: format!("sbatch --array={task_ids} points.sbatch {offset}"),
            submitted_at: 0,
        }
    }

    #[test]
    fn record_round_trips_and_accumulates() {
        let dir = tempfile::tempdir().unwrap();
        assert!(JobsRecord::load(dir.path()).unwrap().submissions.is_empty());
        JobsRecord::append(dir.path(), &[submission(7, 0, "0-3")]).unwrap();
        let record = JobsRecord::append(dir.path(), &[submission(9, 4, "0")]).unwrap();
        assert_eq!(JobsRecord::load(dir.path()).unwrap(), record);
        assert_eq!(record.job_ids(), vec![7, 9]);
    }

    #[test]
    fn a_damaged_record_names_its_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("slurm")).unwrap();
        std::fs::write(JobsRecord::path(dir.path()), "{ not json").unwrap();
        let error = JobsRecord::load(dir.path()).unwrap_err();
        assert!(matches!(error, SlurmError::BadJobsFile { .. }), "{error}");
        assert!(error.to_string().contains("jobs.json"), "{error}");
    }

    #[test]
    fn points_map_through_offsets_and_later_submissions_win() {
        let record = JobsRecord {
            version: VERSION,
            submissions: vec![
                submission(7, 0, "0-3"),
                submission(8, 4, "0-1"),
                // Point 2 submitted again after its first task failed.
                submission(9, 0, "2"),
            ],
        };
        let status = |state| TaskStatus {
            state,
            detail: String::new(),
        };
        let states: TaskStates = [
            (TaskId { job: 7, task: 0 }, status(TaskState::Completed)),
            (TaskId { job: 7, task: 2 }, status(TaskState::Failed)),
            (TaskId { job: 8, task: 1 }, status(TaskState::Running)),
            (TaskId { job: 9, task: 2 }, status(TaskState::Pending)),
        ]
        .into_iter()
        .collect();
        let points = record.point_states(&states);
        let of = |i: usize| {
            points
                .get(&("points".to_string(), i))
                .map(|p| p.status.state)
        };
        assert_eq!(of(0), Some(TaskState::Completed));
        assert_eq!(of(2), Some(TaskState::Pending));
        assert_eq!(of(5), Some(TaskState::Running));
        assert_eq!(
            points[&("points".to_string(), 5)].task,
            TaskId { job: 8, task: 1 }
        );
        assert_eq!(of(1), None);
        assert_eq!(of(4), None);
    }
}
