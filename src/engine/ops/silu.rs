//! SiLU, silu(x) = x·σ(x) (MEGA's φ_silu, Ma et al. 2023 §3.3, and its feed-forward
//! activation), with derivative σ(x)·(1 + x·(1 − σ(x))). The fused CPU op is the point-wise
//! kernel of [`super::pointwise`]; the composed form is dfdx's `sigmoid(x) * x`.

use dfdx::prelude::*;

use super::pointwise::{pointwise_cpu, Pointwise};
use super::{ComposedFloat, KernelFloat};

/// Fused SiLU on the CPU, multi-threaded over chunks.
pub(crate) fn silu_cpu<S: Shape, E: KernelFloat, T: Tape<E, Cpu>>(
    x: Tensor<S, E, Cpu, T>,
) -> Result<Tensor<S, E, Cpu, T>, CpuError> {
    pointwise_cpu(Pointwise::Silu, x)
}

/// SiLU from dfdx ops on any device.
pub(crate) fn silu_composed<S: Shape, E: ComposedFloat, D: Device<E>, T: Tape<E, D>>(
    x: Tensor<S, E, D, T>,
) -> Tensor<S, E, D, T> {
    x.with_empty_tape().sigmoid() * x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ops::gradcheck::{assert_close, gradcheck, random_values};

    #[test]
    fn known_values() {
        let dev = Cpu::default();
        let x = dev.tensor_from_vec(vec![-2.0f64, 0.0, 1.0, 3.0], (4,));
        let y = silu_cpu(x).unwrap().as_vec();
        let exact: Vec<f64> = [-2.0f64, 0.0, 1.0, 3.0]
            .iter()
            .map(|&x| x / (1.0 + (-x).exp()))
            .collect();
        assert_close(&y, &exact, 1e-12, "silu");
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let x: Vec<f64> = random_values(64, 11).iter().map(|v| v * 6.0).collect();
        gradcheck(&[x], |mut xs| silu_cpu(xs.remove(0)).unwrap(), 1e-6);
    }

    #[test]
    fn composed_gradient_matches_finite_differences() {
        let x: Vec<f64> = random_values(32, 12).iter().map(|v| v * 6.0).collect();
        gradcheck(&[x], |mut xs| silu_composed(xs.remove(0)), 1e-6);
    }

    /// f32 over a range wide enough to reach the clamped exponential (|x| up to 100), in a
    /// size that crosses the parallel chunks.
    #[test]
    fn fused_matches_composed_with_gradients() {
        let dev = Cpu::default();
        let values: Vec<f32> = random_values(9000, 13)
            .iter()
            .map(|&v| (v * 100.0) as f32)
            .collect();
        let x = dev.tensor_from_vec(values, (90, 100));
        let fused = silu_cpu(x.leaky_trace()).unwrap();
        let composed = silu_composed(x.leaky_trace());
        assert_close(&fused.as_vec(), &composed.as_vec(), 1e-6, "forward");
        let gf = fused.sum().backward().get(&x).as_vec();
        let gc = composed.sum().backward().get(&x).as_vec();
        assert_close(&gf, &gc, 1e-6, "backward");
    }
}
