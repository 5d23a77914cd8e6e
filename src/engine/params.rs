//! The parameter store: every trainable tensor of a model, with run-time shapes.
//!
//! dfdx 0.13's `nn` modules and `Optimizer::update` need compile-time shapes, so the engine
//! keeps its own store (docs/ARCHITECTURE.md). Each parameter is a flat 1-D tensor plus its logical
//! shape, a dotted name (`layers.0.attn.q.weight`) and an optimisation group (learning-rate
//! multiplier or override, weight decay), so state-space parameters can get `ssm_lr` and no
//! decay. Layers ask for a *view* of a parameter, which is always `retaped` onto the caller's
//! tape type before any op touches it: an op applied to an untraced parameter would silently
//! lose its gradient (a known dfdx 0.13 trap).

use std::cell::{Cell, RefCell};

use dfdx::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

use super::error::{EngineError, Result};

/// Index of a parameter in its store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParamId(pub(crate) usize);

/// Index of an optimisation group in its store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GroupId(pub(crate) usize);

/// Index of a non-trainable state tensor (batch-norm running statistics) in its store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BufferId(pub(crate) usize);

/// Non-trainable state saved with the parameters. Its values live on the host and change
/// during training forward passes (hence the interior mutability: a forward pass only borrows
/// the store).
#[derive(Clone, Debug)]
pub(crate) struct Buffer {
    pub name: String,
    pub shape: Vec<usize>,
    values: RefCell<Vec<f32>>,
}

/// How a parameter's values are drawn when it is created.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    Zeros,
    Ones,
    Constant(f32),
    Normal {
        std: f32,
    },
    Uniform {
        bound: f32,
    },
    /// Glorot & Bengio (2010): U(±√(6 / (fan_in + fan_out))).
    XavierUniform {
        fan_in: usize,
        fan_out: usize,
    },
    /// LeCun normal as JAX draws it (`jax.nn.initializers.lecun_normal`): a normal truncated
    /// at ±2 standard deviations, rescaled so the variance is 1 / fan_in.
    LecunNormal {
        fan_in: usize,
    },
}

/// The standard deviation of N(0, 1) truncated to [−2, 2].
const TRUNCATED_STD: f32 = 0.879_625_7;

impl Init {
    fn sample(&self, n: usize, rng: &mut StdRng) -> Vec<f32> {
        match *self {
            Init::Zeros => vec![0.0; n],
            Init::Ones => vec![1.0; n],
            Init::Constant(c) => vec![c; n],
            Init::Normal { std } => {
                let normal = Normal::new(0.0f32, std).expect("std must be finite and >= 0");
                (0..n).map(|_| normal.sample(rng)).collect()
            }
            Init::Uniform { bound } => (0..n).map(|_| rng.gen_range(-bound..=bound)).collect(),
            Init::XavierUniform { fan_in, fan_out } => {
                let bound = (6.0 / (fan_in + fan_out) as f32).sqrt();
                Init::Uniform { bound }.sample(n, rng)
            }
            Init::LecunNormal { fan_in } => {
                let scale = (1.0 / fan_in.max(1) as f32).sqrt() / TRUNCATED_STD;
                let normal = Normal::new(0.0f32, 1.0).expect("unit normal");
                (0..n)
                    .map(|_| loop {
                        let z = normal.sample(rng);
                        if z.abs() <= 2.0 {
                            break z * scale;
                        }
                    })
                    .collect()
            }
        }
    }
}

/// Optimisation settings shared by a set of parameters. `None` means "the optimizer's value".
#[derive(Clone, Debug, PartialEq)]
pub struct ParamGroup {
    pub name: String,
    /// Multiplies the scheduled learning rate (ignored when `lr` is set).
    pub lr_scale: f32,
    /// A fixed learning rate that replaces the scheduled one (e.g. S4's `ssm_lr`); it still
    /// follows the warm-up and decay shape of the schedule.
    pub lr: Option<f32>,
    /// Overrides the optimizer's weight decay (e.g. 0 for norms, biases and SSM parameters).
    pub weight_decay: Option<f32>,
}

impl ParamGroup {
    pub fn new(name: impl Into<String>) -> Self {
        ParamGroup {
            name: name.into(),
            lr_scale: 1.0,
            lr: None,
            weight_decay: None,
        }
    }

