//! The one error type of the data layer: every failure names the file (and line or image) and
//! says what was expected, so a user can fix the data without reading code.

use std::path::PathBuf;

use miette::Diagnostic;
use thiserror::Error;

#[derive(Debug, Error, Diagnostic)]
pub enum DataError {
    #[error("cannot read {path}: {source}")]
    #[diagnostic(
        code(lra::data::io),
        help("check that the path exists and is readable")
    )]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("data folder {path} does not hold the expected files: {expected}")]
    #[diagnostic(code(lra::data::missing), help("{hint}"))]
    Missing {
        path: PathBuf,
        expected: String,
        /// Either the `lra data gen` command that makes the data, or where to get it.
        hint: String,
    },

    #[error("{path}:{line}: expected {expected}, found {found:?}")]
    #[diagnostic(
        code(lra::data::malformed),
        help("fix or remove that line; the file format is described in docs/METHOD.md")
    )]
    Malformed {
        path: PathBuf,
        line: usize,
        expected: String,
        found: String,
    },

    #[error("cannot decode image {path}: {reason}")]
    #[diagnostic(
        code(lra::data::image),
        help("re-create or remove the image; every image of a task must decode to the same size")
    )]
    Image { path: PathBuf, reason: String },

    #[error("{path}: {reason}")]
    #[diagnostic(
        code(lra::data::npy),
        help("a metadata file must be the release's plain text or a NumPy array of strings")
    )]
    Npy { path: PathBuf, reason: String },

    #[error("vocabulary {path}: {reason}")]
    #[diagnostic(
        code(lra::data::vocab),
        help("delete the vocabulary file to rebuild it from the training split")
    )]
    Vocab { path: PathBuf, reason: String },

    #[error("invalid data setting: {reason}")]
    #[diagnostic(code(lra::data::config), help("{hint}"))]
    Config { reason: String, hint: String },

    #[error("{path} holds no {what}")]
    #[diagnostic(
        code(lra::data::empty_split),
        help("every split needs examples: an empty validation split would select checkpoints by a loss of 0, an empty test split would report 0%; restore or regenerate the file")
    )]
    EmptySplit { path: PathBuf, what: String },

    #[error("cannot write {path}: {reason}")]
    #[diagnostic(
        code(lra::data::write),
        help("check that the output folder is writable and the disk is not full")
    )]
    Write { path: PathBuf, reason: String },
}

impl DataError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn malformed(
        path: impl Into<PathBuf>,
        line: usize,
        expected: impl Into<String>,
        found: impl AsRef<[u8]>,
    ) -> Self {
        // A whole review on one line would drown the message: show its start only.
        let found = String::from_utf8_lossy(found.as_ref());
        let found: String = found.chars().take(80).collect();
        DataError::Malformed {
            path: path.into(),
            line,
            expected: expected.into(),
            found,
        }
    }

    /// `rows` unless there are none: a split read from `path` must hold examples.
    pub(crate) fn non_empty<T>(
        path: &std::path::Path,
        split: &str,
        rows: Vec<T>,
    ) -> Result<Vec<T>, Self> {
        if rows.is_empty() {
            return Err(DataError::EmptySplit {
                path: path.to_path_buf(),
                what: format!("{split} examples"),
            });
        }
        Ok(rows)
    }

    pub fn image(path: impl Into<PathBuf>, reason: impl ToString) -> Self {
        DataError::Image {
            path: path.into(),
            reason: reason.to_string(),
        }
    }

    pub fn write(path: impl Into<PathBuf>, reason: impl ToString) -> Self {
        DataError::Write {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}
