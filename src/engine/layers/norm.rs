//! Normalisation layers: layer norm over the model width, batch norm per channel over the
//! true positions of a batch (γ = 1, β = 0 at start, no weight decay).

use dfdx::prelude::*;

use super::{Ctx, Scope, Seq};
use crate::engine::error::Result;
use crate::engine::ops::EngineDevice;
use crate::engine::params::{BufferId, Init, ParamId, NO_DECAY_GROUP};

/// PyTorch's `nn.LayerNorm` default.
pub(crate) const LAYER_NORM_EPS: f64 = 1e-5;

#[derive(Clone, Debug)]
pub struct LayerNorm {
    pub gamma: ParamId,
    pub beta: ParamId,
    pub width: usize,
}

impl LayerNorm {
    pub fn build<D: EngineDevice>(mut scope: Scope<'_, D>, width: usize) -> Result<Self> {
        Ok(LayerNorm {
            gamma: scope.param("weight", &[width], Init::Ones, NO_DECAY_GROUP)?,
            beta: scope.param("bias", &[width], Init::Zeros, NO_DECAY_GROUP)?,
            width,
        })
    }

    pub fn parameter_count(width: usize) -> usize {
        2 * width
    }

    pub fn forward<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        x: Seq<D, T>,
        ctx: &Ctx<'_, D>,
    ) -> Result<Seq<D, T>> {
        let shape = *x.shape();
        let rows = x.reshape_like(&(shape.0 * shape.1, shape.2));
        let gamma = ctx.params.vector::<T>(self.gamma);
        let beta = ctx.params.vector::<T>(self.beta);
        Ok(D::layer_norm(rows, gamma, beta, LAYER_NORM_EPS)?.reshape_like(&shape))
    }
}

/// PyTorch's `nn.BatchNorm1d` defaults.
pub(crate) const BATCH_NORM_EPS: f64 = 1e-5;
pub(crate) const BATCH_NORM_MOMENTUM: f32 = 0.1;

/// The language's norm kinds are the engine's.
pub use crate::spec::NormKind;

/// Batch normalisation per channel (Ioffe & Szegedy 2015), over every true (unpadded) position
/// of the batch: in training y = γ(x − μ_B)/√(σ²_B + ε) + β with the batch statistics, which
/// also update running estimates (momentum 0.1, unbiased variance, as PyTorch); in evaluation
/// the running estimates replace them. Composed from dfdx ops, so the gradient flows through
/// μ_B and σ²_B.
#[derive(Clone, Debug)]
pub struct BatchNorm {
    pub gamma: ParamId,
    pub beta: ParamId,
    pub running_mean: BufferId,
    pub running_var: BufferId,
    pub width: usize,
}

impl BatchNorm {
    pub fn build<D: EngineDevice>(mut scope: Scope<'_, D>, width: usize) -> Result<Self> {
        Ok(BatchNorm {
            gamma: scope.param("weight", &[width], Init::Ones, NO_DECAY_GROUP)?,
            beta: scope.param("bias", &[width], Init::Zeros, NO_DECAY_GROUP)?,
            running_mean: scope.buffer("running_mean", vec![0.0; width])?,
            running_var: scope.buffer("running_var", vec![1.0; width])?,
            width,
        })
    }

    pub fn forward<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        x: Seq<D, T>,
        ctx: &Ctx<'_, D>,
    ) -> Result<Seq<D, T>> {
        let shape = *x.shape();
        let (batch, seq, width) = shape;
        let rows_shape = (batch * seq, width);
        let rows = x.reshape_like(&rows_shape);
        let dev = ctx.device().clone();
        let broadcast =
            |v: Tensor<(usize,), f32, D, T>| v.broadcast_like::<_, Axis<0>>(&rows_shape);
        let gamma = broadcast(ctx.params.vector::<T>(self.gamma));
        let beta = broadcast(ctx.params.vector::<T>(self.beta));
        if !ctx.train {
            let mean = dev.tensor_from_vec(ctx.params.buffer_values(self.running_mean), (width,));
            let rstd: Vec<f32> = ctx
                .params
                .buffer_values(self.running_var)
                .iter()
                .map(|v| 1.0 / (v + BATCH_NORM_EPS as f32).sqrt())
                .collect();
            let rstd = dev
                .tensor_from_vec(rstd, (width,))
                .broadcast_like::<_, Axis<0>>(&rows_shape);
            let y = (rows - mean.broadcast_like::<_, Axis<0>>(&rows_shape)) * rstd * gamma + beta;
            return Ok(y.reshape_like(&shape));
        }
        // Weights 1/n over the true positions: statistics as (1 × rows)·(rows × width).
        let true_len = |b: usize| ctx.lengths[b].clamp(1, seq);
        let count: usize = (0..batch).map(true_len).sum();
        let weights: Vec<f32> = (0..batch)
            .flat_map(|b| (0..seq).map(move |i| (b, i)))
            .map(|(b, i)| {
                if i < true_len(b) {
                    1.0 / count as f32
                } else {
                    0.0
                }
            })
            .collect();
        let weights = dev.tensor_from_vec(weights, (1, batch * seq));
        let mean = weights
            .clone()
            .retaped::<T>()
            .matmul(rows.with_empty_tape())
            .reshape_like(&(width,));
        let mean_values = mean.as_vec();
        let centered = rows - broadcast(mean);
        let var = weights
            .retaped::<T>()
            .matmul(centered.with_empty_tape().square())
            .reshape_like(&(width,));
        let var_values = var.as_vec();
        let rstd = (var + BATCH_NORM_EPS as f32).sqrt().recip();
        let y = centered * broadcast(rstd) * gamma + beta;
        self.update_running(ctx, &mean_values, &var_values, count)?;
        Ok(y.reshape_like(&shape))
    }

    fn update_running<D: EngineDevice>(
        &self,
        ctx: &Ctx<'_, D>,
        mean: &[f32],
        var: &[f32],
        count: usize,
    ) -> Result<()> {
        let m = BATCH_NORM_MOMENTUM;
        let unbias = if count > 1 {
            count as f32 / (count - 1) as f32
        } else {
            1.0
        };
        let blend = |old: Vec<f32>, new: &[f32], scale: f32| -> Vec<f32> {
            old.iter()
                .zip(new)
                .map(|(&o, &n)| (1.0 - m) * o + m * n * scale)
                .collect()
        };
        ctx.params.set_buffer(
            self.running_mean,
            &blend(ctx.params.buffer_values(self.running_mean), mean, 1.0),
        )?;
        ctx.params.set_buffer(
            self.running_var,
            &blend(ctx.params.buffer_values(self.running_var), var, unbias),
        )
    }
}

