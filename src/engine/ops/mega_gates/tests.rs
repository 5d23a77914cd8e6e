use super::*;
use crate::engine::ops::gradcheck::{assert_close, gradcheck, random_values, Traced1};

/// The five outputs, flattened and concatenated (the gradient check's one output).
fn flat<E: Dtype, D: Device<E>, T: Tape<E, D> + Merge<T>>(
    g: MegaGates<E, D, T>,
) -> Tensor<(usize,), E, D, T> {
    let flat = |t: Seq3<E, D, T>| {
        let n = t.shape().num_elements();
        t.reshape_like(&(n,))
    };
    let parts = [g.update, g.q, g.k, g.reset, g.projected].map(flat);
    let [a, b, c, d, e] = parts;
    let ab = (a, b).concat_along(Axis::<0>);
    let abc = (ab, c).concat_along(Axis::<0>);
    let abcd = (abc, d).concat_along(Axis::<0>);
    (abcd, e).concat_along(Axis::<0>)
}

/// B = 2, L = 3, d = 2, z = 3, v = 4: M has 2 + 3 + 4 + 2 columns.
const SHAPE: (usize, usize, usize) = (2, 3, 11);
const MODEL: usize = 2;
const Z: usize = 3;

fn check(fused: bool) {
    let (b, l, w) = SHAPE;
    let mixed: Vec<f64> = random_values(b * l * w, 40)
        .iter()
        .map(|v| v * 4.0)
        .collect();
    gradcheck(
        &[mixed, random_values(2 * Z, 41), random_values(2 * Z, 42)],
        |mut v: Vec<Traced1>| {
            let offset = v.pop().unwrap();
            let scale = v.pop().unwrap();
            let mixed = v.pop().unwrap().reshape_like(&SHAPE);
            flat(if fused {
                mega_gates_cpu(mixed, scale, offset, MODEL).unwrap()
            } else {
                mega_gates_composed(mixed, scale, offset, MODEL)
            })
        },
        1e-6,
    );
}

#[test]
fn gradient_matches_finite_differences() {
    check(true);
}

#[test]
fn composed_gradient_matches_finite_differences() {
    check(false);
}

/// MEGA's widths scaled down, over more positions than one parallel task, outputs weighted
/// apart so each gradient path shows.
#[test]
fn fused_matches_composed_with_gradients() {
    let dev = Cpu::default();
    let (b, l, d, z, v) = (3, 70, 8, 6, 10);
    let w = 2 * d + z + v;
    let values = |n, seed, amp: f64| -> Vec<f32> {
        random_values(n, seed)
            .iter()
            .map(|&x| (x * amp) as f32)
            .collect()
    };
    let mixed = dev.tensor_from_vec(values(b * l * w, 43, 5.0), (b, l, w));
    let scale = dev.tensor_from_vec(values(2 * z, 44, 1.0), (2 * z,));
    let offset = dev.tensor_from_vec(values(2 * z, 45, 1.0), (2 * z,));
    let run = |fused: bool| {
        let (m, s, o) = (
            mixed.leaky_trace(),
            scale.leaky_trace(),
            offset.leaky_trace(),
        );
        let out = if fused {
            flat(mega_gates_cpu(m, s, o, d).unwrap())
        } else {
            flat(mega_gates_composed(m, s, o, d))
        };
        let n = out.shape().0;
        let weights = dev.tensor_from_vec(values(n, 46, 1.0), (n,));
        let values = out.as_vec();
        let grads = (out * weights).sum().backward();
        (
            values,
            grads.get(&mixed).as_vec(),
            grads.get(&scale).as_vec(),
            grads.get(&offset).as_vec(),
        )
    };
    let (fused, composed) = (run(true), run(false));
    assert_close(&fused.0, &composed.0, 1e-6, "outputs");
    assert_close(&fused.1, &composed.1, 1e-5, "∂M");
    assert_close(&fused.2, &composed.2, 1e-5, "∂κ");
    assert_close(&fused.3, &composed.3, 1e-5, "∂μ");
}
