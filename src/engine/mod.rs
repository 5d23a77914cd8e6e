//! The numerical engine (docs/ARCHITECTURE.md): a run-time-shaped parameter store, Adam/AdamW and
//! schedules, safetensors checkpoints, fused CPU kernels as dfdx custom ops (with composed
//! oracles), layers and the Transformer.
//!
//! A training step, end to end:
//!
//! ```no_run
//! use dfdx::prelude::*;
//! use lra::engine::layers::activation::Activation;
//! use lra::engine::layers::encoder::{InputData, InputKind, Inputs};
//! use lra::engine::layers::norm::NormKind;
//! use lra::engine::layers::pool::PoolKind;
//! use lra::engine::layers::position::PositionKind;
//! use lra::engine::layers::sequence::NormPlacement;
//! use lra::engine::models::{SequenceClassifier, Transformer, TransformerConfig};
//! use lra::engine::ops::{AttentionKind, EngineDevice};
//! use lra::engine::optim::{Optimizer, OptimizerConfig};
//! use lra::engine::params::ParamStore;
//! use lra::engine::schedule::{Schedule, ScheduleKind};
//! use lra::engine::{checkpoint, step};
//!
//! # fn main() -> lra::engine::Result<()> {
//! let config = TransformerConfig {
//!     input: InputKind::Tokens { vocab: 19 },
//!     max_len: 2048,
//!     d_model: 512,
//!     layers: 6,
//!     heads: 8,
//!     ffn: 2048,
//!     activation: Activation::Gelu,
//!     dropout: 0.1,
//!     norm: NormPlacement::Pre,
//!     norm_kind: NormKind::Layer,
//!     position: PositionKind::Sinusoidal,
//!     attention: AttentionKind::Full,
//!     pool: PoolKind::Mean,
//!     n_classes: 10,
//!     two_tower: false,
//! };
//! let device = Cpu::seed_from_u64(0);
//! device.enable_cache();
//! let mut store = ParamStore::new(device, 0);
//! let model = Transformer::build(config, &mut store)?;
//! let mut optimizer = Optimizer::new(OptimizerConfig::adamw(1e-4), &store)?;
//! let schedule = Schedule { kind: ScheduleKind::Constant, warmup_steps: 2000, total_steps: 100_000, min_lr: 0.0 };
//!
//! let (tokens, targets, lengths) = (vec![0usize; 2 * 2048], vec![3usize, 7], vec![1500usize, 2048]);
//! let inputs = Inputs { batch: 2, seq: 2048, lengths: &lengths, data: InputData::Tokens(&tokens) };
//! let logits = model.logits::<Cpu, OwnedTape<f32, Cpu>>(&store, &inputs, true)?;
//! let loss = Cpu::cross_entropy(logits, &targets, &[1.0, 1.0])?;
//! let factor = schedule.factor_at(optimizer.step, optimizer.config.lr);
//! let report = step::optimise(loss, &mut store, &mut optimizer, factor, Some(1.0))?;
//! println!("loss {} grad norm {}", report.loss, report.grad_norm);
//!
//! // Evaluation: no tape, no dropout.
//! let _eval = model.logits::<Cpu, NoneTape>(&store, &inputs, false)?;
//! checkpoint::save(std::path::Path::new("runs/x/last.safetensors"), &store, Some(&optimizer))?;
//! # Ok(())
//! # }
//! ```

pub mod allocator;
pub mod checkpoint;
pub mod error;
pub mod layers;
pub mod linalg;
pub mod losses;
pub mod models;
pub mod ops;
pub mod optim;
pub mod params;
pub mod parity;
pub mod schedule;
pub mod step;

pub use error::{EngineError, Result};
