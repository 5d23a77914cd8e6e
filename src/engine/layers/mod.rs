//! Layers built on the parameter store. Every layer is plain data (parameter ids and sizes);
//! its `forward` is generic over the device and over the tape, so one code path serves
//! training (`OwnedTape`) and evaluation (`NoneTape`).
//!
//! Sequence layers share one interface: input and output are `(batch, length, d_model)` with
//! the true length of each example in [`Ctx::lengths`]; see [`sequence::SequenceLayer`].

pub mod activation;
pub mod attention;
pub mod encoder;
pub mod feed_forward;
pub mod heads;
pub mod linear;
pub mod mega;
pub mod norm;
pub mod pool;
pub mod position;
pub mod sequence;
pub mod ssm;

use dfdx::prelude::*;

use super::error::Result;
use super::ops::EngineDevice;
use super::params::{BufferId, GroupId, Init, ParamId, ParamStore};

/// Activations of a sequence model: (batch, length, width).
pub(crate) type Seq<D, T> = Tensor<(usize, usize, usize), f32, D, T>;
/// Per-example or per-row activations: (rows, width).
pub(crate) type Rows<D, T> = Tensor<(usize, usize), f32, D, T>;

/// What a forward pass needs besides its input.
pub struct Ctx<'a, D: EngineDevice> {
    pub params: &'a ParamStore<D>,
    /// Dropout is active only in training.
    pub train: bool,
    /// True (unpadded) length of each example of the batch.
    pub lengths: &'a [usize],
}

impl<'a, D: EngineDevice> Ctx<'a, D> {
    pub fn new(params: &'a ParamStore<D>, train: bool, lengths: &'a [usize]) -> Self {
        Ctx {
            params,
            train,
            lengths,
        }
    }

    pub fn device(&self) -> &D {
        self.params.device()
    }

    /// Whether dropout with probability `p` changes anything: only in training, and p > 0.
    pub fn drops(&self, p: f32) -> bool {
        self.train && p > 0.0
    }

    /// Dropout with probability `p` in training, the identity otherwise.
    pub fn dropout<S: Shape, T: Tape<f32, D>>(
        &self,
        x: Tensor<S, f32, D, T>,
        p: f32,
    ) -> Tensor<S, f32, D, T> {
        if self.drops(p) {
            x.dropout(p)
        } else {
            x
        }
    }
}

/// Creates parameters under a dotted name prefix (`layers.0.attn`).
pub struct Scope<'a, D: EngineDevice> {
    store: &'a mut ParamStore<D>,
    prefix: String,
}

impl<'a, D: EngineDevice> Scope<'a, D> {
    pub fn root(store: &'a mut ParamStore<D>) -> Self {
        Scope {
            store,
            prefix: String::new(),
        }
    }

    /// A child scope `prefix.name`.
    pub(crate) fn sub(&mut self, name: impl std::fmt::Display) -> Scope<'_, D> {
        let prefix = if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        };
        Scope {
            store: &mut *self.store,
            prefix,
        }
    }

    pub(crate) fn param(
        &mut self,
        name: &str,
        shape: &[usize],
        init: Init,
        group: GroupId,
    ) -> Result<ParamId> {
        let full = if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        };
        self.store.add(full, shape, init, group)
    }

    /// A non-trainable state tensor `prefix.name`, saved with the parameters.
    pub(crate) fn buffer(&mut self, name: &str, values: Vec<f32>) -> Result<BufferId> {
        let full = if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        };
        let shape = [values.len()];
        self.store.add_buffer(full, &shape, values)
    }

    /// Values drawn from the store's generator without creating a parameter.
    pub fn draw(&mut self, init: Init, n: usize) -> Vec<f32> {
        self.store.draw(init, n)
    }

    pub fn store(&self) -> &ParamStore<D> {
        self.store
    }
}
