//! The state of each array task as Slurm reports it, read from `squeue` (jobs slurmctld still
//! holds) and `sacct` (the accounting database, which keeps finished jobs for good).

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::array;

/// What Slurm says of one array task, reduced to what a batch needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Waiting for resources, a dependency or its begin time.
    Pending,
    /// Running (or starting, completing).
    Running,
    /// Ended with exit status 0.
    Completed,
    /// Ended with a non-zero exit status, out of memory, or with its node failing.
    Failed,
    /// Cancelled by a user or an administrator.
    Cancelled,
    /// Killed at its time limit (a worker that requeued itself is `Requeued` instead).
    Timeout,
    /// Preempted, or requeued to run again (after USR1, the worker's checkpoint is kept).
    Requeued,
}

impl TaskState {
    /// Reads a state as squeue's `%T` and sacct's `State` print it ("CANCELLED by 0" too).
    pub fn parse(text: &str) -> Option<TaskState> {
        let word = text.split_whitespace().next()?.trim_end_matches('+');
        Some(match word {
            "PENDING" | "REQUEUE_HOLD" | "SUSPENDED" | "STOPPED" | "RESV_DEL_HOLD" => {
                TaskState::Pending
            }
            "RUNNING" | "CONFIGURING" | "COMPLETING" | "STAGE_OUT" | "SIGNALING" | "RESIZING" => {
                TaskState::Running
            }
            "COMPLETED" => TaskState::Completed,
            "FAILED" | "OUT_OF_MEMORY" | "NODE_FAIL" | "BOOT_FAIL" | "SPECIAL_EXIT"
            | "DEADLINE" => TaskState::Failed,
            "CANCELLED" | "REVOKED" => TaskState::Cancelled,
            "TIMEOUT" => TaskState::Timeout,
            "PREEMPTED" | "REQUEUED" | "REQUEUE_FED" => TaskState::Requeued,
            _ => return None,
        })
    }

    /// Whether Slurm is done with the task (it will not run again by itself).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TaskState::Completed | TaskState::Failed | TaskState::Cancelled | TaskState::Timeout
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Running => "running",
            TaskState::Completed => "completed",
            TaskState::Failed => "failed",
            TaskState::Cancelled => "cancelled",
            TaskState::Timeout => "timeout",
            TaskState::Requeued => "requeued",
        }
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One array task: the array's job id and the task's id within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct TaskId {
    pub job: u64,
    pub task: usize,
}

/// A task's state with Slurm's own words for it (`OUT_OF_MEMORY`, a pending reason).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskStatus {
    pub state: TaskState,
    pub detail: String,
}

pub(crate) type TaskStates = BTreeMap<TaskId, TaskStatus>;

/// squeue's format for [`parse_squeue`]: array job id, task id (one per line with `--array`),
/// state, reason.
pub(crate) const SQUEUE_FORMAT: &str = "%F|%K|%T|%r";

/// Reads `squeue --array --noheader --format=%F|%K|%T|%r`. Jobs that are not arrays
/// (task `N/A`) are not lra's and are skipped.
pub(crate) fn parse_squeue(output: &str) -> Result<TaskStates, String> {
    let mut states = TaskStates::new();
    for line in output.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.trim().split('|').collect();
        let [job, tasks, state, reason] = fields[..] else {
            return Err(format!("{line:?} does not have 4 fields"));
        };
        if tasks == "N/A" {
            continue;
        }
        let detail = if reason.is_empty() || reason == "None" {
            state.to_string()
        } else {
            format!("{state} ({reason})")
        };
        insert_tasks(&mut states, line, job, tasks, state, detail)?;
    }
    Ok(states)
}

/// Records `state` for every task of `tasks` (`7`, `[8-15%4]`) of job `job`, as read from
/// `line` of squeue's or sacct's output.
fn insert_tasks(
    states: &mut TaskStates,
    line: &str,
    job: &str,
    tasks: &str,
    state: &str,
    detail: String,
) -> Result<(), String> {
    let job: u64 = job
        .parse()
        .map_err(|_| format!("`{job}` in {line:?} is not a job id"))?;
    let state_of = TaskState::parse(state)
        .ok_or_else(|| format!("`{state}` in {line:?} is not a Slurm job state"))?;
    for task in array::expand(tasks).map_err(|e| format!("{e} in {line:?}"))? {
        states.insert(
            TaskId { job, task },
            TaskStatus {
                state: state_of,
                detail: detail.clone(),
            },
        );
    }
    Ok(())
}

