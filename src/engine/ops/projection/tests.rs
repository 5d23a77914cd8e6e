use super::*;
use crate::engine::ops::gradcheck::{assert_close, gradcheck, random_values};

/// Every prologue, with and without the gate.
fn fusions() -> Vec<Fusion> {
    let activations = [
        None,
        Some(Pointwise::Gelu),
        Some(Pointwise::Silu),
        Some(Pointwise::Relu),
    ];
    activations
        .into_iter()
        .flat_map(|activation| [false, true].map(|glu| Fusion { activation, glu }))
        .collect()
}

#[test]
fn gradient_matches_finite_differences() {
    let (rows, inputs, outputs) = (5, 3, 4);
    for fusion in fusions() {
        let out = rows * fusion.out_width(outputs);
        gradcheck(
            &[
                random_values(rows * inputs, 80),
                random_values(inputs * outputs, 81),
                random_values(outputs, 82),
            ],
            |mut v| {
                let b = v.pop().unwrap();
                let w = v.pop().unwrap().reshape_like(&(inputs, outputs));
                let x = v.pop().unwrap().reshape_like(&(rows, inputs));
                projection_cpu(x, w, b, fusion)
                    .unwrap()
                    .reshape_like(&(out,))
            },
            1e-6,
        );
    }
}

/// The fused op against the chain of composed ops, values and all three gradients, at sizes
/// that cross the row blocks (300 rows), the vector lanes and the kernel's tiles (37 → 46).
#[test]
fn fused_matches_composed_with_gradients() {
    let dev = Cpu::default();
    let (rows, inputs, outputs) = (300, 37, 46);
    let make = |n, seed, scale: f64| -> Vec<f32> {
        random_values(n, seed)
            .iter()
            .map(|&v| (scale * v) as f32)
            .collect()
    };
    let x = dev.tensor_from_vec(make(rows * inputs, 83, 3.0), (rows, inputs));
    let w = dev.tensor_from_vec(make(inputs * outputs, 84, 1.0), (inputs, outputs));
    let b = dev.tensor_from_vec(make(outputs, 85, 1.0), (outputs,));
    for fusion in fusions() {
        let width = fusion.out_width(outputs);
        let weights = dev.tensor_from_vec(make(rows * width, 86, 1.0), (rows, width));
        let run = |fused: bool| {
            let (xt, wt, bt) = (x.leaky_trace(), w.retaped(), b.retaped());
            let y = if fused {
                projection_cpu(xt, wt, bt, fusion).unwrap()
            } else {
                projection_composed(xt, wt, bt, fusion)
            };
            let value = y.as_vec();
            let grads = (y * weights.clone()).sum().backward();
            [
                value,
                grads.get(&x).as_vec(),
                grads.get(&w).as_vec(),
                grads.get(&b).as_vec(),
            ]
        };
        let (f, c) = (run(true), run(false));
        for (what, (a, b)) in ["y", "dx", "dW", "db"].iter().zip(f.iter().zip(&c)) {
            assert_close(a, b, 1e-4, &format!("{what} of {fusion:?}"));
        }
    }
}
