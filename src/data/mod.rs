//! The LRA data layer: loaders for each task's release format, tokenizers and vocabularies,
//! seeded splits, padded batches, generators and the `lra data` commands.
//!
//! Entry point: [`load`] turns a [`DataConfig`] into a [`Dataset`]; a [`Batcher`] turns one of
//! its splits into padded batches for the engine.

pub mod batch;
pub mod config;
pub mod decode;
pub mod detect;
pub mod error;
pub mod gen;
pub mod image;
pub mod listops;
pub mod npy;
pub mod pathfinder;
pub mod retrieval;
pub mod show;
pub mod source;
pub mod split;
pub mod stats;
pub mod store;
pub mod text;
pub mod tokenize;
pub mod vocab;

use std::path::Path;

pub use batch::{Batch, BatchInputs, Batcher, PaddedDocuments};
pub use config::{DataConfig, Difficulty, Encoding, TaskKind, Tokenizer};
pub use error::DataError;
pub use store::{Examples, Inputs, Split};
pub use vocab::Vocab;

/// What the model's input layer receives.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub enum InputKind {
    /// Token ids into the vocabulary (an embedding table).
    Tokens,
    /// Pixel values `(p / 255 - mean) / std` (a linear encoder).
    Continuous { mean: f32, std: f32 },
}

impl InputKind {
    /// Pixel tasks: tokens, or continuous values normalised as the reference does: CIFAR with
    /// mean 122.6/255 and std 61/255 (S4), Pathfinder to [-1, 1].
    pub(crate) fn for_pixels(cfg: &DataConfig) -> Self {
        match (cfg.encoding, cfg.task) {
            (Encoding::Tokens, _) => InputKind::Tokens,
            (Encoding::Continuous, TaskKind::Image) => InputKind::Continuous {
                mean: 122.6 / 255.0,
                std: 61.0 / 255.0,
            },
            (Encoding::Continuous, _) => InputKind::Continuous {
                mean: 0.5,
                std: 0.5,
            },
        }
    }
}

/// A task's data, ready for training.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub task: TaskKind,
    pub train: Split,
    pub val: Split,
    pub test: Split,
    /// Holds `<pad> <unk> <eos> <mask>` whatever the task.
    pub vocab: Vocab,
    pub num_classes: usize,
    pub input: InputKind,
    /// Retrieval: every example is two documents.
    pub paired: bool,
    /// What the loader found odd but could train on, for the user to read.
    pub warnings: Vec<String>,
}

impl Dataset {
    /// A token dataset from a release's three encoded splits.
    pub(crate) fn from_token_splits(
        cfg: &DataConfig,
        [train, val, test]: [store::Examples; 3],
        vocab: Vocab,
        num_classes: usize,
    ) -> Self {
        let split = |examples| Split::all(std::sync::Arc::new(examples));
        Dataset::new(
            cfg,
            split(train),
            split(val),
            split(test),
            vocab,
            num_classes,
            InputKind::Tokens,
        )
    }

    /// Assembles a dataset, reducing the training split to the configured subset.
    pub fn new(
        cfg: &DataConfig,
        mut train: Split,
        val: Split,
        test: Split,
        vocab: Vocab,
        num_classes: usize,
        input: InputKind,
    ) -> Self {
        train.indices = split::nested_subset(
            &train.indices,
            cfg.train_fraction,
            cfg.train_limit,
            cfg.seed,
        );
        let paired = matches!(train.examples.inputs, Inputs::Pairs(..));
        Dataset {
            task: cfg.task,
            train,
            val,
            test,
            vocab,
            num_classes,
            input,
            paired,
            warnings: Vec::new(),
        }
    }

    pub fn batcher<'d>(&'d self, split: &'d Split, batch_size: usize) -> Batcher<'d> {
        Batcher::new(split, batch_size, self.vocab.pad(), self.input)
    }
}

/// Loads the task `cfg` describes. `vocab_file` is where the run keeps its vocabulary: read
/// when it exists, otherwise built from the training split and written there.
pub fn load(cfg: &DataConfig, vocab_file: Option<&Path>) -> Result<Dataset, DataError> {
    if !cfg.path.exists() {
        return Err(missing_data(cfg));
    }
    match cfg.task {
        TaskKind::ListOps => listops::load(cfg, vocab_file),
        TaskKind::Text => text::load(cfg, vocab_file),
        TaskKind::Retrieval => retrieval::load(cfg, vocab_file),
        TaskKind::Image => image::load(cfg, vocab_file),
        TaskKind::Pathfinder | TaskKind::PathX => pathfinder::load(cfg, vocab_file),
    }
}

/// The command that makes a task's data, where lra can make it.
pub(crate) fn gen_command(cfg: &DataConfig) -> Option<String> {
    let out = cfg.path.display();
    match cfg.task {
        TaskKind::ListOps => Some(format!("lra data gen listops --out {out}")),
        TaskKind::Pathfinder | TaskKind::PathX => Some(format!(
            "lra data gen pathfinder --out {out} --resolution {} --difficulty {} --n 20000",
            cfg.pathfinder_resolution(),
            format!("{:?}", cfg.difficulty).to_lowercase()
        )),
        _ => None,
    }
}

fn missing_data(cfg: &DataConfig) -> DataError {
    let expected = match cfg.task {
        TaskKind::ListOps => "basic_{train,val,test}.tsv[.gz]",
        TaskKind::Text => "aclImdb's {train,test}/{pos,neg}/*.txt or {train,test}.tsv[.gz]",
        TaskKind::Retrieval => "<prefix>.{train,eval,test}.tsv[.gz]",
        TaskKind::Image => {
            "CIFAR-10 binary batches, or train|test/<class>/*.png|jpg, or a .tar[.xz] of it"
        }
        TaskKind::Pathfinder | TaskKind::PathX => {
            "curv_*/imgs/<b>/sample_<i>.png and curv_*/metadata/<b>.npy"
        }
    };
    let hint = gen_command(cfg)
        .map(|c| format!("make it with `{c}`"))
        .unwrap_or_else(|| "copy the release files there (see docs/METHOD.md)".into());
    DataError::Missing {
        path: cfg.path.clone(),
        expected: format!("a folder holding {expected}"),
        hint,
    }
}
