//! The numerical engine (DESIGN.md §3): a run-time-shaped parameter store, Adam/AdamW and
//! schedules, safetensors checkpoints, fused CPU kernels as dfdx custom ops (with composed
//! oracles), layers and the Transformer.

pub mod checkpoint;
pub mod error;
pub mod layers;
pub mod models;
pub mod ops;
pub mod optim;
pub mod params;
pub mod schedule;
pub mod step;

pub use error::{EngineError, Result};
