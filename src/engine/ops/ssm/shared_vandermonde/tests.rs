use super::*;
use crate::engine::ops::gradcheck::{assert_close, gradcheck, random_values};
use crate::engine::ops::ssm::vandermonde::vandermonde_cpu;

/// Re ζ < 0 (decaying modes) and Im ζ anywhere on the circle.
fn zeta_parts(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let re = random_values(n, seed)
        .iter()
        .map(|v| -0.02 - 0.3 * v.abs())
        .collect();
    let im = random_values(n, seed + 1).iter().map(|v| 3.0 * v).collect();
    (re, im)
}

#[test]
fn known_kernel_of_one_real_mode_in_every_channel() {
    // λ = ½ in both channels, W = 1 and W = 2 + i: K_l = 2^{−l} and 2·2^{−l}.
    let dev = Cpu::default();
    let zeta = (
        dev.tensor_from_vec(vec![0.5f64.ln()], (1,)),
        dev.tensor_from_vec(vec![0.0], (1,)),
    );
    let w = (
        dev.tensor_from_vec(vec![1.0, 2.0], (1, 2, 1)),
        dev.tensor_from_vec(vec![0.0, 1.0], (1, 2, 1)),
    );
    let k = shared_vandermonde_cpu(zeta, w, 4).unwrap().as_vec();
    assert_close(
        &k,
        &[1.0, 0.5, 0.25, 0.125, 2.0, 1.0, 0.5, 0.25],
        1e-12,
        "kernel",
    );
}

/// The fused kernel, its composed form and S4D's per-channel kernel given λ broadcast to every
/// channel and W/2 (which computes 2·Re Σ W/2·λ^l): the same kernel and the same gradients.
#[test]
fn fused_matches_composed_and_the_per_channel_path_with_gradients() {
    let dev = Cpu::default();
    // More rows than one parallel task and modes than one task of ∂ζ, neither a multiple.
    let (k, h, n, len) = (2, 11, 13, 70);
    let to32 = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
    let (zr, zi) = zeta_parts(n, 1);
    let zr = dev.tensor_from_vec(to32(zr), (n,));
    let zi = dev.tensor_from_vec(to32(zi), (n,));
    let wr = dev.tensor_from_vec(to32(random_values(k * h * n, 3)), (k, h, n));
    let wi = dev.tensor_from_vec(to32(random_values(k * h * n, 4)), (k, h, n));
    let weights = dev.tensor_from_vec(to32(random_values(k * h * len, 5)), (k, h, len));
    let run = |form: usize| {
        let zeta = (zr.leaky_trace(), zi.retaped());
        let w = (wr.retaped(), wi.retaped());
        let kernel = match form {
            0 => shared_vandermonde_cpu(zeta, w, len).unwrap(),
            1 => shared_vandermonde_composed(zeta, w, len),
            _ => {
                let broadcast = (
                    zeta.0.broadcast_like::<_, Axis<0>>(&(h, n)),
                    zeta.1.broadcast_like::<_, Axis<0>>(&(h, n)),
                );
                vandermonde_cpu(broadcast, (w.0 * 0.5, w.1 * 0.5), len).unwrap()
            }
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
    let fused = run(0);
    for (form, name) in [(1, "composed"), (2, "per-channel")] {
        let other = run(form);
        assert_close(&fused.0, &other.0, 1e-4, &format!("kernel vs {name}"));
        for (i, (a, b)) in fused.1.iter().zip(&other.1).enumerate() {
            assert_close(a, b, 1e-3, &format!("gradient {i} vs {name}"));
        }
    }
}

#[test]
fn long_kernels_stay_accurate_in_f32() {
    // L = 16,384 (Path-X) with slowly decaying modes, against exp(l·ζ) in f64: the powers by
    // repeated multiplication keep the phase that l·θ in f32 would lose.
    let dev = Cpu::default();
    let (n, len) = (4, 16_384);
    let zr = vec![-1e-5f32, -1e-4, -1e-3, -2e-5];
    let zi = vec![0.1f32, 1.0, 2.5, 3.1];
    let wr = vec![0.5f32, -0.25, 1.0, 0.75];
    let wi = vec![0.25f32, 0.5, -0.5, 1.0];
    let kernel = shared_vandermonde_cpu(
        (
            dev.tensor_from_vec(zr.clone(), (n,)),
            dev.tensor_from_vec(zi.clone(), (n,)),
        ),
        (
            dev.tensor_from_vec(wr.clone(), (1, 1, n)),
            dev.tensor_from_vec(wi.clone(), (1, 1, n)),
        ),
        len,
    )
    .unwrap()
    .as_vec();
    let exact: Vec<f32> = (0..len)
        .map(|l| {
            (0..n)
                .map(|m| {
                    let z = Complex64::new(zr[m] as f64, zi[m] as f64) * l as f64;
                    (Complex64::new(wr[m] as f64, wi[m] as f64) * z.exp()).re
                })
                .sum::<f64>() as f32
        })
        .collect();
    assert_close(&kernel, &exact, 1e-5, "kernel");
}

#[test]
fn gradient_matches_finite_differences() {
    let (k, h, n, len) = (2, 3, 3, 9);
    let (zr, zi) = zeta_parts(n, 6);
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
            let zi = xs.pop().unwrap();
            let zr = xs.pop().unwrap();
            shared_vandermonde_cpu((zr, zi), (wr, wi), len)
                .unwrap()
                .reshape_like(&(k * h * len,))
        },
        1e-6,
    );
}
