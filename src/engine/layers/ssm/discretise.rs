//! Zero-order hold (ZOH) discretisation of a diagonal continuous-time SSM x′ = Λx + Bu with
//! step Δ, shared by S4D (Gu et al. 2022, eq. 6) and S5 (Smith et al. 2023, eq. 6):
//! Λ̄ = exp(ΛΔ) and B̄ = Λ⁻¹(Λ̄ − I)·B. Complex values travel as (real, imaginary) parts.

use dfdx::prelude::*;

use crate::engine::ops::ssm::{complex_mul, Parts};
use crate::engine::ops::ComposedFloat;

/// The discrete parameters of one diagonal SSM, per state.
pub(crate) struct Zoh<S: Shape, E: Dtype, D: Storage<E>, T> {
    /// ζ = ΛΔ, the logarithm of Λ̄ (what the scan and the Vandermonde kernel take).
    pub log_lambda_bar: Parts<S, E, D, T>,
    /// (exp(ΛΔ) − 1)/Λ, the factor that turns B into B̄.
    pub input_scale: Parts<S, E, D, T>,
}

/// ZOH for eigenvalues `lambda` and steps `dt` of the same shape.
pub(crate) fn zero_order_hold<
    S: Shape,
    E: ComposedFloat,
    D: Device<E>,
    T: Tape<E, D> + Merge<T>,
>(
    lambda: Parts<S, E, D, T>,
    dt: Tensor<S, E, D, T>,
) -> Zoh<S, E, D, T> {
    let (a_re, a_im) = lambda;
    let zeta_re = a_re.with_empty_tape() * dt.with_empty_tape();
    let zeta_im = a_im.with_empty_tape() * dt;
    let magnitude = zeta_re.with_empty_tape().exp();
    let e_re = magnitude.with_empty_tape() * zeta_im.with_empty_tape().cos() - E::one();
    let e_im = magnitude * zeta_im.with_empty_tape().sin();
    // (exp(ΛΔ) − 1)/Λ = (exp(ΛΔ) − 1)·conj(Λ)/|Λ|².
    let inv_norm = (a_re.with_empty_tape().square() + a_im.with_empty_tape().square()).recip();
    let (q_re, q_im) = complex_mul((e_re, e_im), (a_re, a_im.negate()));
    Zoh {
        log_lambda_bar: (zeta_re, zeta_im),
        input_scale: (q_re * inv_norm.with_empty_tape(), q_im * inv_norm),
    }
}
