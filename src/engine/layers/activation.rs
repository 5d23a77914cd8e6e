//! Point-wise non-linearities of the layers (after an SSM, inside a feed-forward network).

use dfdx::prelude::*;

use super::Seq;
use crate::engine::error::Result;
use crate::engine::ops::pointwise::Pointwise;
use crate::engine::ops::EngineDevice;

/// The language's activations are the engine's: one type, its words in the spec.
pub use crate::spec::Activation;

impl Activation {
    /// The fused kernels' form of the function (none for the identity), for the projections
    /// that apply it as their prologue.
    pub(crate) fn pointwise(self) -> Option<Pointwise> {
        match self {
            Activation::Gelu => Some(Pointwise::Gelu),
            Activation::Relu => Some(Pointwise::Relu),
            Activation::Silu => Some(Pointwise::Silu),
            Activation::None => None,
        }
    }

    pub(crate) fn apply<D: EngineDevice, T: Tape<f32, D>>(self, x: Seq<D, T>) -> Result<Seq<D, T>> {
        Ok(match self {
            Activation::Gelu => D::gelu(x)?,
            Activation::Relu => x.relu(),
            Activation::Silu => D::silu(x)?,
            Activation::None => x,
        })
    }
}
