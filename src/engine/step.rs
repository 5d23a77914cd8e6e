//! One optimisation step after a forward pass: backward, gradient clipping, optimizer update.
//!
//! Everything stays on the loss's device: the gradients, their norm and the update. Two
//! numbers cross to the host per step, the loss and the gradient norm, which the step reports
//! and which decide whether the run diverged.

use dfdx::prelude::*;

use super::error::{EngineError, Result};
use super::ops::EngineDevice;
use super::optim::Optimizer;
use super::params::ParamStore;

/// What a step reports to the training loop.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepReport {
    pub loss: f32,
    /// Global gradient norm before clipping.
    pub grad_norm: f32,
}

/// Back-propagates `loss`, clips the global gradient norm to `clip` (if given) and updates
/// the parameters with the schedule's multiplier `lr_factor`. A non-finite loss or gradient
/// norm is an error and leaves the parameters untouched.
pub fn optimise<D: EngineDevice>(
    loss: Tensor<(), f32, D, OwnedTape<f32, D>>,
    store: &mut ParamStore<D>,
    optimizer: &mut Optimizer<D>,
    lr_factor: f32,
    clip: Option<f32>,
) -> Result<StepReport> {
    let value = loss.as_vec()[0];
    let mut grads = loss.try_backward().map_err(EngineError::device)?;
    let mut param_grads = store.gradients(&mut grads)?;
    drop(grads);
    let grad_norm = match clip {
        Some(max_norm) => param_grads.clip_global_norm(max_norm)?,
        None => param_grads.global_norm()?,
    };
    if !value.is_finite() || !grad_norm.is_finite() {
        return Err(EngineError::Diverged {
            loss: value,
            grad_norm,
        });
    }
    optimizer.step(store, &param_grads, lr_factor)?;
    Ok(StepReport {
        loss: value,
        grad_norm,
    })
}
