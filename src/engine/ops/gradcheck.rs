//! The shared finite-difference gradient check, in f64, used by every op's tests.
//!
//! The scalar checked is L = Σ_k r_k·y_k for a fixed random r, so every output's gradient
//! path is exercised. The analytic gradient comes from the op's backward through dfdx's tape;
//! the numerical one from central differences, (L(x + h·e_i) − L(x − h·e_i)) / 2h.

use dfdx::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub(crate) type Traced1 = Tensor<(usize,), f64, Cpu, OwnedTape<f64, Cpu>>;

/// Random values in [−1, 1), reproducible from `seed`.
pub(crate) fn random_values(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect()
}

fn weighted_sum(
    out: Traced1,
    weights: &Tensor<(usize,), f64, Cpu>,
) -> Tensor<(), f64, Cpu, OwnedTape<f64, Cpu>> {
    (out * weights.clone()).sum()
}

/// Asserts that the gradients `f` produces match central differences for every input
/// coordinate, within `tol · (1 + |numerical|)`.
pub(crate) fn gradcheck<F>(inputs: &[Vec<f64>], f: F, tol: f64)
where
    F: Fn(Vec<Traced1>) -> Traced1,
{
    let dev = Cpu::default();
    let tensors: Vec<Tensor<(usize,), f64, Cpu>> = inputs
        .iter()
        .map(|v| dev.tensor_from_vec(v.clone(), (v.len(),)))
        .collect();
    let traced = |ts: &[Tensor<(usize,), f64, Cpu>]| -> Vec<Traced1> {
        ts.iter()
            .map(|t| t.retaped::<OwnedTape<f64, Cpu>>())
            .collect()
    };
    let probe = f(traced(&tensors));
    let n_out = probe.shape().0;
    let weights = dev.tensor_from_vec(random_values(n_out, 7), (n_out,));
    let mut grads = weighted_sum(probe, &weights).backward();

    let h = 1e-6;
    for (which, base) in inputs.iter().enumerate() {
        let analytic: Vec<f64> = grads.get_or_alloc_mut(&tensors[which]).unwrap().to_vec();
        for i in 0..base.len() {
            let loss_at = |delta: f64| {
                let mut shifted = tensors.clone();
                let mut values = base.clone();
                values[i] += delta;
                shifted[which] = dev.tensor_from_vec(values, (base.len(),));
                weighted_sum(f(traced(&shifted)), &weights).array()
            };
            let numerical = (loss_at(h) - loss_at(-h)) / (2.0 * h);
            let err = (analytic[i] - numerical).abs();
            assert!(
                err <= tol * (1.0 + numerical.abs()),
                "input {which}, coordinate {i}: analytic {} vs numerical {numerical}",
                analytic[i]
            );
        }
    }
}

/// Asserts two slices agree within `tol · (1 + |b|)` element-wise.
pub(crate) fn assert_close<E: Into<f64> + Copy>(a: &[E], b: &[E], tol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        let (x, y) = (x.into(), y.into());
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}