    pub(crate) fn with_weight_decay(mut self, weight_decay: f32) -> Self {
        self.weight_decay = Some(weight_decay);
        self
    }

    pub(crate) fn with_lr(mut self, lr: f32) -> Self {
        self.lr = Some(lr);
        self
    }
}

/// One trainable tensor.
#[derive(Clone, Debug)]
pub struct Param<D: Storage<f32>> {
    pub name: String,
    pub shape: Vec<usize>,
    pub init: Init,
    pub group: GroupId,
    pub(crate) tensor: Tensor<(usize,), f32, D>,
}

impl<D: Storage<f32>> Param<D> {
    pub(crate) fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// All parameters of one model on one device.
#[derive(Debug)]
pub struct ParamStore<D: Storage<f32>> {
    device: D,
    params: Vec<Param<D>>,
    groups: Vec<ParamGroup>,
    buffers: Vec<Buffer>,
    /// Which parameters a forward pass has viewed since the last `gradients` call.
    used: Vec<Cell<bool>>,
    rng: StdRng,
}

/// The group every parameter gets unless its layer asks otherwise.
pub(crate) const DEFAULT_GROUP: GroupId = GroupId(0);
/// Norm scales/shifts and biases: trained without weight decay, as is customary for AdamW.
pub(crate) const NO_DECAY_GROUP: GroupId = GroupId(1);

impl<D: Device<f32>> ParamStore<D> {
    /// An empty store whose initial values are drawn from `seed`.
    pub fn new(device: D, seed: u64) -> Self {
        ParamStore {
            device,
            params: Vec::new(),
            groups: vec![
                ParamGroup::new("default"),
                ParamGroup::new("no_decay").with_weight_decay(0.0),
            ],
            used: Vec::new(),
            buffers: Vec::new(),
            rng: StdRng::seed_from_u64(seed),
        }
    }

    pub fn device(&self) -> &D {
        &self.device
    }

    pub(crate) fn add_group(&mut self, group: ParamGroup) -> GroupId {
        self.groups.push(group);
        GroupId(self.groups.len() - 1)
    }

    pub fn group(&self, id: GroupId) -> &ParamGroup {
        &self.groups[id.0]
    }

    pub fn groups(&self) -> &[ParamGroup] {
        &self.groups
    }

    /// Creates a parameter; names must be unique within the store.
    pub fn add(
        &mut self,
        name: impl Into<String>,
        shape: &[usize],
        init: Init,
        group: GroupId,
    ) -> Result<ParamId> {
        let name = name.into();
        self.check_new_name(&name)?;
        let numel = shape.iter().product();
        let values = init.sample(numel, &mut self.rng);
        let tensor = self
            .device
            .try_tensor_from_vec(values, (numel,))
            .map_err(EngineError::device)?;
        self.params.push(Param {
            name,
            shape: shape.to_vec(),
            init,
            group,
            tensor,
        });
        self.used.push(Cell::new(false));
        Ok(ParamId(self.params.len() - 1))
    }

    /// `n` values drawn from `init` with the store's seeded generator, for initialisations
    /// that transform draws of one shape into a parameter of another (S5's B̃ = V⁻¹·B).
    pub fn draw(&mut self, init: Init, n: usize) -> Vec<f32> {
        init.sample(n, &mut self.rng)
    }

    fn check_new_name(&self, name: &str) -> Result<()> {
        if self.params.iter().any(|p| p.name == name) || self.buffers.iter().any(|b| b.name == name)
        {
            return Err(EngineError::DuplicateParameter {
                name: name.to_string(),
            });
        }
        Ok(())
    }

    /// Creates a non-trainable state tensor with initial `values`.
    pub(crate) fn add_buffer(
        &mut self,
        name: impl Into<String>,
        shape: &[usize],
        values: Vec<f32>,
    ) -> Result<BufferId> {
        let name = name.into();
        self.check_new_name(&name)?;
        let numel: usize = shape.iter().product();
        if values.len() != numel {
            return Err(EngineError::WrongSize {
                name,
                expected: numel,
                actual: values.len(),
            });
        }
        self.buffers.push(Buffer {
            name,
            shape: shape.to_vec(),
            values: RefCell::new(values),
        });
        Ok(BufferId(self.buffers.len() - 1))
    }

