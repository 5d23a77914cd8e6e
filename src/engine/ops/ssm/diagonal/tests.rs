use super::*;
use crate::engine::ops::gradcheck::{assert_close, gradcheck, random_values};

type Inputs = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>);

/// u, Re ζ (< 0), Im ζ, Re W, Im W.
fn inputs(b: usize, l: usize, h: usize, n: usize, kernels: usize, seed: u64) -> Inputs {
    let zr = random_values(h * n, seed + 1)
        .iter()
        .map(|v| -0.05 - 0.3 * v.abs())
        .collect();
    (
        random_values(b * l * h, seed),
        zr,
        random_values(h * n, seed + 2),
        random_values(kernels * h * n, seed + 3),
        random_values(kernels * h * n, seed + 4),
    )
}

#[test]
fn convolution_form_equals_recurrent_form_with_gradients() {
    let dev = Cpu::default();
    let (b, l, h, n) = (2, 29, 3, 4);
    let to32 = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    for (kernels, bidirectional) in [(1, false), (2, false), (2, true)] {
        let (u, zr, zi, wr, wi) = inputs(b, l, h, n, kernels, 10);
        let c = kernels / if bidirectional { 2 } else { 1 };
        let u = dev.tensor_from_vec(to32(&u), (b, l, h));
        let zr = dev.tensor_from_vec(to32(&zr), (h, n));
        let zi = dev.tensor_from_vec(to32(&zi), (h, n));
        let wr = dev.tensor_from_vec(to32(&wr), (kernels, h, n));
        let wi = dev.tensor_from_vec(to32(&wi), (kernels, h, n));
        let weights = dev.tensor_from_vec(to32(&random_values(b * l * c * h, 5)), (b, l, c * h));
        let run = |convolution: bool| {
            let params = DiagonalParams {
                zeta: (zr.retaped(), zi.retaped()),
                w: (wr.retaped(), wi.retaped()),
            };
            let y = if convolution {
                diagonal_ssm_cpu(u.leaky_trace(), params, bidirectional).unwrap()
            } else {
                diagonal_ssm_composed(u.leaky_trace(), params, bidirectional)
            };
            let value = y.as_vec();
            let g = (y * weights.clone()).sum().backward();
            let grads = vec![
                g.get(&u).as_vec(),
                g.get(&zr).as_vec(),
                g.get(&zi).as_vec(),
                g.get(&wr).as_vec(),
                g.get(&wi).as_vec(),
            ];
            (value, grads)
        };
        let (conv, rec) = (run(true), run(false));
        assert_close(&conv.0, &rec.0, 1e-4, "y");
        for (i, (a, b)) in conv.1.iter().zip(&rec.1).enumerate() {
            assert_close(
                a,
                b,
                1e-3,
                &format!("gradient {i} (bidirectional {bidirectional})"),
            );
        }
    }
}

#[test]
fn causal_output_ignores_later_inputs() {
    let dev = Cpu::default();
    let (b, l, h, n) = (1, 40, 2, 3);
    let (u, zr, zi, wr, wi) = inputs(b, l, h, n, 1, 20);
    let run = |u: Vec<f64>| {
        let params = DiagonalParams {
            zeta: (
                dev.tensor_from_vec(zr.clone(), (h, n)),
                dev.tensor_from_vec(zi.clone(), (h, n)),
            ),
            w: (
                dev.tensor_from_vec(wr.clone(), (1, h, n)),
                dev.tensor_from_vec(wi.clone(), (1, h, n)),
            ),
        };
        diagonal_ssm_cpu(dev.tensor_from_vec(u, (b, l, h)), params, false)
            .unwrap()
            .as_vec()
    };
    let t = 17;
    let mut changed = u.clone();
    changed[(t + 1) * h..].iter_mut().for_each(|v| *v += 3.0);
    let (before, after) = (run(u), run(changed));
    assert_close(
        &before[..(t + 1) * h],
        &after[..(t + 1) * h],
        1e-12,
        "y up to t",
    );
    assert!(before[(t + 1) * h..]
        .iter()
        .zip(&after[(t + 1) * h..])
        .any(|(a, b)| (a - b).abs() > 1e-6));
}

#[test]
fn gradient_matches_finite_differences() {
    let (b, l, h, n) = (1, 5, 2, 2);
    let (u, zr, zi, wr, wi) = inputs(b, l, h, n, 2, 30);
    gradcheck(
        &[u, zr, zi, wr, wi],
        |mut xs| {
            let wi = xs.pop().unwrap().reshape_like(&(2, h, n));
            let wr = xs.pop().unwrap().reshape_like(&(2, h, n));
            let zi = xs.pop().unwrap().reshape_like(&(h, n));
            let zr = xs.pop().unwrap().reshape_like(&(h, n));
            let u = xs.pop().unwrap().reshape_like(&(b, l, h));
            let params = DiagonalParams {
                zeta: (zr, zi),
                w: (wr, wi),
            };
            diagonal_ssm_cpu(u, params, true)
                .unwrap()
                .reshape_like(&(b * l * h,))
        },
        1e-6,
    );
}
