//! GELU, exact form: gelu(x) = x·Φ(x) = ½x(1 + erf(x/√2)) (Hendrycks & Gimpel 2016), with
//! derivative Φ(x) + x·φ(x), φ(x) = e^{−x²/2}/√(2π). Written here because dfdx 0.13's
//! `accurate_gelu` backward misses the 1/√2 of the chain rule through erf(x/√2).

use std::f64::consts::FRAC_1_SQRT_2;

use dfdx::prelude::*;

use super::pointwise::{pointwise_cpu, Pointwise};
use super::{ComposedFloat, KernelFloat};

/// Fused GELU on the CPU (see [`super::pointwise`]).
pub(crate) fn gelu_cpu<S: Shape, E: KernelFloat, T: Tape<E, Cpu>>(
    x: Tensor<S, E, Cpu, T>,
) -> Result<Tensor<S, E, Cpu, T>, CpuError> {
    pointwise_cpu(Pointwise::Gelu, x)
}

/// GELU from dfdx ops on any device: ½x + ½|x|·erf(|x|/√2). Using |x| avoids a sign
/// function: x·erf(x/√2) = |x|·erf(|x|/√2) because erf is odd.
pub(crate) fn gelu_composed<S: Shape, E: ComposedFloat, D: Device<E>, T: Tape<E, D>>(
    x: Tensor<S, E, D, T>,
) -> Tensor<S, E, D, T> {
    let half = E::from_f64(0.5).unwrap();
    let abs_x = x.with_empty_tape().abs();
    let erf = erf_of_nonnegative(abs_x.with_empty_tape() * E::from_f64(FRAC_1_SQRT_2).unwrap());
    x * half + abs_x * erf * half
}

/// erf(z) for z ≥ 0 from dfdx ops, after Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5·10⁻⁷):
/// 1 − t·P(t)·e^{−z²} with t = 1/(1 + p·z).
pub(crate) fn erf_of_nonnegative<S: Shape, E: ComposedFloat, D: Device<E>, T: Tape<E, D>>(
    z: Tensor<S, E, D, T>,
) -> Tensor<S, E, D, T> {
    let c = |v: f64| E::from_f64(v).unwrap();
    let (a1, a2, a3, a4, a5, p) = (
        0.254_829_592,
        -0.284_496_736,
        1.421_413_741,
        -1.453_152_027,
        1.061_405_429,
        0.327_591_1,
    );
    let t = (z.with_empty_tape() * c(p) + c(1.0)).recip();
    let poly = t.with_empty_tape() * c(a5) + c(a4);
    let poly = poly * t.with_empty_tape() + c(a3);
    let poly = poly * t.with_empty_tape() + c(a2);
    let poly = poly * t.with_empty_tape() + c(a1);
    let poly = poly * t;
    let gauss = z.square().negate().exp();
    (poly * gauss).negate() + c(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ops::gradcheck::{assert_close, gradcheck, random_values};

    #[test]
    fn known_values() {
        let dev = Cpu::default();
        let x = dev.tensor_from_vec(vec![-1.0f64, 0.0, 1.0, 2.0], (4,));
        let y = gelu_cpu(x).unwrap().as_vec();
        assert_close(
            &y,
            &[-0.158_655_253_9, 0.0, 0.841_344_746_1, 1.954_499_736_1],
            1e-9,
            "gelu",
        );
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let x: Vec<f64> = random_values(64, 1).iter().map(|v| v * 4.0).collect();
        gradcheck(&[x], |mut xs| gelu_cpu(xs.remove(0)).unwrap(), 1e-6);
    }

    #[test]
    fn composed_gradient_matches_finite_differences() {
        let x: Vec<f64> = random_values(32, 2).iter().map(|v| v * 4.0).collect();
        gradcheck(&[x], |mut xs| gelu_composed(xs.remove(0)), 1e-6);
    }

    #[test]
    fn fused_matches_composed_with_gradients() {
        let dev = Cpu::default();
        let values: Vec<f32> = random_values(5000, 3)
            .iter()
            .map(|&v| (v * 5.0) as f32)
            .collect();
        let x = dev.tensor_from_vec(values, (50, 100));
        let fused = gelu_cpu(x.leaky_trace()).unwrap();
        let composed = gelu_composed(x.leaky_trace());
        assert_close(&fused.as_vec(), &composed.as_vec(), 1e-6, "forward");
        let gf = fused.sum().backward().get(&x).as_vec();
        let gc = composed.sum().backward().get(&x).as_vec();
        assert_close(&gf, &gc, 1e-5, "backward");
    }
}