/// A normalisation layer of either kind, so blocks hold one type.
#[derive(Clone, Debug)]
pub enum Norm {
    Layer(LayerNorm),
    Batch(BatchNorm),
}

impl Norm {
    pub fn build<D: EngineDevice>(
        scope: Scope<'_, D>,
        kind: NormKind,
        width: usize,
    ) -> Result<Self> {
        Ok(match kind {
            NormKind::Layer => Norm::Layer(LayerNorm::build(scope, width)?),
            NormKind::Batch => Norm::Batch(BatchNorm::build(scope, width)?),
        })
    }

    /// Trainable parameters (both kinds have a scale and a shift per channel).
    pub fn parameter_count(width: usize) -> usize {
        2 * width
    }

    pub fn forward<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        x: Seq<D, T>,
        ctx: &Ctx<'_, D>,
    ) -> Result<Seq<D, T>> {
        match self {
            Norm::Layer(norm) => norm.forward(x, ctx),
            Norm::Batch(norm) => norm.forward(x, ctx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::params::ParamStore;

    #[test]
    fn batch_norm_uses_true_positions_and_tracks_running_statistics() {
        let mut store = ParamStore::new(Cpu::default(), 0);
        let norm = BatchNorm::build(Scope::root(&mut store).sub("bn"), 2).unwrap();
        assert!(store.find("bn.weight").is_some());
        // Example 0: rows (1, 10), (3, 30); example 1: (5, 50) then padding (100, 100).
        let x = [1.0f32, 10.0, 3.0, 30.0, 5.0, 50.0, 100.0, 100.0];
        let lengths = [2, 1];
        let ctx = Ctx::new(&store, true, &lengths);
        let y = norm
            .forward(store.device().tensor_from_vec(x.to_vec(), (2, 2, 2)), &ctx)
            .unwrap()
            .as_vec();
        // Channel 0 over true rows: mean 3, variance 8/3.
        let rstd = 1.0 / (8.0f32 / 3.0 + 1e-5).sqrt();
        for (got, want) in y
            .iter()
            .step_by(2)
            .take(3)
            .zip([-2.0 * rstd, 0.0, 2.0 * rstd])
        {
            assert!((got - want).abs() < 1e-5, "{y:?}");
        }
        let mean = store.buffer_values(norm.running_mean);
        let var = store.buffer_values(norm.running_var);
        assert!((mean[0] - 0.3).abs() < 1e-6 && (mean[1] - 3.0).abs() < 1e-5);
        // Unbiased: 8/3 · 3/2 = 4; 0.9·1 + 0.1·4.
        assert!((var[0] - 1.3).abs() < 1e-5, "{var:?}");

        let eval = Ctx::new(&store, false, &lengths);
        let y = norm
            .forward(store.device().tensor_from_vec(x.to_vec(), (2, 2, 2)), &eval)
            .unwrap()
            .as_vec();
        assert!((y[0] - (1.0 - 0.3) / (1.3f32 + 1e-5).sqrt()).abs() < 1e-5);
    }

    #[test]
    fn batch_norm_gradient_flows_through_the_statistics() {
        use crate::engine::ops::gradcheck::assert_close;
        let mut store = ParamStore::new(Cpu::default(), 0);
        let norm = BatchNorm::build(Scope::root(&mut store).sub("bn"), 3).unwrap();
        let values: Vec<f32> = (0..12).map(|i| ((i * 7) % 5) as f32 - 2.0).collect();
        let lengths = [2, 2];
        let x = store.device().tensor_from_vec(values.clone(), (2, 2, 3));
        let ctx = Ctx::new(&store, true, &lengths);
        let y = norm.forward(x.leaky_trace(), &ctx).unwrap();
        // Σ of a batch-normalised channel is constant (β·n): its gradient w.r.t. x is 0.
        let grad = y.sum().backward().get(&x).as_vec();
        assert_close(&grad, &[0.0; 12], 1e-5, "d Σy / dx");
    }
}
