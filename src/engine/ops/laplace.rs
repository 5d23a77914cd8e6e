//! MEGA's Laplace attention function (Ma et al. 2023, eq. 14): a smooth stand-in for squared
//! ReLU, laplace(x) = ½·(1 + erf((x − μ)/(σ√2))) with μ = √½ and σ = √(1/4π), i.e. the normal
//! CDF Φ((x − μ)/σ); derivative φ((x − μ)/σ)/σ. The scalar functions serve the fused MEGA
//! attention kernel ([`super::mega_attention`]); the composed form serves its dfdx version.

use std::f64::consts::{FRAC_1_SQRT_2, PI};

use dfdx::prelude::*;

use super::gelu::erf_of_nonnegative;
use super::ComposedFloat;

/// μ of eq. 14.
pub(crate) fn laplace_mu() -> f64 {
    FRAC_1_SQRT_2
}

/// σ of eq. 14.
pub(crate) fn laplace_sigma() -> f64 {
    (1.0 / (4.0 * PI)).sqrt()
}

fn standardised(x: f64) -> f64 {
    (x - laplace_mu()) / laplace_sigma()
}

/// laplace(x) in f64.
pub(crate) fn laplace_value(x: f64) -> f64 {
    0.5 * (1.0 + libm::erf(standardised(x) * FRAC_1_SQRT_2))
}

/// laplace′(x) = φ((x − μ)/σ)/σ.
pub(crate) fn laplace_slope(x: f64) -> f64 {
    let z = standardised(x);
    (-0.5 * z * z).exp() / (laplace_sigma() * (2.0 * PI).sqrt())
}

/// The Laplace function from dfdx ops on any device: ½ ± ½·erf(|z|/√2) with the sign of
/// z = (x − μ)/σ chosen by a comparison (erf is odd), erf of a non-negative argument from
/// [`erf_of_nonnegative`].
pub(crate) fn laplace_composed<
    S: Shape,
    E: ComposedFloat,
    D: Device<E>,
    T: Tape<E, D> + Merge<T>,
>(
    x: Tensor<S, E, D, T>,
) -> Tensor<S, E, D, T> {
    let c = |v: f64| E::from_f64(v).unwrap();
    let z = (x - c(laplace_mu())) * c(FRAC_1_SQRT_2 / laplace_sigma());
    let positive = z.ge(c(0.0));
    let half_erf = erf_of_nonnegative(z.abs()) * c(0.5);
    let low = half_erf.with_empty_tape().negate() + c(0.5);
    positive.choose(half_erf + c(0.5), low)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ops::gradcheck::{assert_close, gradcheck, random_values};

    #[test]
    fn known_values() {
        let dev = Cpu::default();
        let mu = laplace_mu();
        let sigma = laplace_sigma();
        let x = dev.tensor_from_vec(vec![mu, mu + sigma, mu - 2.0 * sigma, 0.0], (4,));
        // Φ(0), Φ(1), Φ(−2), Φ(−μ/σ) = Φ(−√(2π)).
        let want = [
            0.5,
            0.841_344_746_068_543,
            0.022_750_131_948_179,
            0.006_094_441_092_401,
        ];
        let scalar: Vec<f64> = x.as_vec().into_iter().map(laplace_value).collect();
        assert_close(&scalar, &want, 1e-7, "scalar");
        assert_close(&laplace_composed(x).as_vec(), &want, 2e-7, "composed");
    }

    #[test]
    fn slope_matches_finite_differences() {
        let h = 1e-6;
        for x in random_values(64, 1).iter().map(|v| v * 1.5) {
            let numerical = (laplace_value(x + h) - laplace_value(x - h)) / (2.0 * h);
            assert!((laplace_slope(x) - numerical).abs() < 1e-7, "at {x}");
        }
    }

    #[test]
    fn composed_gradient_matches_finite_differences() {
        // Away from z = 0, where |z|'s derivative jumps (the function itself is smooth there).
        let x: Vec<f64> = random_values(32, 2)
            .iter()
            .map(|v| laplace_mu() + 0.05 * v.signum() + v)
            .collect();
        gradcheck(&[x], |mut xs| laplace_composed(xs.remove(0)), 1e-5);
    }
}
