use super::*;
use crate::engine::ops::gradcheck::{assert_close, gradcheck, random_values};

fn zeta_parts(h: usize, n: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let re = random_values(h * n, seed)
        .iter()
        .map(|v| -0.02 - 0.3 * v.abs())
        .collect();
    let im = random_values(h * n, seed + 1)
        .iter()
        .map(|v| 3.0 * v)
        .collect();
    (re, im)
}

#[test]
fn known_kernel_of_one_real_mode() {
    // λ = ½, W = 1: K_l = 2·2^{−l}.
    let dev = Cpu::default();
    let zeta = (
        dev.tensor_from_vec(vec![0.5f64.ln()], (1, 1)),
        dev.tensor_from_vec(vec![0.0], (1, 1)),
    );
    let w = (
        dev.tensor_from_vec(vec![1.0], (1, 1, 1)),
        dev.tensor_from_vec(vec![0.0], (1, 1, 1)),
    );
    let k = vandermonde_cpu(zeta, w, 4).unwrap().as_vec();
    assert_close(&k, &[2.0, 1.0, 0.5, 0.25], 1e-12, "kernel");
}

#[test]
fn fused_matches_composed_with_gradients() {
    let dev = Cpu::default();
    let (k, h, n, len) = (2, 3, 4, 50);
    let to32 = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
    let (zr, zi) = zeta_parts(h, n, 1);
    let zr = dev.tensor_from_vec(to32(zr), (h, n));
    let zi = dev.tensor_from_vec(to32(zi), (h, n));
    let wr = dev.tensor_from_vec(to32(random_values(k * h * n, 3)), (k, h, n));
    let wi = dev.tensor_from_vec(to32(random_values(k * h * n, 4)), (k, h, n));
    let weights = dev.tensor_from_vec(to32(random_values(k * h * len, 5)), (k, h, len));
    let run = |fused: bool| {
        let zeta = (zr.leaky_trace(), zi.retaped());
        let w = (wr.retaped(), wi.retaped());
        let kernel = if fused {
            vandermonde_cpu(zeta, w, len).unwrap()
        } else {
            vandermonde_composed(zeta, w, len)
        };
        let value = kernel.as_vec();
        let grads = (kernel * weights.clone()).sum().backward();
        let grads: Vec<Vec<f32>> = vec![
            grads.get(&zr).as_vec(),
            grads.get(&zi).as_vec(),
            grads.get(&wr).as_vec(),
            grads.get(&wi).as_vec(),
        ];
        (value, grads)
    };
    let (f, c) = (run(true), run(false));
    assert_close(&f.0, &c.0, 1e-4, "kernel");
    for (i, (a, b)) in f.1.iter().zip(&c.1).enumerate() {
        assert_close(a, b, 1e-3, &format!("gradient {i}"));
    }
}

#[test]
fn gradient_matches_finite_differences() {
    let (k, h, n, len) = (2, 2, 3, 9);
    let (zr, zi) = zeta_parts(h, n, 6);
    gradcheck(
        &[
            zr,
            zi,
            random_values(k * h * n, 8),
            random_values(k * h * n, 9),
        ],
        |mut xs| {
            let wi = xs.pop().unwrap().reshape_like(&(k, h, n));
            let wr = xs.pop().unwrap().reshape_like(&(k, h, n));
            let zi = xs.pop().unwrap().reshape_like(&(h, n));
            let zr = xs.pop().unwrap().reshape_like(&(h, n));
            vandermonde_cpu((zr, zi), (wr, wi), len)
                .unwrap()
                .reshape_like(&(k * h * len,))
        },
        1e-6,
    );
}
