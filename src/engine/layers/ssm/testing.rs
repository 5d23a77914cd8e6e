//! Checks every state-space layer's tests share.

use dfdx::prelude::*;

use super::StateSpace;
use crate::engine::layers::Ctx;
use crate::engine::params::ParamStore;

/// The layer's output for input `u` (batch, len, H), in evaluation mode.
pub fn output<K: StateSpace>(
    store: &ParamStore<Cpu>,
    layer: &K,
    u: &[f32],
    shape: (usize, usize, usize),
) -> Vec<f32> {
    let lengths = vec![shape.1; shape.0];
    let ctx = Ctx::new(store, false, &lengths);
    let x = store.device().tensor_from_vec(u.to_vec(), shape);
    layer.forward::<Cpu, NoneTape>(x, &ctx).unwrap().as_vec()
}

/// Asserts that a unidirectional layer is causal: changing the input at one step changes the
/// outputs from that step on and none before it.
pub(crate) fn assert_causal<K: StateSpace>(store: &ParamStore<Cpu>, layer: &K, width: usize) {
    let (batch, len, step) = (2, 24, 13);
    let shape = (batch, len, width);
    let u: Vec<f32> = (0..batch * len * width)
        .map(|i| ((i * 29 % 17) as f32 - 8.0) / 8.0)
        .collect();
    let mut changed = u.clone();
    for b in 0..batch {
        for h in 0..width {
            changed[(b * len + step) * width + h] += 1.0;
        }
    }
    let (before, after) = (
        output(store, layer, &u, shape),
        output(store, layer, &changed, shape),
    );
    let out = layer.output_width();
    let difference = |t: usize| -> f32 {
        (0..batch)
            .flat_map(|b| (0..out).map(move |o| (b * len + t) * out + o))
            .map(|i| (before[i] - after[i]).abs())
            .fold(0.0, f32::max)
    };
    let at_step = difference(step);
    assert!(
        at_step > 1e-3,
        "the change at step {step} must reach the output"
    );
    for t in 0..step {
        assert!(
            difference(t) <= 1e-5 * at_step,
            "output {t} depends on the input at {step}: {} vs {at_step}",
            difference(t)
        );
    }
}

/// The layer's f32 output equals an f64 reference to 1e-4 relative; `case` names the
/// configuration in the failure message.
pub(crate) fn assert_matches_reference(y: &[f32], expected: &[f64], case: &str) {
    assert_eq!(y.len(), expected.len(), "{case}");
    for (i, (a, b)) in y.iter().zip(expected).enumerate() {
        assert!(
            (*a as f64 - b).abs() < 1e-4 * (1.0 + b.abs()),
            "{case}, element {i}: {a} vs {b}"
        );
    }
}
