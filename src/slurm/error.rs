//! What can go wrong between lra and a Slurm cluster: a tool missing or refusing, output lra
//! cannot read, a batch folder Slurm cannot write logs into, a jobs record that is damaged.
//! Each says what to do next.

use std::path::PathBuf;

use miette::Diagnostic;
use thiserror::Error;

#[derive(Debug, Error, Diagnostic)]
pub enum SlurmError {
    #[error("`{tool}` is not installed here (not found on PATH)")]
    #[diagnostic(
        code("lra::slurm::not-installed"),
        help("lra talks to Slurm through its commands (sbatch, squeue, scancel, scontrol): run lra on a login node of the cluster, or use the local executor (`--executor local`)")
    )]
    NotInstalled { tool: String },

    #[error("sbatch refused {script}: {stderr}")]
    #[diagnostic(
        code("lra::slurm::sbatch-failed"),
        help("check the executor's partition, account, qos, time and resources against what the cluster allows (`sinfo -s`, `sacctmgr show assoc user=$USER`); the command was: {command}")
    )]
    SbatchFailed {
        script: PathBuf,
        command: String,
        stderr: String,
    },

    #[error("`{command}` failed: {stderr}")]
    #[diagnostic(
        code("lra::slurm::command-failed"),
        help("check that slurmctld is reachable from here (`scontrol ping`) and try again")
    )]
    CommandFailed { command: String, stderr: String },

    #[error("cannot read what `{command}` printed: {line:?} ({why})")]
    #[diagnostic(
        code("lra::slurm::unexpected-output"),
        help("lra understands the output of Slurm 20.11 and later; report this line with `sbatch --version`")
    )]
    UnexpectedOutput {
        command: String,
        line: String,
        why: String,
    },

    #[error("the batch folder {path} cannot be used by Slurm: {why}")]
    #[diagnostic(
        code("lra::slurm::unusable-path"),
        help("Slurm's #SBATCH lines and log names cannot quote it: choose an `out` folder whose path has no white space or `%`")
    )]
    UnusablePath { path: PathBuf, why: String },

    #[error("no array index was given for stage `{stage}`")]
    #[diagnostic(
        code("lra::slurm::empty-array"),
        help("submit a stage only when it has points left to run")
    )]
    EmptyArray { stage: String },

    #[error("{path} is not a jobs record lra can read: {why}")]
    #[diagnostic(
        code("lra::slurm::bad-jobs-file"),
        help("it records the job ids lra submitted; if it was edited by hand, restore it, or move it aside and look the jobs up with `squeue --me`")
    )]
    BadJobsFile { path: PathBuf, why: String },

    /// A file written atomically (the scripts, the jobs record).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Write(#[from] crate::rundir::RunDirError),

    #[error("cannot write {path}: {source}")]
    #[diagnostic(
        code("lra::slurm::io"),
        help("check that the batch folder is writable and that its disk has room")
    )]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub type Result<T, E = SlurmError> = std::result::Result<T, E>;

/// Attaches a path to an I/O error.
pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> SlurmError {
    let path = path.into();
    move |source| SlurmError::Io { path, source }
}
