//! Point-wise non-linearities of the layers (after an SSM, inside a feed-forward network).

use dfdx::prelude::*;
use serde::{Deserialize, Serialize};

use super::Seq;
use crate::engine::error::Result;
use crate::engine::ops::EngineDevice;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Gelu,
    Relu,
    /// x·σ(x) (Ramachandran et al. 2017).
    Silu,
    None,
}

impl Activation {
    pub fn apply<D: EngineDevice, T: Tape<f32, D>>(self, x: Seq<D, T>) -> Result<Seq<D, T>> {
        Ok(match self {
            Activation::Gelu => D::gelu(x)?,
            Activation::Relu => x.relu(),
            Activation::Silu => x.with_empty_tape().sigmoid() * x,
            Activation::None => x,
        })
    }
}
