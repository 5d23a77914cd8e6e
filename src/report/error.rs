//! The report's one error type: what is wrong, where, and how to fix it.

use std::path::PathBuf;

use miette::Diagnostic;
use thiserror::Error;

#[derive(Debug, Error, Diagnostic)]
pub enum ReportError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Results(#[from] crate::results::ResultsError),

    #[error("{path}:{line}: {reason}")]
    #[diagnostic(
        code(lra::report::published),
        help("each row is `source,table,task,model,objective,metric,value,note` with a task of {tasks}, a model kind, an objective of scratch|masked|causal and a value in percent")
    )]
    Published {
        path: String,
        line: usize,
        reason: String,
        tasks: String,
    },

    #[error("`{given}`: no run has a field `{path}`")]
    #[diagnostic(code("lra::report::unknown-path"), help("{help}"))]
    UnknownPath {
        given: String,
        path: String,
        help: String,
    },

    #[error("`{given}` is not a condition")]
    #[diagnostic(
        code("lra::report::bad-where"),
        help("write `PATH=VALUE` or `PATH!=VALUE` with a path as `lra explain` prints it, e.g. `--where model.d_model=64`")
    )]
    BadWhere { given: String },

    #[error("no run matches {conditions}")]
    #[diagnostic(
        code("lra::report::nothing-matches"),
        help("the runs folder holds {runs} runs; loosen `--where` (`lra report DIR --format csv` lists every group)")
    )]
    NothingMatches { conditions: String, runs: usize },

    #[error("batch `{name}` has no run folder in {out} yet")]
    #[diagnostic(
        code("lra::report::batch-not-run"),
        help("`lra batch run` records the batch's plan and trains its points; `lra batch status FILE` says where they stand")
    )]
    BatchNotRun { name: String, out: PathBuf },

    #[error("{path} is not a run folder (it has no spec.json)")]
    #[diagnostic(
        code("lra::report::not-a-run"),
        help("`--diff` compares two run folders, like runs/<experiment>/seed0-1a2b3c4d")
    )]
    NotARun { path: PathBuf },

    #[error("cannot write {path}: {reason}")]
    #[diagnostic(
        code(lra::report::write),
        help("check that the folder exists and is writable")
    )]
    Write { path: PathBuf, reason: String },
}

pub type Result<T> = std::result::Result<T, ReportError>;