    pub(crate) fn buffers(&self) -> impl Iterator<Item = (BufferId, &Buffer)> {
        self.buffers
            .iter()
            .enumerate()
            .map(|(i, b)| (BufferId(i), b))
    }

    pub(crate) fn buffer_values(&self, id: BufferId) -> Vec<f32> {
        self.buffers[id.0].values.borrow().clone()
    }

    /// Replaces a buffer's values (a training forward pass updating running statistics).
    pub(crate) fn set_buffer(&self, id: BufferId, values: &[f32]) -> Result<()> {
        let buffer = &self.buffers[id.0];
        let mut current = buffer.values.borrow_mut();
        if values.len() != current.len() {
            return Err(EngineError::WrongSize {
                name: buffer.name.clone(),
                expected: current.len(),
                actual: values.len(),
            });
        }
        current.copy_from_slice(values);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.params.len()
    }

    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    pub(crate) fn param(&self, id: ParamId) -> &Param<D> {
        &self.params[id.0]
    }

    pub fn iter(&self) -> impl Iterator<Item = (ParamId, &Param<D>)> {
        self.params.iter().enumerate().map(|(i, p)| (ParamId(i), p))
    }

    pub fn find(&self, name: &str) -> Option<ParamId> {
        self.params.iter().position(|p| p.name == name).map(ParamId)
    }

    /// Total number of trainable scalars.
    pub fn parameter_count(&self) -> usize {
        self.params.iter().map(Param::numel).sum()
    }

    /// The flat parameter on tape type `T` (a fresh, empty tape that merges into the
    /// caller's when the view meets a traced tensor).
    pub fn flat<T: Tape<f32, D>>(&self, id: ParamId) -> Tensor<(usize,), f32, D, T> {
        self.used[id.0].set(true);
        self.params[id.0].tensor.retaped::<T>()
    }

    /// A rank-1 parameter.
    pub(crate) fn vector<T: Tape<f32, D>>(&self, id: ParamId) -> Tensor<(usize,), f32, D, T> {
        debug_assert_eq!(self.params[id.0].shape.len(), 1);
        self.flat(id)
    }

    /// A rank-2 parameter, reshaped after retaping so its gradient reaches the flat tensor.
    pub(crate) fn matrix<T: Tape<f32, D>>(&self, id: ParamId) -> Tensor<(usize, usize), f32, D, T> {
        let p = &self.params[id.0];
        assert_eq!(p.shape.len(), 2, "parameter `{}` is not a matrix", p.name);
        self.flat::<T>(id).reshape_like(&(p.shape[0], p.shape[1]))
    }

    /// The parameter's values on the host.
    pub fn values(&self, id: ParamId) -> Vec<f32> {
        self.params[id.0].tensor.as_vec()
    }

    /// Overwrites a parameter in place (its identity, hence its gradient slot, is kept).
    pub(crate) fn set_values(&mut self, id: ParamId, values: &[f32]) -> Result<()> {
        let p = &mut self.params[id.0];
        if values.len() != p.numel() {
            return Err(EngineError::WrongSize {
                name: p.name.clone(),
                expected: p.numel(),
                actual: values.len(),
            });
        }
        p.tensor.copy_from(values);
        Ok(())
    }

    /// The parameter's tensor on its device.
    pub fn tensor(&self, id: ParamId) -> &Tensor<(usize,), f32, D> {
        &self.params[id.0].tensor
    }

    /// Replaces a parameter's tensor with new values of the same length on the same device
    /// (an optimizer step): no copy through the host.
    pub fn replace(&mut self, id: ParamId, tensor: Tensor<(usize,), f32, D>) -> Result<()> {
        let p = &mut self.params[id.0];
        if tensor.shape().0 != p.numel() {
            return Err(EngineError::WrongSize {
                name: p.name.clone(),
                expected: p.numel(),
                actual: tensor.shape().0,
            });
        }
        p.tensor = tensor;
        Ok(())
    }

