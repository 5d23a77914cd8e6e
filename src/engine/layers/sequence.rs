//! The sequence-layer interface and the residual block around it.
//!
//! A token mixer maps (batch, length, d_model) to the same shape, reading true lengths from
//! the context. Attention and the state-space layers ([`super::ssm`]) are mixers; a new kind is
//! one more file and one more variant of [`Mixer`].

use dfdx::prelude::*;

use super::attention::MultiHeadAttention;
use super::feed_forward::FeedForward;
use super::norm::{Norm, NormKind};
use super::ssm::dlr::Dlr;
use super::ssm::lru::Lru;
use super::ssm::s4::S4;
use super::ssm::s4d::S4d;
use super::ssm::s5::S5;
use super::ssm::SsmLayer;
use super::{Ctx, Scope, Seq};
use crate::engine::error::Result;
use crate::engine::ops::EngineDevice;

/// The interface every sequence layer implements.
pub trait SequenceLayer {
    fn forward<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        x: Seq<D, T>,
        ctx: &Ctx<'_, D>,
    ) -> Result<Seq<D, T>>;
}

impl SequenceLayer for MultiHeadAttention {
    fn forward<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        x: Seq<D, T>,
        ctx: &Ctx<'_, D>,
    ) -> Result<Seq<D, T>> {
        MultiHeadAttention::forward(self, x, ctx)
    }
}

impl SequenceLayer for FeedForward {
    fn forward<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        x: Seq<D, T>,
        ctx: &Ctx<'_, D>,
    ) -> Result<Seq<D, T>> {
        FeedForward::forward(self, x, ctx)
    }
}

/// The token-mixing layers a block can hold.
#[derive(Clone, Debug)]
pub enum Mixer {
    Attention(MultiHeadAttention),
    S4(SsmLayer<S4>),
    S4d(SsmLayer<S4d>),
    Dlr(SsmLayer<Dlr>),
    Lru(SsmLayer<Lru>),
    S5(SsmLayer<S5>),
}

impl SequenceLayer for Mixer {
    fn forward<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        x: Seq<D, T>,
        ctx: &Ctx<'_, D>,
    ) -> Result<Seq<D, T>> {
        match self {
            Mixer::Attention(attention) => attention.forward(x, ctx),
            Mixer::S4(layer) => layer.forward(x, ctx),
            Mixer::S4d(layer) => layer.forward(x, ctx),
            Mixer::Dlr(layer) => layer.forward(x, ctx),
            Mixer::Lru(layer) => layer.forward(x, ctx),
            Mixer::S5(layer) => layer.forward(x, ctx),
        }
    }
}

/// The language's norm placement is the engine's.
pub use crate::spec::NormPlacement;

/// One sub-layer with its norm, dropout and residual connection.
#[derive(Clone, Debug)]
pub struct Residual<L> {
    pub norm: Norm,
    pub layer: L,
    pub placement: NormPlacement,
    pub dropout: f32,
}

impl<L: SequenceLayer> Residual<L> {
    pub fn build<D: EngineDevice>(
        scope: Scope<'_, D>,
        width: usize,
        layer: L,
        norm: NormKind,
        placement: NormPlacement,
        dropout: f32,
    ) -> Result<Self> {
        Ok(Residual {
            norm: Norm::build(scope, norm, width)?,
            layer,
            placement,
            dropout,
        })
    }

    pub fn forward<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        x: Seq<D, T>,
        ctx: &Ctx<'_, D>,
    ) -> Result<Seq<D, T>> {
        match self.placement {
            NormPlacement::Pre => {
                let branch = self
                    .layer
                    .forward(self.norm.forward(x.with_empty_tape(), ctx)?, ctx)?;
                D::add(x, ctx.dropout(branch, self.dropout))
            }
            NormPlacement::Post => {
                let branch = self.layer.forward(x.with_empty_tape(), ctx)?;
                self.norm
                    .forward(D::add(x, ctx.dropout(branch, self.dropout))?, ctx)
            }
        }
    }
}

/// A Transformer-style block: a mixer sub-layer then a feed-forward sub-layer.
#[derive(Clone, Debug)]
pub struct Block {
    pub mixer: Residual<Mixer>,
    pub ffn: Residual<FeedForward>,
}

impl SequenceLayer for Block {
    fn forward<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        x: Seq<D, T>,
        ctx: &Ctx<'_, D>,
    ) -> Result<Seq<D, T>> {
        let x = self.mixer.forward(x, ctx)?;
        self.ffn.forward(x, ctx)
    }
}
