use super::*;
use crate::engine::ops::gradcheck::{assert_close, gradcheck, random_values};

/// The definition, O(L²): causal sum, plus the anticausal one when bidirectional.
fn direct(u: &[f64], k: &[f64], (b, l, h): (usize, usize, usize), bidirectional: bool) -> Vec<f64> {
    let kernels = k.len() / (h * l);
    let c = if bidirectional { kernels / 2 } else { kernels };
    let mut y = vec![0.0; b * l * c * h];
    for bi in 0..b {
        for ci in 0..c {
            for hi in 0..h {
                let fwd = &k[(ci * h + hi) * l..];
                for t in 0..l {
                    let mut acc = 0.0;
                    for s in 0..=t {
                        acc += fwd[t - s] * u[(bi * l + s) * h + hi];
                    }
                    if bidirectional {
                        let bwd = &k[((c + ci) * h + hi) * l..];
                        for s in t + 1..l {
                            acc += bwd[s - t - 1] * u[(bi * l + s) * h + hi];
                        }
                    }
                    y[(bi * l + t) * c * h + ci * h + hi] = acc;
                }
            }
        }
    }
    y
}

#[test]
fn fft_convolution_equals_the_direct_sum() {
    let dev = Cpu::default();
    for (shape, kernels, bidirectional) in [
        ((2, 7, 3), 1, false),
        ((2, 7, 3), 2, true),
        ((1, 33, 2), 4, true),
        ((3, 16, 1), 2, false),
        // 21 channels: blocks of 16 transformed together that span examples, and a partial one.
        ((3, 20, 7), 2, true),
    ] {
        let (b, l, h) = shape;
        let u = random_values(b * l * h, 1);
        let k = random_values(kernels * h * l, 2);
        let y = long_conv_cpu(
            dev.tensor_from_vec(u.clone(), shape),
            dev.tensor_from_vec(k.clone(), (kernels, h, l)),
            bidirectional,
        )
        .unwrap()
        .as_vec();
        assert_close(&y, &direct(&u, &k, shape, bidirectional), 1e-10, "y");
    }
}

#[test]
fn gradient_matches_finite_differences() {
    for (kernels, bidirectional) in [(2, false), (4, true)] {
        let (b, l, h) = (2, 6, 2);
        let c = kernels / if bidirectional { 2 } else { 1 };
        gradcheck(
            &[
                random_values(b * l * h, 3),
                random_values(kernels * h * l, 4),
            ],
            |mut xs| {
                let k = xs.pop().unwrap().reshape_like(&(kernels, h, l));
                let u = xs.pop().unwrap().reshape_like(&(b, l, h));
                long_conv_cpu(u, k, bidirectional)
                    .unwrap()
                    .reshape_like(&(b * l * c * h,))
            },
            1e-6,
        );
    }
}

#[test]
fn composed_matches_fused_with_gradients() {
    let dev = Cpu::default();
    for (shape, kernels, bidirectional) in [((2, 9, 3), 2, false), ((2, 8, 2), 4, true)] {
        let (b, l, h) = shape;
        let c = kernels / if bidirectional { 2 } else { 1 };
        let u = dev.tensor_from_vec(random_values(b * l * h, 5), shape);
        let k = dev.tensor_from_vec(random_values(kernels * h * l, 6), (kernels, h, l));
        let weights = dev.tensor_from_vec(random_values(b * l * c * h, 7), (b, l, c * h));
        let run = |fused: bool| {
            let y = if fused {
                long_conv_cpu(u.leaky_trace(), k.retaped(), bidirectional).unwrap()
            } else {
                long_conv_composed(u.leaky_trace(), k.retaped(), bidirectional)
            };
            let value = y.as_vec();
            let g = (y * weights.clone()).sum().backward();
            (value, g.get(&u).as_vec(), g.get(&k).as_vec())
        };
        let (fused, composed) = (run(true), run(false));
        assert_close(&fused.0, &composed.0, 1e-10, "y");
        assert_close(&fused.1, &composed.1, 1e-10, "∂u");
        assert_close(&fused.2, &composed.2, 1e-10, "∂K");
    }
}