    /// Each parameter's gradient, on the device; `None` for a parameter that no forward pass
    /// has viewed since the last call (PyTorch semantics: an unused parameter is left
    /// untouched by the optimizer, neither decayed nor moved by stale moments).
    pub(crate) fn gradients(&self, grads: &mut Gradients<f32, D>) -> Result<ParamGrads<D>> {
        let mut values = Vec::with_capacity(self.params.len());
        for (p, used) in self.params.iter().zip(&self.used) {
            if used.replace(false) {
                grads
                    .try_alloc_for(&p.tensor)
                    .map_err(EngineError::device)?;
                values.push(Some(grads.get(&p.tensor)));
            } else {
                values.push(None);
            }
        }
        Ok(ParamGrads { values })
    }
}

/// Gradients aligned with the store's parameters, on the parameters' device.
#[derive(Clone, Debug)]
pub struct ParamGrads<D: Storage<f32>> {
    pub values: Vec<Option<Tensor<(usize,), f32, D>>>,
}

impl<D: Device<f32>> ParamGrads<D> {
    /// Gradients given as host values (tests, and callers that computed them elsewhere).
    #[cfg(test)]
    pub(crate) fn from_host(device: &D, values: Vec<Option<Vec<f32>>>) -> Self {
        ParamGrads {
            values: values
                .into_iter()
                .map(|g| g.map(|g| device.tensor_from_vec(g.clone(), (g.len(),))))
                .collect(),
        }
    }

    /// The gradients copied to the host.
    #[cfg(test)]
    pub(crate) fn to_host(&self) -> Vec<Option<Vec<f32>>> {
        self.values
            .iter()
            .map(|g| g.as_ref().map(|g| g.as_vec()))
            .collect()
    }

    /// √(Σ g²) over every parameter, formed on the device so one number crosses to the host.
    /// It is computed as A·√(Σ (g/A)²) with A the largest |g|: squaring in f32 overflows from
    /// |g| ≈ 1.8·10¹⁹, far below a norm f32 still holds. An infinite or NaN gradient gives a
    /// non-finite norm, which the step reports as divergence.
    pub(crate) fn global_norm(&self) -> Result<f32> {
        let grads: Vec<&Tensor<(usize,), f32, D>> = self.values.iter().flatten().collect();
        let fold = |acc: Option<Tensor<(), f32, D>>,
                    x: Tensor<(), f32, D>,
                    add: bool|
         -> Result<Option<Tensor<(), f32, D>>> {
            Ok(Some(match acc {
                None => x,
                Some(a) if add => a.try_add(x).map_err(EngineError::device)?,
                Some(a) => a.try_maximum(x).map_err(EngineError::device)?,
            }))
        };
        let mut largest = None;
        for g in &grads {
            let m = (*g).clone().try_abs().and_then(|a| a.try_max::<(), _>());
            largest = fold(largest, m.map_err(EngineError::device)?, false)?;
        }
        let Some(largest) = largest else {
            return Ok(0.0);
        };
        // All-zero gradients: divide by the smallest normal number instead of 0.
        let scale = largest
            .try_clamp(f32::MIN_POSITIVE, f32::INFINITY)
            .map_err(EngineError::device)?;
        let mut total = None;
        for g in &grads {
            let n = g.shape().0;
            let squares = scale
                .clone()
                .try_broadcast_like::<(usize,), Axis<0>>(&(n,))
                .and_then(|s| (*g).clone().try_div(s))
                .and_then(|x| x.try_square())
                .and_then(|x| x.try_sum::<(), _>());
            total = fold(total, squares.map_err(EngineError::device)?, true)?;
        }
        let norm = total
            .expect("one gradient at least")
            .try_sqrt()
            .and_then(|r| r.try_mul(scale))
            .map_err(EngineError::device)?;
        Ok(norm.as_vec()[0])
    }

    /// Rescales every gradient so the global norm is at most `max_norm` (Pascanu et al. 2013);
    /// returns the norm before clipping.
    pub(crate) fn clip_global_norm(&mut self, max_norm: f32) -> Result<f32> {
        let norm = self.global_norm()?;
        if norm > max_norm && norm > 0.0 {
            let scale = max_norm / norm;
            for g in self.values.iter_mut().flatten() {
                *g = g.clone().try_mul(scale).map_err(EngineError::device)?;
            }
        }
        Ok(norm)
    }
}

#[cfg(test)]
mod tests;