/// sacct's fields for [`parse_sacct`].
pub(crate) const SACCT_FORMAT: &str = "JobID,State,ExitCode";

/// Reads `sacct --noheader --parsable2 --allocations --format=JobID,State,ExitCode`: JobIDs
/// such as `42_7` or `42_[8-15%4]` (tasks not started yet). Other jobs are skipped.
pub(crate) fn parse_sacct(output: &str) -> Result<TaskStates, String> {
    let mut states = TaskStates::new();
    for line in output.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.trim().split('|').collect();
        let [job_id, state, exit_code] = fields[..] else {
            return Err(format!("{line:?} does not have 3 fields"));
        };
        // Steps (`42_7.batch`) are left out by --allocations; skip them if a Slurm prints them.
        if job_id.contains('.') {
            continue;
        }
        let Some((job, tasks)) = job_id.split_once('_') else {
            continue;
        };
        let detail = if exit_code.is_empty() || exit_code == "0:0" {
            state.to_string()
        } else {
            format!("{state} (exit {exit_code})")
        };
        insert_tasks(&mut states, line, job, tasks, state, detail)?;
    }
    Ok(states)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(states: &TaskStates, job: u64, task: usize) -> TaskState {
        states[&TaskId { job, task }].state
    }

    #[test]
    fn squeue_lines_of_every_state() {
        // As Slurm 22.05 prints `squeue --array --states=all --noheader --format=%F|%K|%T|%r`.
        let output = "\
12|2|PENDING|JobArrayTaskLimit
12|3|PENDING|Dependency
12|0|RUNNING|None
12|1|COMPLETED|None
12|4|FAILED|NonZeroExitCode
12|5|CANCELLED|None
12|6|TIMEOUT|TimeLimit
12|7|PENDING|BeginTime
13|N/A|RUNNING|None
14|[0-2%1]|PENDING|Dependency
";
        let states = parse_squeue(output).unwrap();
        assert_eq!(state(&states, 12, 2), TaskState::Pending);
        assert_eq!(state(&states, 12, 0), TaskState::Running);
        assert_eq!(state(&states, 12, 1), TaskState::Completed);
        assert_eq!(state(&states, 12, 4), TaskState::Failed);
        assert_eq!(state(&states, 12, 5), TaskState::Cancelled);
        assert_eq!(state(&states, 12, 6), TaskState::Timeout);
        assert_eq!(
            states[&TaskId { job: 12, task: 4 }].detail,
            "FAILED (NonZeroExitCode)"
        );
        assert_eq!(states[&TaskId { job: 12, task: 0 }].detail, "RUNNING");
        assert_eq!(state(&states, 14, 2), TaskState::Pending);
        // The plain job 13 is not an array, so not lra's.
        assert!(!states.keys().any(|id| id.job == 13));
        assert_eq!(states.len(), 11);
    }

    #[test]
    fn sacct_lines_with_requeues_and_pending_ranges() {
        let output = "\
20_0|COMPLETED|0:0
20_1|FAILED|3:0
20_2|CANCELLED by 0|0:15
20_3|REQUEUED|0:0
20_4|OUT_OF_MEMORY|0:125
20_[5-7%2]|PENDING|0:0
21|COMPLETED|0:0
20_0.batch|COMPLETED|0:0
";
        let states = parse_sacct(output).unwrap();
        assert_eq!(state(&states, 20, 0), TaskState::Completed);
        assert_eq!(state(&states, 20, 1), TaskState::Failed);
        assert_eq!(
            states[&TaskId { job: 20, task: 1 }].detail,
            "FAILED (exit 3:0)"
        );
        assert_eq!(state(&states, 20, 2), TaskState::Cancelled);
        assert_eq!(state(&states, 20, 3), TaskState::Requeued);
        assert_eq!(state(&states, 20, 4), TaskState::Failed);
        assert_eq!(state(&states, 20, 7), TaskState::Pending);
        assert_eq!(states.len(), 8);
    }

    #[test]
    fn unreadable_lines_are_errors_naming_the_line() {
        let error = parse_squeue("12|0|DANCING|None").unwrap_err();
        assert!(error.contains("DANCING"), "{error}");
        assert!(parse_squeue("12|0|RUNNING").is_err());
        assert!(parse_sacct("x_0|COMPLETED|0:0")
            .unwrap_err()
            .contains("`x`"));
    }

    #[test]
    fn final_states() {
        assert!(TaskState::Failed.is_final());
        assert!(!TaskState::Requeued.is_final());
        assert!(!TaskState::Pending.is_final());
    }
}
