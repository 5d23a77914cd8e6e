//! Adam and AdamW over the parameter store, with per-group learning rates and weight decay.
//!
//! Adam (Kingma & Ba 2015, Alg. 1) adds an L2 term `λθ` to the gradient; AdamW (Loshchilov &
//! Hutter 2019, Alg. 2) decouples the decay: `θ ← θ − η·λ·θ` before the Adam step (the
//! update itself is the engine op [`EngineDevice::adam`], see `ops/adam.rs`). The moments live
//! on the parameters' device, so a step on a GPU moves no parameter, gradient or moment to
//! the host; checkpoints copy them out when they are saved.

use dfdx::prelude::*;
use serde::{Deserialize, Serialize};

use super::error::{EngineError, Result};
use super::ops::adam::AdamRule;
use super::ops::EngineDevice;
use super::params::{ParamGrads, ParamStore};

/// The language's optimizers are the engine's.
pub use crate::spec::OptimizerKind;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    pub kind: OptimizerKind,
    /// Peak learning rate (the schedule multiplies it).
    pub lr: f32,
    pub betas: (f32, f32),
    pub eps: f32,
    pub weight_decay: f32,
}

impl OptimizerConfig {
    /// PyTorch's `AdamW` defaults.
    pub fn adamw(lr: f32) -> Self {
        OptimizerConfig {
            kind: OptimizerKind::AdamW,
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

/// First and second moments of one parameter, on its device.
#[derive(Clone, Debug)]
pub(crate) struct Moments<D: Storage<f32>> {
    pub m: Tensor<(usize,), f32, D>,
    pub v: Tensor<(usize,), f32, D>,
    /// Updates this parameter has received (bias correction is per parameter, as in PyTorch,
    /// so a parameter that skipped steps is not over-corrected).
    pub steps: u64,
}

#[derive(Clone, Debug)]
pub struct Optimizer<D: Storage<f32>> {
    pub config: OptimizerConfig,
    pub(crate) moments: Vec<Moments<D>>,
    /// Optimizer steps taken.
    pub step: u64,
}

impl<D: Storage<f32>> Optimizer<D> {
    pub(crate) fn moments(&self) -> &[Moments<D>] {
        &self.moments
    }
}

impl<D: EngineDevice> Optimizer<D> {
    pub fn new(config: OptimizerConfig, store: &ParamStore<D>) -> Result<Self> {
        let moments = store
            .iter()
            .map(|(_, p)| -> Result<Moments<D>> {
                let zeros = || {
                    store
                        .device()
                        .try_zeros_like(&(p.numel(),))
                        .map_err(EngineError::device)
                };
                Ok(Moments {
                    m: zeros()?,
                    v: zeros()?,
                    steps: 0,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Optimizer {
            config,
            moments,
            step: 0,
        })
    }

    /// One update of every parameter that has a gradient. `lr_factor` is the schedule's
    /// multiplier for this step (`Schedule::factor_at`): a group's rate is its own `lr` or the
    /// optimizer's `lr × lr_scale`, times `lr_factor`.
    pub fn step(
        &mut self,
        store: &mut ParamStore<D>,
        grads: &ParamGrads<D>,
        lr_factor: f32,
    ) -> Result<()> {
        if grads.values.len() != store.len() || self.moments.len() != store.len() {
            return Err(EngineError::ShapeMismatch {
                op: "optimizer step",
                detail: format!(
                    "{} gradients and {} moment sets for {} parameters",
                    grads.values.len(),
                    self.moments.len(),
                    store.len()
                ),
            });
        }
        let ids: Vec<_> = store.iter().map(|(id, _)| id).collect();
        for (id, (grad, moments)) in ids
            .into_iter()
            .zip(grads.values.iter().zip(&mut self.moments))
        {
            let Some(grad) = grad else { continue };
            let group = store.group(store.param(id).group).clone();
            moments.steps += 1;
            let t = moments.steps as i32;
            let rule = AdamRule {
                lr: group.lr.unwrap_or(self.config.lr * group.lr_scale) * lr_factor,
                weight_decay: group.weight_decay.unwrap_or(self.config.weight_decay),
                decoupled: self.config.kind == OptimizerKind::AdamW,
                beta1: self.config.betas.0,
                beta2: self.config.betas.1,
                eps: self.config.eps,
                bias1: 1.0 - self.config.betas.0.powi(t),
                bias2: 1.0 - self.config.betas.1.powi(t),
            };
            let (theta, m, v) = D::adam(
                store.tensor(id).clone(),
                grad.clone(),
                moments.m.clone(),
                moments.v.clone(),
                &rule,
            )?;
            store.replace(id, theta)?;
            moments.m = m;
            moments.v = v;
        }
        self.step += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::params::{Init, ParamGroup, DEFAULT_GROUP};

    fn store_with(values: &[f32]) -> (ParamStore<Cpu>, crate::engine::params::ParamId) {
        let mut store = ParamStore::new(Cpu::default(), 0);
        let id = store
            .add("w", &[values.len()], Init::Zeros, DEFAULT_GROUP)
            .unwrap();
        store.set_values(id, values).unwrap();
        (store, id)
    }

    /// w = [1, −2], two steps of gradient [0.5, 0.25] with lr 0.1 and weight decay 0.5: the
    /// values follow from Alg. 2 by hand and match `torch.optim.AdamW` (2.15: [0.85, −2.0],
    /// then [0.7075, −2.0]).
    #[test]
    fn adamw_matches_the_decoupled_update() {
        let (mut store, id) = store_with(&[1.0, -2.0]);
        let config = OptimizerConfig {
            weight_decay: 0.5,
            ..OptimizerConfig::adamw(0.1)
        };
        let mut opt = Optimizer::new(config, &store).unwrap();
        let grads = ParamGrads::from_host(store.device(), vec![Some(vec![0.5, 0.25])]);
        opt.step(&mut store, &grads, 1.0).unwrap();
        // Step 1: θ(1 − ηλ) − η·sign(g) (m̂/√v̂ = ±1 up to eps).
        let w = store.values(id);
        assert!((w[0] - (1.0 * 0.95 - 0.1)).abs() < 1e-6, "{w:?}");
        assert!((w[1] - (-2.0 * 0.95 - 0.1)).abs() < 1e-6, "{w:?}");
        opt.step(&mut store, &grads, 1.0).unwrap();
        let w2 = store.values(id);
        assert!((w2[0] - (w[0] * 0.95 - 0.1)).abs() < 1e-6, "{w2:?}");
    }

    #[test]
    fn adam_adds_l2_to_the_gradient() {
        let (mut store, id) = store_with(&[1.0]);
        let config = OptimizerConfig {
            kind: OptimizerKind::Adam,
            weight_decay: 1.0,
            ..OptimizerConfig::adamw(0.1)
        };
        let mut opt = Optimizer::new(config, &store).unwrap();
        // g + λθ = −0.5 + 1 = 0.5 > 0, so the step goes down although the raw gradient is < 0
        // (`torch.optim.Adam(lr=0.1, weight_decay=1.0)` gives 0.9 too).
        let grads = ParamGrads::from_host(store.device(), vec![Some(vec![-0.5])]);
        opt.step(&mut store, &grads, 1.0).unwrap();
        assert!((store.values(id)[0] - 0.9).abs() < 1e-6);
    }

    #[test]
    fn groups_override_rate_and_decay_and_missing_gradients_skip() {
        let mut store = ParamStore::new(Cpu::default(), 0);
        let ssm = store.add_group(ParamGroup::new("ssm").with_lr(0.01).with_weight_decay(0.0));
        let a = store.add("a", &[1], Init::Ones, DEFAULT_GROUP).unwrap();
        let b = store.add("b", &[1], Init::Ones, ssm).unwrap();
        let c = store.add("c", &[1], Init::Ones, DEFAULT_GROUP).unwrap();
        let mut opt = Optimizer::new(OptimizerConfig::adamw(0.1), &store).unwrap();
        let grads =
            ParamGrads::from_host(store.device(), vec![Some(vec![1.0]), Some(vec![1.0]), None]);
        opt.step(&mut store, &grads, 0.5).unwrap();
        let expect_a = 1.0 * (1.0 - 0.05 * 0.01) - 0.05;
        assert!((store.values(a)[0] - expect_a).abs() < 1e-6);
        assert!((store.values(b)[0] - (1.0 - 0.005)).abs() < 1e-6);
        assert_eq!(store.values(c)[0], 1.0);
        assert_eq!(opt.moments()[2].steps, 0);
    }

    #[test]
    fn clipping_bounds_the_global_norm() {
        let dev = Cpu::default();
        let mut grads = ParamGrads::from_host(&dev, vec![Some(vec![3.0]), None, Some(vec![4.0])]);
        let norm = grads.clip_global_norm(1.0).unwrap();
        assert!((norm - 5.0).abs() < 1e-6);
        assert!((grads.global_norm().unwrap() - 1.0).abs() < 1e-6);
        assert_eq!(grads.to_host()[0], Some(vec![0.6]));
        let before = grads.to_host();
        grads.clip_global_norm(10.0).unwrap();
        assert_eq!(grads.to_host(), before);
        assert_eq!(
            ParamGrads::<Cpu>::from_host(&dev, vec![None])
                .global_norm()
                .unwrap(),
            0.0
        );
        let zeros = ParamGrads::from_host(&dev, vec![Some(vec![0.0; 3])]);
        assert_eq!(zeros.global_norm().unwrap(), 0.0);
        // Squares of 3·10²⁰ overflow f32; the norm 5·10²⁰ does not.
        let huge = ParamGrads::from_host(&dev, vec![Some(vec![3e20]), Some(vec![-4e20])]);
        let norm = huge.global_norm().unwrap();
        assert!((norm / 5e20 - 1.0).abs() < 1e-6, "{norm}");
        let broken = ParamGrads::from_host(&dev, vec![Some(vec![1.0, f32::INFINITY])]);
        assert!(!broken.global_norm().unwrap().is_finite());
        let nan = ParamGrads::from_host(&dev, vec![Some(vec![f32::NAN, 1.0])]);
        assert!(!nan.global_norm().unwrap().is_finite());
    }
}
