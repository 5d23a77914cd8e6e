use super::*;
use crate::engine::ops::gradcheck::{assert_close, gradcheck, random_values};

#[test]
fn a_single_bin_gives_a_cosine() {
    // X_1 = n/2·e^{iπ/3}: x_t = cos(2πt/n + π/3).
    let dev = Cpu::default();
    let n = 8;
    let phase = std::f64::consts::FRAC_PI_3;
    let mut re = vec![0.0f64; bins(n)];
    let mut im = vec![0.0f64; bins(n)];
    re[1] = n as f64 / 2.0 * phase.cos();
    im[1] = n as f64 / 2.0 * phase.sin();
    let x = inverse_rfft_cpu(
        (
            dev.tensor_from_vec(re, (1, bins(n))),
            dev.tensor_from_vec(im, (1, bins(n))),
        ),
        n,
    )
    .unwrap()
    .as_vec();
    let expected: Vec<f64> = (0..n)
        .map(|t| (std::f64::consts::TAU * t as f64 / n as f64 + phase).cos())
        .collect();
    assert_close(&x, &expected, 1e-14, "x");
}

#[test]
fn fused_matches_composed_with_gradients_for_even_and_odd_lengths() {
    let dev = Cpu::default();
    for n in [10, 7] {
        let (rows, f) = (3, bins(n));
        let to32 = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
        let re = dev.tensor_from_vec(to32(random_values(rows * f, 1)), (rows, f));
        let im = dev.tensor_from_vec(to32(random_values(rows * f, 2)), (rows, f));
        let weights = dev.tensor_from_vec(to32(random_values(rows * n, 3)), (rows, n));
        let run = |fused: bool| {
            let spectrum = (re.leaky_trace(), im.retaped());
            let x = if fused {
                inverse_rfft_cpu(spectrum, n).unwrap()
            } else {
                inverse_rfft_composed(spectrum, n)
            };
            let value = x.as_vec();
            let g = (x * weights.clone()).sum().backward();
            (value, g.get(&re).as_vec(), g.get(&im).as_vec())
        };
        let (a, b) = (run(true), run(false));
        assert_close(&a.0, &b.0, 1e-5, "x");
        assert_close(&a.1, &b.1, 1e-5, "∂Re");
        assert_close(&a.2, &b.2, 1e-5, "∂Im");
    }
}

#[test]
fn gradient_matches_finite_differences() {
    for n in [6, 5] {
        let (rows, f) = (2, bins(n));
        gradcheck(
            &[random_values(rows * f, 4), random_values(rows * f, 5)],
            |mut xs| {
                let im = xs.pop().unwrap().reshape_like(&(rows, f));
                let re = xs.pop().unwrap().reshape_like(&(rows, f));
                inverse_rfft_cpu((re, im), n)
                    .unwrap()
                    .reshape_like(&(rows * n,))
            },
            1e-6,
        );
    }
}
