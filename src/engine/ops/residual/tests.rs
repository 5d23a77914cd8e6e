use dfdx::prelude::*;

use super::*;
use crate::engine::ops::gradcheck::{assert_close, gradcheck, random_values};

fn tensor(dev: &Cpu, n: usize, seed: u64, shape: (usize, usize)) -> Mat<f32, Cpu, NoneTape> {
    let values = random_values(n, seed).iter().map(|&v| v as f32).collect();
    dev.tensor_from_vec(values, shape)
}

#[test]
fn add_gradient_matches_finite_differences() {
    gradcheck(
        &[random_values(7, 80), random_values(7, 81)],
        |mut v| {
            let y = v.pop().unwrap();
            add_cpu(v.pop().unwrap(), y).unwrap()
        },
        1e-6,
    );
}

#[test]
fn skip_gradient_matches_finite_differences() {
    let (rows, channels, width) = (4, 2, 3);
    gradcheck(
        &[
            random_values(rows * channels * width, 82),
            random_values(rows * width, 83),
            random_values(channels * width, 84),
        ],
        |mut v| {
            let d = v.pop().unwrap().reshape_like(&(channels, width));
            let u = v.pop().unwrap().reshape_like(&(rows, width));
            let y = v.pop().unwrap().reshape_like(&(rows, channels * width));
            skip_cpu(y, u, d)
                .unwrap()
                .reshape_like(&(rows * channels * width,))
        },
        1e-6,
    );
}

/// Sizes that cross the parallel chunks and row blocks; gradients through weights so every
/// output element counts differently.
#[test]
fn fused_matches_composed_with_gradients() {
    let dev = Cpu::default();
    let (rows, channels, width) = (300, 2, 37);
    let y = tensor(&dev, rows * channels * width, 85, (rows, channels * width));
    let u = tensor(&dev, rows * width, 86, (rows, width));
    let d = tensor(&dev, channels * width, 87, (channels, width));
    let x = tensor(&dev, rows * channels * width, 88, (rows, channels * width));
    let weights = tensor(&dev, rows * channels * width, 89, (rows, channels * width));
    let run = |fused: bool| {
        let (yt, ut, dt, xt) = (y.leaky_trace(), u.retaped(), d.retaped(), x.retaped());
        let out = if fused {
            add_cpu(skip_cpu(yt, ut, dt).unwrap(), xt).unwrap()
        } else {
            add_composed(skip_composed(yt, ut, dt), xt)
        };
        let value = out.as_vec();
        let grads = (out * weights.clone()).sum().backward();
        [
            value,
            grads.get(&y).as_vec(),
            grads.get(&u).as_vec(),
            grads.get(&d).as_vec(),
            grads.get(&x).as_vec(),
        ]
    };
    let (f, c) = (run(true), run(false));
    for (what, (a, b)) in ["out", "dy", "du", "dD", "dx"].iter().zip(f.iter().zip(&c)) {
        assert_close(a, b, 1e-5, what);
    }
}
