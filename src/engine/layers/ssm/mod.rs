//! State-space sequence layers. Each kind is one file implementing [`StateSpace`] (the SSM
//! proper, (B, L, H) → (B, L, C·H)); [`SsmLayer`] wraps it as S4's layer does
//! (state-spaces/s4, `models/s4/s4d.py`): SSM → activation → dropout → output linear, with a
//! GLU (`post glu`) or plain. The residual block around it (norm before or after, dropout,
//! skip) is [`Residual`](super::sequence::Residual); there is no feed-forward sub-layer.
//! Padded positions are zeroed before the SSM, so a bidirectional layer never reads padding.

pub mod discretise;
pub mod dlr;
pub mod hippo;
pub mod lru;
pub mod s4;
pub mod s4d;
pub mod s5;
#[cfg(test)]
mod testing;

use dfdx::prelude::*;

pub use super::activation::Activation;
use super::linear::Linear;
use super::sequence::SequenceLayer;
use super::{Ctx, Scope, Seq};
use crate::engine::error::{EngineError, Result};
use crate::engine::ops::projection::Fusion;
use crate::engine::ops::ssm::{for_slicing, Parts};
use crate::engine::ops::{ComposedFloat, EngineDevice};
use crate::engine::params::{GroupId, Init, ParamId};

/// The SSM proper: (batch, length, H) → (batch, length, `output_width`).
pub trait StateSpace {
    fn output_width(&self) -> usize;

    fn forward<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        u: Seq<D, T>,
        ctx: &Ctx<'_, D>,
    ) -> Result<Seq<D, T>>;
}

/// An SSM with its activation, dropout and output projection.
#[derive(Clone, Debug)]
pub struct SsmLayer<K> {
    pub ssm: K,
    pub output: Linear,
    /// Output linear to 2H then a gated linear unit a ⊙ σ(b) (Dauphin et al. 2017).
    pub glu: bool,
    pub activation: Activation,
    pub dropout: f32,
}

impl<K: StateSpace> SsmLayer<K> {
    /// The output projection is created in `scope` as `output.*`, beside the SSM's parameters.
    pub fn build<D: EngineDevice>(
        mut scope: Scope<'_, D>,
        ssm: K,
        width: usize,
        glu: bool,
        activation: Activation,
        dropout: f32,
    ) -> Result<Self> {
        let outputs = if glu { 2 * width } else { width };
        let output = Linear::build(scope.sub("output"), ssm.output_width(), outputs)?;
        Ok(SsmLayer {
            ssm,
            output,
            glu,
            activation,
            dropout,
        })
    }

    pub(crate) fn output_parameter_count(inputs: usize, width: usize, glu: bool) -> usize {
        Linear::parameter_count(inputs, if glu { 2 * width } else { width })
    }
}

impl<K: StateSpace> SequenceLayer for SsmLayer<K> {
    fn forward<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        x: Seq<D, T>,
        ctx: &Ctx<'_, D>,
    ) -> Result<Seq<D, T>> {
        let y = self.ssm.forward(zero_padding(x, ctx), ctx)?;
        if !ctx.drops(self.dropout) {
            // Activation, projection and gate as one op.
            let fusion = Fusion {
                activation: self.activation.pointwise(),
                glu: self.glu,
            };
            return self.output.project_seq(y, fusion, ctx);
        }
        let y = ctx.dropout(self.activation.apply(y)?, self.dropout);
        let y = self.output.forward_seq(y, ctx)?;
        if !self.glu {
            return Ok(y);
        }
        let (batch, len, double) = *y.shape();
        let gated = D::glu(y.reshape_like(&(batch * len, double)))?;
        Ok(gated.reshape_like(&(batch, len, double / 2)))
    }
}

