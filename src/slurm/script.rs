//! The sbatch script of one stage of a batch: `<batch-dir>/slurm/<stage>.sbatch`. Each array
//! task runs the worker on one point of the plan; the script turns Slurm's warning signal into
//! a checkpoint and a requeue, and passes the worker's failure on so Slurm records FAILED.
//!
//! The array itself (`--array=<ids>%<parallel>`) and the dependency are given on sbatch's
//! command line rather than in the script, because one script serves every array a stage is
//! split into at the cluster's MaxArraySize; the script's first argument is that array's
//! offset, added to `$SLURM_ARRAY_TASK_ID` to get the plan index. `jobs.json` records each
//! exact sbatch command.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::error::{io, Result, SlurmError};
use super::options::{SlurmOptions, CHECKPOINT_SIGNAL_LEAD_S};
use crate::commands::run::EXIT_INTERRUPTED;

/// The program each array task runs, before the point's index (which the script appends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
}

impl WorkerCommand {
    /// `<this lra> batch worker <batch-dir>`: the absolute path of the running executable, so
    /// compute nodes run the same lra build as the one that planned the batch (and need no
    /// `lra` on their PATH).
    pub(crate) fn lra_batch_worker(batch_dir: &Path) -> Result<Self> {
        let program = std::env::current_exe().map_err(io("the running lra executable"))?;
        Ok(WorkerCommand {
            program,
            args: vec![
                "batch".into(),
                "worker".into(),
                batch_dir.display().to_string(),
            ],
        })
    }
}

/// What one stage's script is made of.
#[derive(Debug, Clone)]
pub struct StageScript<'a> {
    pub batch_name: &'a str,
    pub stage: &'a str,
    /// Absolute: compute nodes start in the submission folder, which may differ.
    pub batch_dir: &'a Path,
    pub options: &'a SlurmOptions,
    pub worker: &'a WorkerCommand,
}

