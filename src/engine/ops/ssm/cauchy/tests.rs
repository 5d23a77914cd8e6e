use super::*;
use crate::engine::ops::gradcheck::{assert_close, gradcheck, random_values};

/// S4's nodes for a kernel of length `len`: a = 1 − ω, b = (1 + ω)/2, ω = exp(−2πi·f/len).
fn nodes(len: usize) -> Nodes {
    Nodes(
        (0..len / 2 + 1)
            .map(|f| {
                let omega =
                    Complex64::from_polar(1.0, -std::f64::consts::TAU * f as f64 / len as f64);
                (1.0 - omega, (1.0 + omega) / 2.0)
            })
            .collect(),
    )
}

/// Poles with negative real parts, as S4's Δ·Λ.
fn poles(h: usize, m: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let re = random_values(h * m, seed)
        .iter()
        .map(|v| -0.05 - 0.5 * v.abs())
        .collect();
    let im = random_values(h * m, seed + 1)
        .iter()
        .map(|v| 2.0 * v)
        .collect();
    (re, im)
}

#[test]
fn known_sum_of_one_real_pole() {
    // v = 1, w = −1, one node a = 2, b = 1: 1/3 + 1/3.
    let dev = Cpu::default();
    let v = (
        dev.tensor_from_vec(vec![1.0f64], (1, 1, 1)),
        dev.tensor_from_vec(vec![0.0], (1, 1, 1)),
    );
    let w = (
        dev.tensor_from_vec(vec![-1.0], (1, 1)),
        dev.tensor_from_vec(vec![0.0], (1, 1)),
    );
    let one = Nodes(vec![(Complex64::new(2.0, 0.0), Complex64::new(1.0, 0.0))].into());
    let r = cauchy_cpu(v, w, &one).unwrap().as_vec();
    assert_close(&r, &[2.0 / 3.0, 0.0], 1e-15, "r");
}

#[test]
fn the_conjugate_half_makes_real_nodes_give_real_sums() {
    // For real a and b the two halves are conjugates of each other: Im r = 0.
    let dev = Cpu::default();
    let (s, h, m) = (2, 2, 3);
    let (wr, wi) = poles(h, m, 4);
    let v = (
        dev.tensor_from_vec(random_values(s * h * m, 1), (s, h, m)),
        dev.tensor_from_vec(random_values(s * h * m, 2), (s, h, m)),
    );
    let w = (
        dev.tensor_from_vec(wr, (h, m)),
        dev.tensor_from_vec(wi, (h, m)),
    );
    let real = Nodes(vec![(Complex64::new(1.5, 0.0), Complex64::new(0.5, 0.0))].into());
    let r = cauchy_cpu(v, w, &real).unwrap().as_vec();
    for row in r.chunks(2) {
        assert!(row[0].abs() > 1e-3 && row[1].abs() < 1e-14, "{row:?}");
    }
}

#[test]
fn fused_matches_composed_with_gradients() {
    let dev = Cpu::default();
    let (s, h, m, len) = (3, 2, 4, 10);
    let nodes = nodes(len);
    let f = nodes.len();
    let to32 = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
    let (wr, wi) = poles(h, m, 1);
    let wr = dev.tensor_from_vec(to32(wr), (h, m));
    let wi = dev.tensor_from_vec(to32(wi), (h, m));
    let vr = dev.tensor_from_vec(to32(random_values(s * h * m, 3)), (s, h, m));
    let vi = dev.tensor_from_vec(to32(random_values(s * h * m, 4)), (s, h, m));
    let weights = dev.tensor_from_vec(to32(random_values(s * h * 2 * f, 5)), (s, h, 2 * f));
    let run = |fused: bool| {
        let v = (vr.leaky_trace(), vi.retaped());
        let w = (wr.retaped(), wi.retaped());
        let r = if fused {
            cauchy_cpu(v, w, &nodes).unwrap()
        } else {
            cauchy_composed(v, w, &nodes)
        };
        let value = r.as_vec();
        let grads = (r * weights.clone()).sum().backward();
        let grads: Vec<Vec<f32>> = vec![
            grads.get(&vr).as_vec(),
            grads.get(&vi).as_vec(),
            grads.get(&wr).as_vec(),
            grads.get(&wi).as_vec(),
        ];
        (value, grads)
    };
    let (fused, composed) = (run(true), run(false));
    assert_close(&fused.0, &composed.0, 1e-4, "r");
    for (i, (a, b)) in fused.1.iter().zip(&composed.1).enumerate() {
        assert_close(a, b, 1e-3, &format!("gradient {i}"));
    }
}

#[test]
fn gradient_matches_finite_differences() {
    let (s, h, m, len) = (2, 2, 3, 8);
    let nodes = nodes(len);
    let (wr, wi) = poles(h, m, 6);
    gradcheck(
        &[
            random_values(s * h * m, 8),
            random_values(s * h * m, 9),
            wr,
            wi,
        ],
        |mut xs| {
            let wi = xs.pop().unwrap().reshape_like(&(h, m));
            let wr = xs.pop().unwrap().reshape_like(&(h, m));
            let vi = xs.pop().unwrap().reshape_like(&(s, h, m));
            let vr = xs.pop().unwrap().reshape_like(&(s, h, m));
            let r = cauchy_cpu((vr, vi), (wr, wi), &nodes).unwrap();
            let numel = r.shape().num_elements();
            r.reshape_like(&(numel,))
        },
        1e-6,
    );
}