/// x with the positions after each example's true length set to zero.
pub(crate) fn zero_padding<D: EngineDevice, T: Tape<f32, D>>(
    x: Seq<D, T>,
    ctx: &Ctx<'_, D>,
) -> Seq<D, T> {
    let shape = *x.shape();
    let (batch, len, _) = shape;
    if ctx.lengths.iter().all(|&l| l >= len) {
        return x;
    }
    let mask: Vec<f32> = (0..batch * len)
        .map(|i| {
            if i % len < ctx.lengths[i / len] {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    let mask = ctx.device().tensor_from_vec(mask, (batch, len));
    x * mask.broadcast_like::<_, Axis<2>>(&shape)
}

/// A parameter whose initial values are `init`'s draws (from the store's seeded generator)
/// passed through `transform`: the papers' initialisations (log-uniform Δ, ring-uniform λ, …)
/// are functions of uniform or normal draws.
pub(crate) fn param_with<D: EngineDevice>(
    scope: &mut Scope<'_, D>,
    name: &str,
    shape: &[usize],
    init: Init,
    group: GroupId,
    transform: impl FnOnce(Vec<f32>) -> Vec<f32>,
) -> Result<ParamId> {
    let id = scope.param(name, shape, init, group)?;
    let values = transform(scope.store.values(id));
    scope.store.set_values(id, &values)?;
    Ok(id)
}

/// `u`, a draw of U(−½, ½), mapped log-uniformly onto [min, max]: the papers' initialisation
/// of time scales Δ (S4 §3.1, S4D §4, DLR §3).
pub(crate) fn log_uniform(u: f32, min: f64, max: f64) -> f32 {
    let (log_min, log_max) = (min.ln() as f32, max.ln() as f32);
    (log_min + (u + 0.5) * (log_max - log_min)).exp()
}

/// A learned log Δ of `shape`, with Δ log-uniform in [dt_min, dt_max] at initialisation (S4,
/// Gu et al. 2022, §C.3; S5, Smith et al. 2023, appendix B.1.3), drawn from U(−½, ½).
pub(crate) fn log_dt_param<D: EngineDevice>(
    scope: &mut Scope<'_, D>,
    shape: &[usize],
    (dt_min, dt_max): (f64, f64),
    group: GroupId,
) -> Result<ParamId> {
    param_with(
        scope,
        "log_dt",
        shape,
        Init::Uniform { bound: 0.5 },
        group,
        |u| {
            u.into_iter()
                .map(|u| log_uniform(u, dt_min, dt_max).ln())
                .collect()
        },
    )
}

/// 2 for a bidirectional layer (a second kernel or recurrence runs over the reversed
/// sequence), else 1.
pub(crate) fn directions(bidirectional: bool) -> usize {
    if bidirectional {
        2
    } else {
        1
    }
}

/// The check every kind with a learned step makes of its initial range: 0 < dt_min ≤ dt_max.
pub(crate) fn check_dt_range(kind: &str, dt_min: f64, dt_max: f64) -> Result<()> {
    if dt_min > 0.0 && dt_min <= dt_max {
        return Ok(());
    }
    Err(EngineError::InvalidConfig(format!(
        "{kind} needs 0 < dt_min ≤ dt_max, got {dt_min} and {dt_max}"
    )))
}

/// The real (2N, H) matrix M with `[Re x | Im x]`·M = Re(C·x), for C (H × N complex) given
/// flat as (2, H, N), real parts then imaginary parts: Re(Cx) = Re C·Re x − Im C·Im x, so M
/// stacks Re Cᵀ over −Im Cᵀ and a readout is one real matmul.
pub(crate) fn readout_map<E: ComposedFloat, D: Device<E>, T: Tape<E, D> + Merge<T>>(
    c: Tensor<(usize,), E, D, T>,
    width: usize,
    states: usize,
) -> Tensor<(usize, usize), E, D, T> {
    let c = for_slicing(c);
    let half = width * states;
    let c_re = c.with_empty_tape().slice((..half,));
    let c_im = c.slice((half..,)).negate();
    (c_re, c_im)
        .concat_along(Axis::<0>)
        .reshape_like(&(2, width, states))
        .permute::<_, Axes3<0, 2, 1>>()
        .reshape_like(&(2 * states, width))
}

/// The diagonal of A per channel, from its eigenvalues λ (M) repeated over the `width`
/// channels: `log_A_real` = log(−Re λ) (so Re A = −exp(·) stays negative, S4D §3.2) and
/// `A_imag` = Im λ, both (H, M) in `group`.
pub(crate) fn diagonal_a_params<D: EngineDevice>(
    scope: &mut Scope<'_, D>,
    width: usize,
    lambda: &[num_complex::Complex64],
    group: GroupId,
) -> Result<(ParamId, ParamId)> {
    let m = lambda.len();
    let shape = [width, m];
    let log_a_real = param_with(scope, "log_A_real", &shape, Init::Zeros, group, |v| {
        (0..v.len())
            .map(|i| (-lambda[i % m].re).ln() as f32)
            .collect()
    })?;
    let a_imag = param_with(scope, "A_imag", &shape, Init::Zeros, group, |v| {
        (0..v.len()).map(|i| lambda[i % m].im as f32).collect()
    })?;
    Ok((log_a_real, a_imag))
}

/// The diagonal of A that [`diagonal_a_params`] stores, as (H, M) parts:
/// Re A = −exp(`log_A_real`), Im A = `A_imag`.
pub(crate) fn diagonal_a<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
    ctx: &Ctx<'_, D>,
    log_a_real: ParamId,
    a_imag: ParamId,
) -> Parts<(usize, usize), f32, D, T> {
    let p = ctx.params;
    (
        p.matrix::<T>(log_a_real).exp().negate(),
        p.matrix::<T>(a_imag),
    )
}

/// A complex parameter of `shape` (its first axis, 2, holding real then imaginary parts) drawn
/// from CN(0, 1)/`divisor`: each part N(0, ½)/`divisor`, as `torch.randn(cfloat) / divisor`
/// in the reference implementations.
pub(crate) fn complex_normal_param<D: EngineDevice>(
    scope: &mut Scope<'_, D>,
    name: &str,
    shape: &[usize],
    divisor: f32,
) -> Result<ParamId> {
    scope.param(
        name,
        shape,
        Init::Normal {
            std: std::f32::consts::FRAC_1_SQRT_2 / divisor,
        },
        crate::engine::params::DEFAULT_GROUP,
    )
}

/// A complex parameter stored flat as all its real parts then all its imaginary parts, viewed
/// as the two parts of `shape`.
pub(crate) fn complex_parts<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
    ctx: &Ctx<'_, D>,
    id: ParamId,
    shape: (usize, usize, usize),
) -> Parts<(usize, usize, usize), f32, D, T> {
    let flat = for_slicing(ctx.params.flat::<T>(id));
    let half = shape.0 * shape.1 * shape.2;
    let re = flat.with_empty_tape().slice((..half,)).reshape_like(&shape);
    let im = flat.slice((half..,)).reshape_like(&shape);
    (re, im)
}

/// y (B, L, C·H) plus the skip D·u (D is (C, H)) of every output channel: the D term of the
/// state-space output equation y = Cx + Du.
pub(crate) fn add_skip<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
    y: Seq<D, T>,
    u: Seq<D, T>,
    d: ParamId,
    ctx: &Ctx<'_, D>,
) -> Result<Seq<D, T>> {
    let (batch, len, width) = *u.shape();
    let outputs = y.shape().2;
    let rows = batch * len;
    let d = ctx
        .params
        .matrix::<T>(d)
        .reshape_like(&(outputs / width, width));
    let y = D::skip(
        y.reshape_like(&(rows, outputs)),
        u.reshape_like(&(rows, width)),
        d,
    )?;
    Ok(y.reshape_like(&(batch, len, outputs)))
}

