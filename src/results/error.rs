//! The results index's one error type: each names the file (and line) at fault and says how
//! to fix it. Rendered with miette by the command that called the index.

use std::path::PathBuf;

use miette::Diagnostic;
use thiserror::Error;

#[derive(Debug, Error, Diagnostic)]
pub enum ResultsError {
    #[error("cannot read {path}: {source}")]
    #[diagnostic(
        code(lra::results::io),
        help("check that the path exists and is readable")
    )]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("no run folders under {path}")]
    #[diagnostic(
        code(lra::results::empty),
        help("a run folder holds a spec.json; train one with `lra run FILE --out {}`, or name the runs folder that `lra run` wrote (the spec's `out`, `runs` by default)", path.display())
    )]
    Empty { path: PathBuf },

    #[error("{path}: written by lra {version}, newer than this lra {ours}")]
    #[diagnostic(
        code("lra::results::newer-run-folder"),
        help("report it with lra {version} or later (`cargo install --path .` from an up-to-date checkout)")
    )]
    NewerRunFolder {
        path: PathBuf,
        version: String,
        ours: &'static str,
    },

    #[error("{path}:{line}: {reason}")]
    #[diagnostic(
        code("lra::results::corrupt-line"),
        help("that line is skipped; fix or delete it (each line of metrics.jsonl is one JSON object as `lra run` writes it)")
    )]
    CorruptLine {
        path: PathBuf,
        line: usize,
        reason: String,
    },

    #[error("{path}: {reason}")]
    #[diagnostic(
        code("lra::results::corrupt-file"),
        help("the run folder is listed but not reported; re-run the experiment (`lra run FILE`) to write it again")
    )]
    CorruptFile { path: PathBuf, reason: String },

    #[error("results index {path}: {source}")]
    #[diagnostic(
        code(lra::results::sqlite),
        help("the index is rebuilt from the run folders: delete {} and run `lra report` again", path.display())
    )]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

pub type Result<T> = std::result::Result<T, ResultsError>;

pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ResultsError {
    let path = path.into();
    move |source| ResultsError::Io { path, source }
}

pub fn sqlite(path: impl Into<PathBuf>) -> impl FnOnce(rusqlite::Error) -> ResultsError {
    let path = path.into();
    move |source| ResultsError::Sqlite { path, source }
}
