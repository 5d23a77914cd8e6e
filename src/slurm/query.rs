//! The states of a batch's array tasks, from `sacct` where the cluster keeps accounting, and
//! from `squeue --states=all` for the jobs slurmctld still holds (fresher than sacct for live
//! tasks, and the only source on clusters without slurmdbd, where finished jobs stay visible
//! for MinJobAge seconds, 300 by default). Run folders remain the truth about results; these
//! states say what Slurm is doing about the points not finished yet.

use super::command::{stderr_text, SlurmCommand};
use super::error::{Result, SlurmError};
use super::state::{parse_sacct, parse_squeue, TaskStates, SACCT_FORMAT, SQUEUE_FORMAT};

/// Whether sacct answered, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accounting {
    Used,
    /// sacct is missing or accounting is disabled (no slurmdbd): finished jobs are known only
    /// while slurmctld keeps them.
    Unavailable(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryResult {
    pub states: TaskStates,
    pub accounting: Accounting,
}

/// The states of every array task of `job_ids`; tasks Slurm no longer knows are absent.
pub fn query(job_ids: &[u64]) -> Result<QueryResult> {
    if job_ids.is_empty() {
        return Ok(QueryResult {
            states: TaskStates::new(),
            accounting: Accounting::Unavailable("no jobs were asked about".into()),
        });
    }
    let jobs = job_ids
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let (mut states, accounting) = match sacct(&jobs)? {
        Ok(states) => (states, Accounting::Used),
        Err(why) => (TaskStates::new(), Accounting::Unavailable(why)),
    };
    // squeue knows live tasks best; it overrides sacct for them.
    states.extend(squeue(&jobs)?);
    Ok(QueryResult { states, accounting })
}

/// `squeue --array --states=all`: one line per task of the given jobs still in slurmctld.
fn squeue(jobs: &str) -> Result<TaskStates> {
    let command = SlurmCommand::new("squeue").args([
        "--noheader".to_string(),
        "--array".to_string(),
        "--states=all".to_string(),
        format!("--jobs={jobs}"),
        format!("--format={SQUEUE_FORMAT}"),
    ]);
    let output = command.output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = stderr_text(&output);
        // Every job asked about has left slurmctld (older than MinJobAge): none is live.
        if stderr.contains("Invalid job id") {
            return Ok(TaskStates::new());
        }
        return Err(SlurmError::CommandFailed {
            command: command.display(),
            stderr,
        });
    }
    parse_squeue(&stdout).map_err(|why| unexpected(&command, &stdout, why))
}

/// `sacct` of the given jobs: `Ok(Err(why))` when the cluster has no accounting to ask.
fn sacct(jobs: &str) -> Result<Result<TaskStates, String>> {
    let command = SlurmCommand::new("sacct").args([
        "--noheader".to_string(),
        "--parsable2".to_string(),
        "--allocations".to_string(),
        format!("--jobs={jobs}"),
        format!("--format={SACCT_FORMAT}"),
    ]);
    let output = match command.output() {
        Ok(output) => output,
        Err(SlurmError::NotInstalled { tool }) => {
            return Ok(Err(format!("`{tool}` is not installed")))
        }
        Err(e) => return Err(e),
    };
    if !output.status.success() {
        // "Slurm accounting storage is disabled", or slurmdbd down: fall back to squeue.
        return Ok(Err(stderr_text(&output)));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    parse_sacct(&stdout)
        .map(Ok)
        .map_err(|why| unexpected(&command, &stdout, why))
}

fn unexpected(command: &SlurmCommand, stdout: &str, why: String) -> SlurmError {
    // The parsers quote the line they stopped at in `why`; the output's start helps too.
    SlurmError::UnexpectedOutput {
        command: command.display(),
        line: stdout.lines().next().unwrap_or("").to_string(),
        why,
    }
}
