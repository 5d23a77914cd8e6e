//! What every model does with its encoder's output: pool it over true lengths and classify
//! one sequence or (retrieval's two towers) a pair, or predict per position for
//! self-pretraining. Written once here; a model only says how it encodes.

use std::ops::Range;

use dfdx::prelude::*;

use crate::engine::error::{EngineError, Result};
use crate::engine::layers::encoder::Inputs;
use crate::engine::layers::heads::{pair_features, ClassifierHead, PredictionHead};
use crate::engine::layers::norm::{Norm, NormKind};
use crate::engine::layers::pool::{pool, PoolKind};
use crate::engine::layers::sequence::{NormPlacement, SequenceLayer};
use crate::engine::layers::{Ctx, Rows, Scope, Seq};
use crate::engine::ops::EngineDevice;
use crate::engine::params::ParamStore;

/// Width of the classifier's input: d_model, or 4·d_model for retrieval's pair features
/// [u, v, u − v, u ⊙ v].
pub(crate) fn head_inputs(d_model: usize, two_tower: bool) -> usize {
    if two_tower {
        4 * d_model
    } else {
        d_model
    }
}

/// Trainable scalars of what [`build_top`] creates, from the configuration alone.
pub(crate) fn top_parameter_count(
    placement: NormPlacement,
    d_model: usize,
    head_inputs: usize,
    classes: usize,
) -> usize {
    let final_norm = match placement {
        NormPlacement::Pre => Norm::parameter_count(d_model),
        NormPlacement::Post => 0,
    };
    final_norm + ClassifierHead::parameter_count(head_inputs, d_model, classes)
}

/// The final norm (pre-norm models only) and the classifier head every model ends with,
/// named `final_norm.*` and `head.*`.
pub(crate) fn build_top<D: EngineDevice>(
    root: &mut Scope<'_, D>,
    placement: NormPlacement,
    kind: NormKind,
    d_model: usize,
    head_inputs: usize,
    classes: usize,
) -> Result<(Option<Norm>, ClassifierHead)> {
    let final_norm = match placement {
        NormPlacement::Pre => Some(Norm::build(root.sub("final_norm"), kind, d_model)?),
        NormPlacement::Post => None,
    };
    let head = ClassifierHead::build(root.sub("head"), head_inputs, d_model, classes)?;
    Ok((final_norm, head))
}

/// The blocks in order, then the final norm (pre-norm models): how every model's `encode`
/// ends once its input is embedded.
pub(crate) fn run_blocks<D: EngineDevice, T: Tape<f32, D> + Merge<T>, B: SequenceLayer>(
    embedded: Seq<D, T>,
    blocks: &[B],
    final_norm: Option<&Norm>,
    ctx: &Ctx<'_, D>,
) -> Result<Seq<D, T>> {
    let mut x = embedded;
    for block in blocks {
        x = block.forward(x, ctx)?;
    }
    match final_norm {
        Some(norm) => norm.forward(x, ctx),
        None => Ok(x),
    }
}

/// Trainable scalars of the parameters whose store indices are in `ids`.
pub(crate) fn scalars_in<D: EngineDevice>(store: &ParamStore<D>, ids: &Range<usize>) -> usize {
    store
        .iter()
        .filter(|(id, _)| ids.contains(&id.0))
        .map(|(_, p)| p.numel())
        .sum()
}

pub trait SequenceClassifier {
    /// The contextual representation of every position, (batch, length, d_model).
    fn encode<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        params: &ParamStore<D>,
        inputs: &Inputs<'_>,
        train: bool,
    ) -> Result<Seq<D, T>>;

    fn pool_kind(&self) -> PoolKind;

    fn head(&self) -> &ClassifierHead;

    /// Retrieval: the head classifies the pair features of two separately encoded documents.
    fn two_tower(&self) -> bool;

    /// One pooled vector per example, (batch, d_model).
    fn pooled<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        params: &ParamStore<D>,
        inputs: &Inputs<'_>,
        train: bool,
    ) -> Result<Rows<D, T>> {
        let x = self.encode::<D, T>(params, inputs, train)?;
        let ctx = Ctx::new(params, train, inputs.lengths);
        Ok(pool(self.pool_kind(), x, &ctx))
    }

    /// Class logits, (batch, n_classes).
    fn logits<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        params: &ParamStore<D>,
        inputs: &Inputs<'_>,
        train: bool,
    ) -> Result<Rows<D, T>> {
        if self.two_tower() {
            return Err(EngineError::InvalidConfig(
                "a two-tower model classifies pairs: use `pair_logits`".into(),
            ));
        }
        let pooled = self.pooled::<D, T>(params, inputs, train)?;
        let ctx = Ctx::new(params, train, inputs.lengths);
        self.head().forward(pooled, &ctx)
    }

    /// Class logits of document pairs (retrieval), from [u, v, u − v, u ⊙ v].
    fn pair_logits<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        params: &ParamStore<D>,
        first: &Inputs<'_>,
        second: &Inputs<'_>,
        train: bool,
    ) -> Result<Rows<D, T>> {
        if !self.two_tower() || first.batch != second.batch {
            return Err(EngineError::InvalidConfig(
                "pair_logits needs a two-tower model and two batches of one size".into(),
            ));
        }
        let u = self.pooled::<D, T>(params, first, train)?;
        let v = self.pooled::<D, T>(params, second, train)?;
        let ctx = Ctx::new(params, train, first.lengths);
        self.head().forward(pair_features(u, v), &ctx)
    }

    /// Per-position outputs of a self-pretraining head (built with
    /// `PredictionHead::build(Scope::root(store).sub("pretrain_head"), d_model, outputs)`),
    /// (batch·length, outputs), row b·L + i for position i of example b.
    fn position_outputs<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        params: &ParamStore<D>,
        head: &PredictionHead,
        inputs: &Inputs<'_>,
        train: bool,
    ) -> Result<Rows<D, T>> {
        let x = self.encode::<D, T>(params, inputs, train)?;
        let ctx = Ctx::new(params, train, inputs.lengths);
        head.forward(x, &ctx)
    }
}

/// Implements [`SequenceClassifier`] for a model with an inherent `encode`, a `config` holding
/// `pool` and `two_tower`, and a `head`.
macro_rules! sequence_classifier {
    ($model:ty) => {
        impl $crate::engine::models::SequenceClassifier for $model {
            fn encode<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
                &self,
                params: &ParamStore<D>,
                inputs: &Inputs<'_>,
                train: bool,
            ) -> Result<Seq<D, T>> {
                <$model>::encode(self, params, inputs, train)
            }

            fn pool_kind(&self) -> $crate::engine::layers::pool::PoolKind {
                self.config.pool
            }

            fn head(&self) -> &$crate::engine::layers::heads::ClassifierHead {
                &self.head
            }

            fn two_tower(&self) -> bool {
                self.config.two_tower
            }
        }
    };
}

pub(crate) use sequence_classifier;