/// Implements [`StateSpace`] for a diagonal kind (S4D, DLR) with `config.channels`,
/// `config.bidirectional`, `width`, the skip `d`, and a method (`$discrete`) giving its
/// discrete parameters: the output is u through the Vandermonde-kernel convolution, plus the
/// skip D·u. The kinds differ only in how their parameters become (ζ, W), and in the engine op
/// (`$op`) that runs them: `diagonal_ssm` (per-channel λ, the default) or
/// `shared_diagonal_ssm` (one λ for every channel).
macro_rules! diagonal_state_space {
    ($kind:ty, $discrete:ident) => {
        $crate::engine::layers::ssm::diagonal_state_space!($kind, $discrete, diagonal_ssm);
    };
    ($kind:ty, $discrete:ident, $op:ident) => {
        impl $crate::engine::layers::ssm::StateSpace for $kind {
            fn output_width(&self) -> usize {
                self.config.channels * self.width
            }

            fn forward<
                D: $crate::engine::ops::EngineDevice,
                T: dfdx::prelude::Tape<f32, D> + dfdx::prelude::Merge<T>,
            >(
                &self,
                u: $crate::engine::layers::Seq<D, T>,
                ctx: &$crate::engine::layers::Ctx<'_, D>,
            ) -> $crate::engine::error::Result<$crate::engine::layers::Seq<D, T>> {
                let params = self.$discrete::<D, T>(ctx);
                let y = D::$op(u.with_empty_tape(), params, self.config.bidirectional)?;
                $crate::engine::layers::ssm::add_skip(y, u, self.d, ctx)
            }
        }
    };
}

pub(crate) use diagonal_state_space;

/// The skip weights D of `shape` ((C, H) per output channel, or (H)), standard normal as in
/// the reference implementations.
pub(crate) fn skip_param<D: EngineDevice>(
    scope: &mut Scope<'_, D>,
    shape: &[usize],
) -> Result<ParamId> {
    scope.param(
        "D",
        shape,
        Init::Normal { std: 1.0 },
        crate::engine::params::DEFAULT_GROUP,
    )
}
