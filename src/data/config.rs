//! The data settings of one experiment, independent of the language front end: the lead's
//! resolved `Spec` is converted into a [`DataConfig`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    #[value(name = "listops")]
    ListOps,
    Text,
    Retrieval,
    Image,
    Pathfinder,
    /// Pathfinder at resolution 128.
    #[value(name = "pathx")]
    PathX,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tokenizer {
    /// One token per character, vocabulary of characters seen `min_freq` times in training.
    Char,
    /// One token per UTF-8 byte (LRA's own Text code).
    Byte,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Pixels as 256 tokens (LRA).
    Tokens,
    /// Pixels as normalised real values with a linear encoder (S4).
    Continuous,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Difficulty {
    /// Contour length 6 (`curv_baseline`).
    Easy,
    /// Contour length 9 (`curv_contour_length_9`).
    Medium,
    /// Contour length 14 (`curv_contour_length_14`).
    Hard,
}

impl Difficulty {
    pub fn contour_length(self) -> usize {
        match self {
            Difficulty::Easy => 6,
            Difficulty::Medium => 9,
            Difficulty::Hard => 14,
        }
    }

    pub const ALL: [Difficulty; 3] = [Difficulty::Easy, Difficulty::Medium, Difficulty::Hard];

    /// The difficulty a spec's word names.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The word a spec and the command line use.
    pub fn name(self) -> &'static str {
        match self {
            Difficulty::Easy => "easy",
            Difficulty::Medium => "medium",
            Difficulty::Hard => "hard",
        }
    }

    /// The folder name the Pathfinder release uses for this difficulty.
    pub fn folder(self) -> &'static str {
        match self {
            Difficulty::Easy => "curv_baseline",
            Difficulty::Medium => "curv_contour_length_9",
            Difficulty::Hard => "curv_contour_length_14",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataConfig {
    pub task: Task,
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
    pub fn preset(task: Task, path: impl Into<PathBuf>) -> Self {
        let (max_len, resolution) = match task {
            Task::ListOps => (2048, 32),
            Task::Text => (4096, 32),
            Task::Retrieval => (4000, 32),
            Task::Image => (1024, 32),
            Task::Pathfinder => (1024, 32),
            Task::PathX => (16384, 128),
        };
        DataConfig {
            task,
            path: path.into(),
            max_len,
            tokenizer: Tokenizer::Char,
            min_freq: if task == Task::Text { 15 } else { 1 },
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
    pub fn pathfinder_resolution(&self) -> usize {
        if self.task == Task::PathX {
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
        for d in Difficulty::ALL {
            assert_eq!(Difficulty::from_name(d.name()), Some(d));
        }
        assert_eq!(Difficulty::from_name("extreme"), None);
    }
}