impl StageScript<'_> {
    /// `<batch-dir>/slurm/<stage>.sbatch`.
    pub fn path(&self) -> PathBuf {
        slurm_dir(self.batch_dir).join(format!("{}.sbatch", safe_name(self.stage)))
    }

    /// Where the array tasks' logs go; sbatch does not create missing folders (a task whose
    /// log folder is missing fails before running anything), so [`write`](Self::write)
    /// creates it.
    pub(crate) fn logs_dir(&self) -> PathBuf {
        slurm_dir(self.batch_dir).join("logs")
    }

    /// The job name Slurm shows in squeue: `<batch>-<stage>`.
    pub(crate) fn job_name(&self) -> String {
        format!("{}-{}", safe_name(self.batch_name), safe_name(self.stage))
    }

    /// Writes the script (atomically, executable) and creates its log folder.
    pub fn write(&self) -> Result<PathBuf> {
        let text = self.render()?;
        let logs = self.logs_dir();
        std::fs::create_dir_all(&logs).map_err(io(&logs))?;
        let path = self.path();
        crate::rundir::write_atomic(&path, text.as_bytes())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .map_err(io(&path))?;
        }
        Ok(path)
    }

    /// The script's text.
    pub fn render(&self) -> Result<String> {
        check_usable(self.batch_dir)?;
        let log = self
            .logs_dir()
            .join(format!("{}-%A_%a.out", safe_name(self.stage)));
        let worker = shell_words(self.worker)?;
        let o = self.options;

        let mut s = String::new();
        let w = &mut s;
        // Writing to a String cannot fail.
        let _ = writeln!(w, "#!/bin/bash");
        let _ = writeln!(
            w,
            "# lra batch \"{}\", stage \"{}\": each array task runs one point of the plan.",
            self.batch_name, self.stage
        );
        let _ = writeln!(
            w,
            "# Submitted by `lra batch run` as: sbatch --array=<task ids>%<parallel> [--dependency=afterok:<jobs>] {} <offset>",
            self.path().display()
        );
        let _ = writeln!(
            w,
            "# The plan index of a task is $SLURM_ARRAY_TASK_ID + <offset> (big batches are split at MaxArraySize)."
        );
        let _ = writeln!(w, "#SBATCH --job-name={}", self.job_name());
        let _ = writeln!(w, "#SBATCH --output={}", log.display());
        // A requeued task appends to its log, so the first try's lines are kept.
        let _ = writeln!(w, "#SBATCH --open-mode=append");
        let _ = writeln!(w, "#SBATCH --signal=B:USR1@{CHECKPOINT_SIGNAL_LEAD_S}");
        let _ = writeln!(w, "#SBATCH --requeue");
        if let Some(partition) = &o.partition {
            let _ = writeln!(w, "#SBATCH --partition={partition}");
        }
        if let Some(account) = &o.account {
            let _ = writeln!(w, "#SBATCH --account={account}");
        }
        if let Some(qos) = &o.qos {
            let _ = writeln!(w, "#SBATCH --qos={qos}");
        }
        if let Some(time) = &o.time {
            let _ = writeln!(w, "#SBATCH --time={time}");
        }
        if let Some(cpus) = o.cpus {
            let _ = writeln!(w, "#SBATCH --cpus-per-task={cpus}");
        }
        if let Some(mem) = &o.mem {
            let _ = writeln!(w, "#SBATCH --mem={mem}");
        }
        if let Some(gpus) = o.gpus.filter(|&g| g > 0) {
            let _ = writeln!(w, "#SBATCH --gres=gpu:{gpus}");
        }
        for arg in &o.sbatch_args {
            let _ = writeln!(w, "#SBATCH {arg}");
        }
        let _ = write!(
            w,
            r#"
set -u

offset="${{1:-0}}"
index=$((SLURM_ARRAY_TASK_ID + offset))

# Train with the CPUs Slurm gave the task, not every core of a shared node.
if [ -n "${{SLURM_CPUS_PER_TASK:-}}" ]; then
    export RAYON_NUM_THREADS="$SLURM_CPUS_PER_TASK"
fi

# Slurm sends USR1 to this shell only (--signal=B:…) {lead} s before the time limit, and
# before preempting when the partition gives a grace time. The worker, told in turn, saves a
# checkpoint and exits {interrupted}; the task is then requeued, and its next run resumes from
# the checkpoint to the result an uninterrupted run would have reached.
usr1_received=0
worker_pid=""
forward_usr1() {{
    usr1_received=1
    if [ -n "$worker_pid" ]; then
        kill -USR1 "$worker_pid" 2>/dev/null || true
    fi
}}
trap forward_usr1 USR1

echo "lra: $(date -u +%Y-%m-%dT%H:%M:%SZ) task ${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}} (restart ${{SLURM_RESTART_COUNT:-0}}) runs point $index on $(hostname)"
{worker} "$index" &
worker_pid=$!
# A trapped signal makes `wait` return early: wait until the worker has really exited, then
# read its exit status (bash keeps it for a second `wait`).
while kill -0 "$worker_pid" 2>/dev/null; do
    wait "$worker_pid"
done
wait "$worker_pid"
status=$?

if [ "$usr1_received" = 1 ] && [ "$status" = {interrupted} ]; then
    echo "lra: checkpoint saved after USR1; requeueing task ${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}"
    if ! scontrol requeue "${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}"; then
        echo "lra: the requeue was refused; the task ends FAILED and the next \`lra batch run\` resumes its point" >&2
    fi
fi
# A failed or interrupted worker fails the task: Slurm must never show it COMPLETED.
exit "$status"
"#,
            lead = CHECKPOINT_SIGNAL_LEAD_S,
            interrupted = EXIT_INTERRUPTED,
            worker = worker,
        );
        Ok(s)
    }
}

/// `<batch-dir>/slurm`: the scripts, logs and jobs record of a batch's Slurm submissions.
pub(crate) fn slurm_dir(batch_dir: &Path) -> PathBuf {
    batch_dir.join("slurm")
}

