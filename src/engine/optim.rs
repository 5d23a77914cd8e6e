//! Adam and AdamW over the parameter store, with per-group learning rates and weight decay.
//!
//! Adam (Kingma & Ba 2015, Alg. 1) adds an L2 term `λθ` to the gradient; AdamW (Loshchilov &
//! Hutter 2019, Alg. 2) decouples the decay: `θ ← θ − η·λ·θ` before the Adam step. The moments
//! live on the host so they can be saved beside the parameters and so the update is one
//! device-independent code path.

use dfdx::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::error::{EngineError, Result};
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

/// First and second moments of one parameter.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Moments {
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    /// Updates this parameter has received (bias correction is per parameter, as in PyTorch,
    /// so a parameter that skipped steps is not over-corrected).
    pub steps: u64,
}

#[derive(Clone, Debug)]
pub struct Optimizer {
    pub config: OptimizerConfig,
    pub(crate) moments: Vec<Moments>,
    /// Optimizer steps taken.
    pub step: u64,
}

/// Per-element hyper-parameters of one parameter's update.
#[derive(Clone, Copy)]
struct UpdateRule {
    lr: f32,
    weight_decay: f32,
    decoupled: bool,
    beta1: f32,
    beta2: f32,
    eps: f32,
    bias1: f32,
    bias2: f32,
}

impl UpdateRule {
    #[inline]
    fn apply(&self, theta: &mut f32, grad: f32, m: &mut f32, v: &mut f32) {
        let mut g = grad;
        if self.decoupled {
            *theta -= self.lr * self.weight_decay * *theta;
        } else {
            g += self.weight_decay * *theta;
        }
        *m = self.beta1 * *m + (1.0 - self.beta1) * g;
        *v = self.beta2 * *v + (1.0 - self.beta2) * g * g;
        let m_hat = *m / self.bias1;
        let v_hat = *v / self.bias2;
        *theta -= self.lr * m_hat / (v_hat.sqrt() + self.eps);
    }
}

impl Optimizer {
    pub fn new<D: Device<f32>>(config: OptimizerConfig, store: &ParamStore<D>) -> Self {
        let moments = store
            .iter()
            .map(|(_, p)| Moments {
                m: vec![0.0; p.numel()],
                v: vec![0.0; p.numel()],
                steps: 0,
            })
            .collect();
        Optimizer {
            config,
            moments,
            step: 0,
        }
    }

    pub fn moments(&self) -> &[Moments] {
        &self.moments
    }

    /// One update of every parameter that has a gradient. `lr_factor` is the schedule's
    /// multiplier for this step (`Schedule::factor_at`): a group's rate is its own `lr` or the
    /// optimizer's `lr × lr_scale`, times `lr_factor`.
    pub fn step<D: Device<f32>>(
        &mut self,
        store: &mut ParamStore<D>,
        grads: &ParamGrads,
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
            let rule = UpdateRule {
                lr: group.lr.unwrap_or(self.config.lr * group.lr_scale) * lr_factor,
                weight_decay: group.weight_decay.unwrap_or(self.config.weight_decay),
                decoupled: self.config.kind == OptimizerKind::AdamW,
                beta1: self.config.betas.0,
                beta2: self.config.betas.1,
                eps: self.config.eps,
                bias1: 1.0 - self.config.betas.0.powi(t),
                bias2: 1.0 - self.config.betas.1.powi(t),
            };
            let mut theta = store.values(id);
            const CHUNK: usize = 1 << 14;
            theta
                .par_chunks_mut(CHUNK)
                .zip(grad.par_chunks(CHUNK))
                .zip(moments.m.par_chunks_mut(CHUNK))
                .zip(moments.v.par_chunks_mut(CHUNK))
                .for_each(|(((theta, g), m), v)| {
                    for i in 0..theta.len() {
                        rule.apply(&mut theta[i], g[i], &mut m[i], &mut v[i]);
                    }
                });
            store.set_values(id, &theta)?;
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
        let mut opt = Optimizer::new(config, &store);
        let grads = ParamGrads {
            values: vec![Some(vec![0.5, 0.25])],
        };
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
        let mut opt = Optimizer::new(config, &store);
        // g + λθ = −0.5 + 1 = 0.5 > 0, so the step goes down although the raw gradient is < 0
        // (`torch.optim.Adam(lr=0.1, weight_decay=1.0)` gives 0.9 too).
        let grads = ParamGrads {
            values: vec![Some(vec![-0.5])],
        };
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
        let mut opt = Optimizer::new(OptimizerConfig::adamw(0.1), &store);
        let grads = ParamGrads {
            values: vec![Some(vec![1.0]), Some(vec![1.0]), None],
        };
        opt.step(&mut store, &grads, 0.5).unwrap();
        let expect_a = 1.0 * (1.0 - 0.05 * 0.01) - 0.05;
        assert!((store.values(a)[0] - expect_a).abs() < 1e-6);
        assert!((store.values(b)[0] - (1.0 - 0.005)).abs() < 1e-6);
        assert_eq!(store.values(c)[0], 1.0);
        assert_eq!(opt.moments()[2].steps, 0);
    }

    #[test]
    fn clipping_bounds_the_global_norm() {
        let mut grads = ParamGrads {
            values: vec![Some(vec![3.0]), None, Some(vec![4.0])],
        };
        let norm = grads.clip_global_norm(1.0);
        assert!((norm - 5.0).abs() < 1e-6);
        assert!((grads.global_norm() - 1.0).abs() < 1e-6);
        assert_eq!(grads.values[0], Some(vec![0.6]));
        let before = grads.clone();
        grads.clip_global_norm(10.0);
        assert_eq!(grads, before);
    }
}
