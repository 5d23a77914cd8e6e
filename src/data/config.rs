//! The data settings of one experiment, independent of the language front end: the lead's
//! resolved `Spec` is converted into a [`DataConfig`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The language's task, tokenizer, encoding and difficulty words are the data layer's types.
pub use crate::spec::{Difficulty, Encoding, TaskKind, Tokenizer};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataConfig {
    pub task: TaskKind,
    /// Folder (or, for Image, a `.tar[.xz]` file) holding the task's release files.
    pub path: PathBuf,
    /// Longest sequence kept, `<eos>` included; longer inputs are truncated.
    pub max_len: usize,
    pub tokenizer: Tokenizer,
    pub min_freq: usize,
    pub encoding: Encoding,
    pub resolution: usize,
    pub difficulty: Difficulty,
    /// Share of the training images carved off for validation where a task has no validation
    /// split (Image).
    pub val_fraction: f64,
    pub train_fraction: Option<f64>,
    pub train_limit: Option<usize>,
    /// Chooses the training subset (`train_fraction`, `train_limit`). Validation and test
    /// splits carved from a release do not depend on it (see `split::CARVE_SEED`).
    pub seed: u64,
}

impl DataConfig {
    /// The reference settings of a task (docs/METHOD.md), reading from `path`.
    pub fn preset(task: TaskKind, path: impl Into<PathBuf>) -> Self {
        let (max_len, resolution) = match task {
            TaskKind::ListOps => (2048, 32),
            TaskKind::Text => (4096, 32),
            TaskKind::Retrieval => (4000, 32),
            TaskKind::Image => (1024, 32),
            TaskKind::Pathfinder => (1024, 32),
            TaskKind::PathX => (16384, 128),
        };
        DataConfig {
            task,
            path: path.into(),
            max_len,
            tokenizer: Tokenizer::Char,
            min_freq: if task == TaskKind::Text { 15 } else { 1 },
            encoding: Encoding::Tokens,
            resolution,
            difficulty: Difficulty::Hard,
            val_fraction: 0.1,
            train_fraction: None,
            train_limit: None,
            seed: 0,
        }
    }

    /// Pathfinder resolution in effect: Path-X is always 128.
    pub(crate) fn pathfinder_resolution(&self) -> usize {
        if self.task == TaskKind::PathX {
            128
        } else {
            self.resolution
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn difficulty_names_round_trip() {
        for &d in Difficulty::ALL {
            assert_eq!(Difficulty::from_name(d.name()), Some(d));
        }
        assert_eq!(Difficulty::from_name("extreme"), None);
    }
}