/// A name usable in a file name and a job name: other characters become `_`.
fn safe_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Refuses batch folders that `#SBATCH --output=` cannot hold: relative paths (tasks start
/// elsewhere), white space (no quoting in `#SBATCH` lines) and `%` (a log-name pattern).
fn check_usable(batch_dir: &Path) -> Result<()> {
    let unusable = |why: &str| {
        Err(SlurmError::UnusablePath {
            path: batch_dir.to_path_buf(),
            why: why.to_string(),
        })
    };
    let Some(text) = batch_dir.to_str() else {
        return unusable("it is not valid UTF-8");
    };
    if !batch_dir.is_absolute() {
        return unusable("it is relative, and tasks may start in another folder");
    }
    if text.chars().any(char::is_whitespace) {
        return unusable("it contains white space");
    }
    if text.contains('%') {
        return unusable("it contains `%`, which Slurm reads as a log-name pattern");
    }
    Ok(())
}

/// The worker command as shell words.
fn shell_words(worker: &WorkerCommand) -> Result<String> {
    let program = worker
        .program
        .to_str()
        .ok_or_else(|| SlurmError::UnusablePath {
            path: worker.program.clone(),
            why: "the worker's path is not valid UTF-8".into(),
        })?;
    let words = std::iter::once(program).chain(worker.args.iter().map(String::as_str));
    shlex::try_join(words).map_err(|e| SlurmError::UnusablePath {
        path: worker.program.clone(),
        why: format!("the worker command cannot be quoted for the shell: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> SlurmOptions {
        serde_yaml::from_str(
            "{ partition: gpu, account: lab, time: \"12:00:00\", cpus: 8, mem: 32G, gpus: 1, \
             parallel: 16, sbatch_args: [\"--constraint=a100\"] }",
        )
        .unwrap()
    }

    fn worker() -> WorkerCommand {
        WorkerCommand {
            program: "/opt/lra/bin/lra".into(),
            args: vec![
                "batch".into(),
                "worker".into(),
                "/scratch/runs/batches/sweep".into(),
            ],
        }
    }

    #[test]
    fn script_of_a_gpu_stage() {
        let options = options();
        let worker = worker();
        let script = StageScript {
            batch_name: "sweep",
            stage: "finetune",
            batch_dir: Path::new("/scratch/runs/batches/sweep"),
            options: &options,
            worker: &worker,
        };
        insta::assert_snapshot!(script.render().unwrap());
    }

    #[test]
    fn absent_settings_leave_the_cluster_defaults() {
        let options = SlurmOptions::default();
        let worker = worker();
        let script = StageScript {
            batch_name: "my batch",
            stage: "points",
            batch_dir: Path::new("/b"),
            options: &options,
            worker: &worker,
        }
        .render()
        .unwrap();
        assert!(script.contains("#SBATCH --job-name=my_batch-points\n"));
        for absent in [
            "--partition",
            "--account",
            "--time",
            "--mem",
            "--gres",
            "--cpus",
        ] {
            assert!(!script.contains(absent), "{absent} in\n{script}");
        }
    }

    #[test]
    fn folders_sbatch_cannot_hold_are_refused() {
        let options = SlurmOptions::default();
        let worker = worker();
        for (dir, why) in [
            ("runs/batches/b", "relative"),
            ("/my runs/b", "white space"),
            ("/runs/100%/b", "`%`"),
        ] {
            let error = StageScript {
                batch_name: "b",
                stage: "points",
                batch_dir: Path::new(dir),
                options: &options,
                worker: &worker,
            }
            .render()
            .unwrap_err();
            assert!(error.to_string().contains(why), "{dir}: {error}");
        }
    }

    #[test]
    fn worker_paths_with_spaces_are_quoted() {
        let options = SlurmOptions::default();
        let worker = WorkerCommand {
            program: "/home/a b/lra".into(),
            args: vec!["batch".into()],
        };
        let script = StageScript {
            batch_name: "b",
            stage: "points",
            batch_dir: Path::new("/b"),
            options: &options,
            worker: &worker,
        }
        .render()
        .unwrap();
        assert!(
            script.contains("'/home/a b/lra' batch \"$index\" &"),
            "{script}"
        );
    }
}
