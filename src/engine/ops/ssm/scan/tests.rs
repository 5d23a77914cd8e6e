use super::*;
use crate::engine::ops::gradcheck::{assert_close, gradcheck, random_values};

/// ζ with Re ζ < 0, so |λ| < 1 as every layer keeps it.
fn stable_log_lambda(m: usize, seed: u64) -> Vec<f64> {
    let r = random_values(2 * m, seed);
    (0..2 * m)
        .map(|j| {
            if j < m {
                -0.05 - 0.5 * r[j].abs()
            } else {
                2.0 * r[j]
            }
        })
        .collect()
}

#[test]
fn sequential_scan_equals_the_parallel_scan_with_gradients() {
    let dev = Cpu::default();
    // 37 states: three blocks of the CPU kernel, the last one partial.
    let (b, l, m) = (3, 29, 37);
    let to32 = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
    let v = dev.tensor_from_vec(to32(random_values(b * l * 2 * m, 1)), (b, l, 2 * m));
    let zeta = dev.tensor_from_vec(to32(stable_log_lambda(m, 2)), (2 * m,));
    let weights = dev.tensor_from_vec(to32(random_values(b * l * 2 * m, 3)), (b, l, 2 * m));
    for reverse in [false, true] {
        let run = |sequential: bool| {
            let (vt, zt) = (v.leaky_trace(), zeta.retaped());
            let x = if sequential {
                complex_scan_cpu(vt, zt, reverse).unwrap()
            } else {
                complex_scan_composed(vt, zt, reverse)
            };
            let value = x.as_vec();
            let grads = (x * weights.clone()).sum().backward();
            (value, grads.get(&v).as_vec(), grads.get(&zeta).as_vec())
        };
        let (s, p) = (run(true), run(false));
        assert_close(&s.0, &p.0, 1e-4, "states");
        assert_close(&s.1, &p.1, 1e-4, "dv");
        assert_close(&s.2, &p.2, 1e-3, "dζ");
    }
}

#[test]
fn the_scan_is_the_recurrence() {
    // One state, λ = 0.5i: x = [1, 0.5i + 2, 0.5i(0.5i + 2)] = [1, 2 + 0.5i, −0.25 + i].
    // Rows are [Re, Im] per step: v_0 = 1, v_1 = 2, v_2 = 0.
    let dev = Cpu::default();
    let v = dev.tensor_from_vec(vec![1.0f64, 0.0, 2.0, 0.0, 0.0, 0.0], (1, 3, 2));
    let zeta = dev.tensor_from_vec(vec![0.5f64.ln(), std::f64::consts::FRAC_PI_2], (2,));
    let x = complex_scan_cpu(v, zeta, false).unwrap().as_vec();
    assert_close(&x, &[1.0, 0.0, 2.0, 0.5, -0.25, 1.0], 1e-12, "states");
}

#[test]
fn gradient_matches_finite_differences() {
    let (b, l, m) = (2, 6, 3);
    for reverse in [false, true] {
        gradcheck(
            &[random_values(b * l * 2 * m, 4), stable_log_lambda(m, 5)],
            |mut xs| {
                let zeta = xs.pop().unwrap();
                let v = xs.pop().unwrap().reshape_like(&(b, l, 2 * m));
                complex_scan_cpu(v, zeta, reverse)
                    .unwrap()
                    .reshape_like(&(b * l * 2 * m,))
            },
            1e-6,
        );
    }
}

#[test]
fn composed_gradient_matches_finite_differences() {
    let (b, l, m) = (1, 5, 2);
    gradcheck(
        &[random_values(b * l * 2 * m, 6), stable_log_lambda(m, 7)],
        |mut xs| {
            let zeta = xs.pop().unwrap();
            let v = xs.pop().unwrap().reshape_like(&(b, l, 2 * m));
            complex_scan_composed(v, zeta, true).reshape_like(&(b * l * 2 * m,))
        },
        1e-6,
    );
}
