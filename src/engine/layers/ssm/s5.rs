//! S5 (Smith, Warrington & Linderman 2023, "Simplified State Space Layers for Sequence
//! Modeling"), after the reference `s5/ssm.py` of lindermanlab/S5: one multi-input,
//! multi-output SSM over all H channels with P complex states, diagonalised.
//!
//! - Continuous system (eq. 1, diagonalised as in §3.2): x′ = Λx + B̃u, y = Re(C̃x) + D⊙u, with
//!   Λ, B̃ (P × H) and C̃ (H × P) complex, D (H) real; the initial values are HiPPO-N's
//!   eigendecomposition in blocks ([`init`]).
//! - Zero-order hold (eq. 6) with a learned step per state: Λ̄ = exp(ΛΔ),
//!   B̄ = Λ⁻¹(Λ̄ − I)·B̃ ([`zero_order_hold`]); Δ = exp(log Δ), log-uniform in
//!   [dt_min, dt_max] at initialisation.
//! - The recurrence x_t = Λ̄ ⊙ x_{t−1} + B̄u_t (eq. 7) is one complex linear map per step (a real
//!   matmul to `[Re | Im]`) followed by the diagonal complex scan
//!   ([`crate::engine::ops::ssm::scan`]: a parallel scan in its composed form, as the paper's
//!   §3.3); the readout Re(C̃x_t) is one more real matmul.
//! - `conj_sym` (§B.1.1): only P/2 states are kept, their conjugates implicit, and the output is
//!   2·Re(C̃x). `clip_eigs`: Re Λ is clipped to ≤ −10⁻⁴ so the system stays stable (the
//!   reference's option for unbounded lengths, after Goel et al. 2022).
//! - Bidirectional, as the reference's `apply_ssm`: the same Λ̄ and B̄u are scanned a second
//!   time from the end (x_t = Λ̄ ⊙ x_{t+1} + B̄u_t), both state sequences are concatenated to
//!   2P states and read out through C̃ = [C̃₁ C̃₂] of width 2P: a second C, not a second
//!   system.
//!
//! Parameters (under the layer's scope): `Lambda_re`, `Lambda_im` (P), `log_dt` (P), `B`
//! (2, P, H: real parts, then imaginary parts) in the SSM group (the reference trains Λ, B and
//! log Δ at `ssm_lr` without weight decay); `C` (2, H, P), and `reverse.C` when
//! bidirectional, and `D` (H) in the default group. P is d_state, or d_state/2 under
//! conjugate symmetry.

mod init;

use dfdx::prelude::*;
use num_complex::Complex64;
use serde::{Deserialize, Serialize};

use self::init::{split_parts, BlockDiagonal};
use super::discretise::{zero_order_hold, Zoh};
use super::{
    check_dt_range, directions, log_dt_param, param_with, readout_map, skip_param, StateSpace,
};
use crate::engine::error::{EngineError, Result};
use crate::engine::layers::{Ctx, Scope, Seq};
use crate::engine::ops::kernels::{Engine, Kernels};
use crate::engine::ops::ssm::scan::Seq3;
use crate::engine::ops::ssm::vandermonde::Mat;
use crate::engine::ops::ssm::{complex_mul, for_slicing};
use crate::engine::ops::{ComposedFloat, EngineDevice};
use crate::engine::params::{GroupId, Init, ParamId, DEFAULT_GROUP};

/// The bound `clip_eigs` puts on Re Λ (the reference's −1e-4).
pub(crate) const MAX_EIGENVALUE_REAL_PART: f64 = -1e-4;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct S5Config {
    /// The state size P of the paper (before halving by conjugate symmetry).
    pub d_state: usize,
    /// J, the HiPPO-N blocks on the diagonal of the initial A.
    pub blocks: usize,
    pub conj_sym: bool,
    pub clip_eigs: bool,
    pub dt_min: f64,
    pub dt_max: f64,
    pub bidirectional: bool,
}

