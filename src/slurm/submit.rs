//! Submits a stage's points as job arrays: split at the cluster's MaxArraySize, each array
//! limited to `parallel` running tasks, optionally after other jobs succeed.

use std::num::NonZeroU32;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::array::{compress, split_at_max_array_size};
use super::command::{stderr_text, SlurmCommand};
use super::error::{Result, SlurmError};
use super::jobs_file::Submission;

/// The cluster's MaxArraySize (array task ids must stay below it), from
/// `scontrol show config`.
pub fn max_array_size() -> Result<usize> {
    let command = SlurmCommand::new("scontrol").args(["show", "config"]);
    let output = command.stdout()?;
    parse_max_array_size(&output).map_err(|why| SlurmError::UnexpectedOutput {
        command: command.display(),
        line: output
            .lines()
            .find(|l| l.trim_start().starts_with("MaxArraySize"))
            .unwrap_or("")
            .to_string(),
        why,
    })
}

/// Finds `MaxArraySize = N` in `scontrol show config`.
pub(crate) fn parse_max_array_size(config: &str) -> Result<usize, String> {
    let line = config
        .lines()
        .find(|l| l.split_whitespace().next() == Some("MaxArraySize"))
        .ok_or("it has no MaxArraySize line")?;
    let value = line
        .split_once('=')
        .map(|(_, v)| v.trim())
        .ok_or("its MaxArraySize line has no `=`")?;
    match value.parse::<usize>() {
        // MaxArraySize 0 disables job arrays.
        Ok(0) => Err("MaxArraySize is 0: this cluster does not allow job arrays".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{value}` is not a number")),
    }
}

/// One stage's points to submit.
#[derive(Debug, Clone)]
pub struct ArrayRequest<'a> {
    pub stage: &'a str,
    /// The stage's script, as [`StageScript::write`](super::script::StageScript::write)
    /// wrote it.
    pub script: &'a Path,
    /// Plan indices to run.
    pub indices: &'a [usize],
    /// Tasks of one array running at once.
    pub parallel: Option<NonZeroU32>,
    /// Jobs that must complete successfully first: array job ids (every task) or `job_task`.
    pub after_ok: &'a [String],
}

/// Submits the request's arrays, in index order, and returns what was submitted (the caller
/// records it in `jobs.json`). A refusal after some arrays were accepted returns the error;
/// those arrays keep running, and are named in the error's command so a user can cancel them.
pub fn submit(request: &ArrayRequest, max_array_size: usize) -> Result<Vec<Submission>> {
    if request.indices.is_empty() {
        return Err(SlurmError::EmptyArray {
            stage: request.stage.to_string(),
        });
    }
    let mut submitted = Vec::new();
    for chunk in split_at_max_array_size(request.indices, max_array_size) {
        let task_ids = compress(&chunk.task_ids);
        let command = sbatch_command(request, &task_ids, chunk.offset);
        let output = command.output()?;
        if !output.status.success() {
            let mut stderr = stderr_text(&output);
            if !submitted.is_empty() {
                let ids: Vec<String> = submitted
                    .iter()
                    .map(|s: &Submission| s.job_id.to_string())
                    .collect();
                stderr.push_str(&format!(
                    " (jobs {} of this stage were submitted before; `scancel {}` stops them)",
                    ids.join(", "),
                    ids.join(" ")
                ));
            }
            return Err(SlurmError::SbatchFailed {
                script: request.script.to_path_buf(),
                command: command.display(),
                stderr,
            });
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let job_id = parse_parsable(&stdout).map_err(|why| SlurmError::UnexpectedOutput {
            command: command.display(),
            line: stdout.trim().to_string(),
            why,
        })?;
        submitted.push(Submission {
            stage: request.stage.to_string(),
            job_id,
            offset: chunk.offset,
            task_ids,
            after_ok: request.after_ok.to_vec(),
            command: command.display(),
            submitted_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        });
    }
    Ok(submitted)
}

/// `sbatch --parsable --array=<ids>[%parallel] [--dependency=afterok:…] <script> <offset>`.
fn sbatch_command(request: &ArrayRequest, task_ids: &str, offset: usize) -> SlurmCommand {
    let array = match request.parallel {
        Some(parallel) => format!("--array={task_ids}%{parallel}"),
        None => format!("--array={task_ids}"),
    };
    let mut command = SlurmCommand::new("sbatch").arg("--parsable").arg(array);
    if !request.after_ok.is_empty() {
        command = command
            .arg(format!(
                "--dependency=afterok:{}",
                request.after_ok.join(":")
            ))
            // A failed dependency can never be satisfied: cancel the dependent tasks rather
            // than leave them pending for ever.
            .arg("--kill-on-invalid-dep=yes");
    }
    command
        .arg(request.script.display().to_string())
        .arg(offset.to_string())
}

/// `sbatch --parsable` prints `<job id>` or `<job id>;<cluster>`.
pub(crate) fn parse_parsable(stdout: &str) -> Result<u64, String> {
    let first = stdout.trim().lines().last().unwrap_or("");
    let id = first.split(';').next().unwrap_or("").trim();
    id.parse()
        .map_err(|_| format!("`{id}` is not a job id (sbatch --parsable prints one)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_array_size_from_scontrol_show_config() {
        let config = "Configuration data as of 2026-12-07T03:40:00\nMailProg                = /bin/mail\nMaxArraySize            = 1001\nMaxBatchRequeue         = 5\n";
        assert_eq!(parse_max_array_size(config), Ok(1001));
        assert!(parse_max_array_size("MaxArraySize = 0\n")
            .unwrap_err()
            .contains("does not allow job arrays"));
        assert!(parse_max_array_size("Other = 1\n").is_err());
    }

    #[test]
    fn parsable_output_with_and_without_cluster() {
        assert_eq!(parse_parsable("4242\n"), Ok(4242));
        assert_eq!(parse_parsable("4242;cluster-a\n"), Ok(4242));
        assert!(parse_parsable("Submitted batch job 4242").is_err());
    }

    #[test]
    fn sbatch_lines_with_limit_and_dependency() {
        let after = vec!["12".to_string(), "13_4".to_string()];
        let request = ArrayRequest {
            stage: "finetune",
            script: Path::new("/b/slurm/finetune.sbatch"),
            indices: &[0, 1, 2],
            parallel: NonZeroU32::new(2),
            after_ok: &after,
        };
        assert_eq!(
            sbatch_command(&request, "0-2", 0).display(),
            "sbatch --parsable --array=0-2%2 --dependency=afterok:12:13_4 --kill-on-invalid-dep=yes /b/slurm/finetune.sbatch 0"
        );
        let alone = ArrayRequest {
            parallel: None,
            after_ok: &[],
            ..request
        };
        assert_eq!(
            sbatch_command(&alone, "1", 1001).display(),
            "sbatch --parsable --array=1 /b/slurm/finetune.sbatch 1001"
        );
    }

    #[test]
    fn nothing_to_submit_is_an_error() {
        let request = ArrayRequest {
            stage: "points",
            script: Path::new("/b/slurm/points.sbatch"),
            indices: &[],
            parallel: None,
            after_ok: &[],
        };
        assert!(matches!(
            submit(&request, 1001),
            Err(SlurmError::EmptyArray { .. })
        ));
    }
}
