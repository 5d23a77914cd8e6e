//! The engine's one error type. Every failure past `check` is about the world (a checkpoint
//! that does not match the model, an I/O error, a device error), so each variant names what
//! was expected.

use miette::Diagnostic;
use thiserror::Error;

#[derive(Debug, Error, Diagnostic)]
pub enum EngineError {
    #[error("parameter `{name}` is defined twice")]
    #[diagnostic(code(lra::engine::duplicate_parameter))]
    DuplicateParameter { name: String },

    #[error("parameter `{name}`: expected {expected} values, got {actual}")]
    #[diagnostic(code(lra::engine::wrong_size))]
    WrongSize {
        name: String,
        expected: usize,
        actual: usize,
    },

    #[error("invalid model configuration: {0}")]
    #[diagnostic(code(lra::engine::invalid_config))]
    InvalidConfig(String),

    #[error("shape mismatch in {op}: {detail}")]
    #[diagnostic(code(lra::engine::shape_mismatch))]
    ShapeMismatch { op: &'static str, detail: String },

    #[error("checkpoint {path}: {detail}")]
    #[diagnostic(
        code(lra::engine::checkpoint),
        help("the checkpoint must come from a model with the same configuration")
    )]
    Checkpoint { path: String, detail: String },

    #[error("checkpoint {path} is damaged: {detail}")]
    #[diagnostic(
        code(lra::engine::damaged_checkpoint),
        help("the file was not written by a finished save (a copy cut short, a disk error): restore it, or start the run over with `--restart`")
    )]
    DamagedCheckpoint { path: String, detail: String },

    #[error("cannot read or write {path}: {source}")]
    #[diagnostic(code(lra::engine::io))]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    #[error("training diverged: loss {loss}, gradient norm {grad_norm}")]
    #[diagnostic(
        code(lra::engine::diverged),
        help("lower the learning rate, add warm-up or gradient clipping")
    )]
    Diverged { loss: f32, grad_norm: f32 },

    #[error("device error: {0}")]
    #[diagnostic(code(lra::engine::device))]
    Device(String),

    #[error("{feature} is not available on this device: {reason}")]
    #[diagnostic(code(lra::engine::unsupported))]
    Unsupported {
        feature: &'static str,
        reason: &'static str,
    },
}

impl EngineError {
    /// Wraps a device error (`D::Err` is only `Debug` in dfdx 0.13).
    pub fn device(err: impl std::fmt::Debug) -> Self {
        EngineError::Device(format!("{err:?}"))
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
