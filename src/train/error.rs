//! What can go wrong while running an experiment: always about the world (data, memory,
//! divergence, interruption), never about the spec, which `check` has already validated.

use std::path::PathBuf;

use miette::Diagnostic;
use thiserror::Error;

use crate::data::DataError;
use crate::engine::EngineError;
use crate::rundir::RunDirError;

#[derive(Debug, Error, Diagnostic)]
pub enum RunError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Data(#[from] DataError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Engine(#[from] EngineError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    RunDir(#[from] RunDirError),

    #[error("run folder {path} holds an unfinished run")]
    #[diagnostic(
        code(lra::run::unfinished_run),
        help("continue it with `lra run {spec} --resume`, or start over with `lra run {spec} --restart` (the old folder is moved aside, not deleted)")
    )]
    UnfinishedRun { path: PathBuf, spec: String },

    #[error("{path} is damaged: {reason}")]
    #[diagnostic(code(lra::run::damaged_file))]
    DamagedFile {
        path: PathBuf,
        reason: String,
        #[help]
        what_to_do: String,
    },

    #[error("cannot write {path}: {source}")]
    #[diagnostic(
        code(lra::run::io),
        help("check that the runs folder is writable and the disk has room")
    )]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("training diverged at step {step} of {phase}: {cause}")]
    #[diagnostic(
        code(lra::run::diverged),
        help("the last good checkpoint is kept at {checkpoint}; lower the learning rate, add `clip 1.0`, or lengthen the warm-up")
    )]
    Diverged {
        phase: String,
        step: u64,
        /// What stopped being finite: the loss, or the gradient with a finite loss.
        cause: String,
        checkpoint: String,
    },

    #[error("interrupted at step {step} of {phase}; the run is saved")]
    #[diagnostic(
        code(lra::run::interrupted),
        help("continue it with `lra run {spec} --resume`")
    )]
    Interrupted {
        phase: String,
        step: u64,
        spec: String,
    },

    #[error("run folder {path} holds a different experiment")]
    #[diagnostic(
        code(lra::run::resume_mismatch),
        help("resume with the spec that started the run, or start over with `--restart` (the old folder is moved aside)")
    )]
    ResumeMismatch { path: PathBuf },

    #[error("cannot transfer `{name}` from the pretrained model: {detail}")]
    #[diagnostic(
        code(lra::run::transfer),
        help("fine-tuning needs the pretraining's architecture: the same model section, task and vocabulary")
    )]
    Transfer { name: String, detail: String },

    #[error("the pretrained model in {path} is not this one: {differences}")]
    #[diagnostic(
        code(lra::run::pretrained_model_differs),
        help("its weights would be read as another architecture's: fine-tune with the model section of the pretraining (only `dropout` and `pool` may differ)")
    )]
    PretrainedModelDiffers { path: PathBuf, differences: String },

    #[error("no finished pretraining in {path}")]
    #[diagnostic(
        code(lra::run::no_pretraining),
        help("point --from-pretrained at a run folder whose pretraining finished (it holds checkpoints/pretrain-best.safetensors)")
    )]
    NoPretraining { path: PathBuf },

    #[error("this lra is a CPU-only build: it was compiled without CUDA")]
    #[diagnostic(
        code(lra::run::no_cuda),
        help("build with `cargo build --release --features cuda` on a machine with the CUDA toolkit, or use `--device cpu`")
    )]
    NoCuda,

    /// A CUDA build whose driver could not open the GPU (see [`super::cuda`]).
    #[error("this lra was built with CUDA, but GPU {ordinal} cannot be used: {cause}")]
    #[diagnostic(code(lra::run::no_gpu))]
    CudaUnavailable {
        ordinal: usize,
        cause: String,
        #[help]
        what_to_do: String,
    },
}

pub type Result<T, E = RunError> = std::result::Result<T, E>;

/// Attaches a path to an I/O error.
pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> RunError {
    let path = path.into();
    move |source| RunError::Io { path, source }
}
