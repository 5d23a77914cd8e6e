//! Cancels a batch's jobs with `scancel`. Jobs that already ended are no error: cancelling a
//! batch twice, or after some arrays finished, is fine.

use super::command::SlurmCommand;
use super::error::Result;

/// `scancel <ids…>`; nothing to do for no ids.
pub fn cancel(job_ids: &[u64]) -> Result<()> {
    if job_ids.is_empty() {
        return Ok(());
    }
    SlurmCommand::new("scancel")
        .args(job_ids.iter().map(u64::to_string))
        .stdout()
        .map(drop)
}