impl S5Config {
    /// The complex states stored and scanned.
    pub fn states(&self) -> usize {
        if self.conj_sym {
            self.d_state / 2
        } else {
            self.d_state
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.d_state == 0 || self.blocks == 0 || !self.d_state.is_multiple_of(self.blocks) {
            return Err(EngineError::InvalidConfig(format!(
                "S5 needs blocks dividing d_state, got {} blocks and d_state {}",
                self.blocks, self.d_state
            )));
        }
        // Conjugate pairs never straddle blocks, so each block must hold whole pairs.
        if self.conj_sym && !(self.d_state / self.blocks).is_multiple_of(2) {
            return Err(EngineError::InvalidConfig(format!(
                "S5 with conj_sym needs an even block size, got d_state {} / {} blocks",
                self.d_state, self.blocks
            )));
        }
        check_dt_range("S5", self.dt_min, self.dt_max)
    }

    /// Trainable scalars of the SSM for `width` channels (output projection excluded): Λ (P
    /// complex), log Δ (P), B̃ (P × H complex), C̃ (H × P complex per direction), D (H).
    pub fn parameter_count(&self, width: usize) -> usize {
        let p = self.states();
        2 * p + p + 2 * p * width + directions(self.bidirectional) * 2 * width * p + width
    }
}

#[derive(Clone, Debug)]
pub struct S5 {
    pub config: S5Config,
    pub width: usize,
    pub lambda_re: ParamId,
    pub lambda_im: ParamId,
    pub log_dt: ParamId,
    pub b: ParamId,
    /// C̃ of the forward scan, then of the reversed one when bidirectional.
    pub c: Vec<ParamId>,
    pub d: ParamId,
}

impl S5 {
    /// Creates the parameters in `scope`, Λ, log Δ and B in `ssm_group`.
    pub fn build<D: EngineDevice>(
        scope: &mut Scope<'_, D>,
        width: usize,
        config: S5Config,
        ssm_group: GroupId,
    ) -> Result<Self> {
        config.validate()?;
        let (full, p) = (config.d_state, config.states());
        let init = BlockDiagonal::new(&config);
        let lambda = init.eigenvalues();
        let lambda_re = param_with(scope, "Lambda_re", &[p], Init::Zeros, ssm_group, |_| {
            lambda.iter().map(|l| l.re as f32).collect()
        })?;
        let lambda_im = param_with(scope, "Lambda_im", &[p], Init::Zeros, ssm_group, |_| {
            lambda.iter().map(|l| l.im as f32).collect()
        })?;
        let log_dt = log_dt_param(scope, &[p], (config.dt_min, config.dt_max), ssm_group)?;
        // B (P × H, real) LeCun-normal: JAX's fan-in of a (P, H) array is P.
        let b_draws: Vec<f64> = scope
            .draw(Init::LecunNormal { fan_in: full }, full * width)
            .into_iter()
            .map(f64::from)
            .collect();
        let b_tilde = split_parts(&init.project_input(&b_draws, width));
        let b = param_with(scope, "B", &[2, p, width], Init::Zeros, ssm_group, |_| {
            b_tilde
        })?;
        let mut c = vec![output_matrix(scope, &init, width, full)?];
        if config.bidirectional {
            c.push(output_matrix(
                &mut scope.sub("reverse"),
                &init,
                width,
                full,
            )?);
        }
        let d = skip_param(scope, &[width])?;
        Ok(S5 {
            config,
            width,
            lambda_re,
            lambda_im,
            log_dt,
            b,
            c,
            d,
        })
    }
}

/// `C` = C·V for C (H × P complex) with LeCun-normal real and imaginary parts, as the LRA
/// runs of the reference (`C_init=lecun_normal`): JAX's fan-in of the (H, P, 2) array is H·P.
fn output_matrix<D: EngineDevice>(
    scope: &mut Scope<'_, D>,
    init: &BlockDiagonal,
    width: usize,
    full: usize,
) -> Result<ParamId> {
    let draws = scope.draw(
        Init::LecunNormal {
            fan_in: full * width,
        },
        2 * width * full,
    );
    let (re, im) = draws.split_at(width * full);
    let c: Vec<Vec<Complex64>> = (0..width)
        .map(|h| {
            (0..full)
                .map(|k| Complex64::new(re[h * full + k].into(), im[h * full + k].into()))
                .collect()
        })
        .collect();
    let c_tilde = split_parts(&init.project_output(&c));
    let states = c_tilde.len() / (2 * width);
    param_with(
        scope,
        "C",
        &[2, width, states],
        Init::Zeros,
        DEFAULT_GROUP,
        |_| c_tilde,
    )
}

/// S5's parameters as tensors (layouts in the module documentation).
pub(crate) struct S5Tensors<E: Dtype, D: Storage<E>, T> {
    pub lambda_re: Tensor<(usize,), E, D, T>,
    pub lambda_im: Tensor<(usize,), E, D, T>,
    pub log_dt: Tensor<(usize,), E, D, T>,
    pub b: Tensor<(usize,), E, D, T>,
    /// One C̃ per direction: one for a causal layer, two for a bidirectional one.
    pub c: Vec<Tensor<(usize,), E, D, T>>,
    pub d: Tensor<(usize,), E, D, T>,
}

/// The S5 SSM on u (batch, length, H) → (batch, length, H), running `kernels`' scan, skip
/// (y + D·u), products and sums. Generic over the element type so the same code is checked
/// in f64.
pub(crate) fn s5_ssm<E, D, T>(
    u: Seq3<E, D, T>,
    w: S5Tensors<E, D, T>,
    conj_sym: bool,
    clip_eigs: bool,
    kernels: &impl Kernels<E, D, T>,
) -> Result<Seq3<E, D, T>>
where
    E: ComposedFloat,
    D: Device<E>,
    T: Tape<E, D> + Merge<T>,
{
    let (batch, len, width) = *u.shape();
    let p = w.log_dt.shape().0;
    let rows = (batch * len, width);
    let lambda_re = if clip_eigs {
        w.lambda_re
            .clamp(f64::NEG_INFINITY, MAX_EIGENVALUE_REAL_PART)
    } else {
        w.lambda_re
    };
    let Zoh {
        log_lambda_bar,
        input_scale: (q_re, q_im),
    } = zero_order_hold((lambda_re, w.lambda_im), w.log_dt.exp());
    let zeta = log_lambda_bar.concat_along(Axis::<0>);
    // B̄ = diag((Λ̄ − 1)/Λ)·B̃, then as the (H, 2P) real matrix u ↦ [Re B̄u | Im B̄u].
    let b = for_slicing(w.b);
    let b_re = b
        .with_empty_tape()
        .slice((..p * width,))
        .reshape_like(&(p, width));
    let b_im = b.slice((p * width..,)).reshape_like(&(p, width));
    let q = (
        q_re.broadcast_like::<_, Axis<1>>(&(p, width)),
        q_im.broadcast_like::<_, Axis<1>>(&(p, width)),
    );
    let input_map = complex_mul(q, (b_re, b_im))
        .concat_along(Axis::<0>)
        .permute::<_, Axes2<1, 0>>();
    let u = u.reshape_like(&rows);
    let bu = kernels
        .matmul(u.with_empty_tape(), input_map)?
        .reshape_like(&(batch, len, 2 * p));
    if !(1..=2).contains(&w.c.len()) {
        return Err(EngineError::InvalidConfig(format!(
            "S5 reads out one or two directions, got {} output matrices",
            w.c.len()
        )));
    }
    // Each direction's states read out by its own C̃ (2·Re(·) under conjugate symmetry) and
    // summed: the product with [C̃₁ C̃₂] over the concatenated states, without the concat.
    let scale = E::from_f64(if conj_sym { 2.0 } else { 1.0 }).expect("2 is representable");
    let mut y: Option<Mat<E, D, T>> = None;
    let last = w.c.len() - 1;
    // The last direction takes bu and ζ themselves, so their tapes join the output's.
    let mut inputs = Some((bu, zeta));
    for (i, c) in w.c.into_iter().enumerate() {
        let (v, z) = match i == last {
            true => inputs
                .take()
                .expect("the inputs are kept for the last direction"),
            false => {
                let (bu, zeta) = inputs
                    .as_ref()
                    .expect("the inputs are kept for the last direction");
                (bu.with_empty_tape(), zeta.with_empty_tape())
            }
        };
        let states = kernels
            .complex_scan(v, z, i == 1)?
            .reshape_like(&(batch * len, 2 * p));
        let out = kernels.matmul(states, readout_map(c, width, p) * scale)?;
        y = Some(match y {
            None => out,
            Some(y) => kernels.add(y, out)?,
        });
    }
    let y = y.expect("one direction at least");
    let y = kernels.skip(y, u, w.d.reshape_like(&(1, width)))?;
    Ok(y.reshape_like(&(batch, len, width)))
}

impl StateSpace for S5 {
    fn output_width(&self) -> usize {
        self.width
    }

    fn forward<D: EngineDevice, T: Tape<f32, D> + Merge<T>>(
        &self,
        u: Seq<D, T>,
        ctx: &Ctx<'_, D>,
    ) -> Result<Seq<D, T>> {
        let p = ctx.params;
        let weights = S5Tensors {
            lambda_re: p.vector::<T>(self.lambda_re),
            lambda_im: p.vector::<T>(self.lambda_im),
            log_dt: p.vector::<T>(self.log_dt),
            b: p.flat::<T>(self.b),
            c: self.c.iter().map(|&c| p.flat::<T>(c)).collect(),
            d: p.vector::<T>(self.d),
        };
        s5_ssm(
            u,
            weights,
            self.config.conj_sym,
            self.config.clip_eigs,
            &Engine,
        )
    }
}

#[cfg(test)]
mod tests;
