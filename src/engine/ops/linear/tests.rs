use super::*;
use crate::engine::ops::gradcheck::{assert_close, gradcheck, random_values};

#[test]
fn gradient_matches_finite_differences() {
    let (rows, inputs, outputs) = (5, 3, 4);
    for with_bias in [true, false] {
        let mut values = vec![
            random_values(rows * inputs, 60),
            random_values(inputs * outputs, 61),
        ];
        if with_bias {
            values.push(random_values(outputs, 62));
        }
        gradcheck(
            &values,
            |mut v| {
                let b = with_bias.then(|| v.pop().unwrap());
                let w = v.pop().unwrap().reshape_like(&(inputs, outputs));
                let x = v.pop().unwrap().reshape_like(&(rows, inputs));
                let y = match b {
                    Some(b) => linear_cpu(x, w, b),
                    None => matmul_cpu(x, w),
                };
                y.unwrap().reshape_like(&(rows * outputs,))
            },
            1e-6,
        );
    }
}

/// Sizes that cross the row blocks, the 8-row and 32-column tiles and the per-thread split.
#[test]
fn fused_matches_composed_with_gradients() {
    let dev = Cpu::default();
    let (rows, inputs, outputs) = (300, 37, 45);
    let make = |n, seed, shape: (usize, usize)| {
        let v: Vec<f32> = random_values(n, seed).iter().map(|&x| x as f32).collect();
        dev.tensor_from_vec(v, shape)
    };
    let x = make(rows * inputs, 63, (rows, inputs));
    let w = make(inputs * outputs, 64, (inputs, outputs));
    let b: Tensor<(usize,), f32, Cpu> = dev.tensor_from_vec(
        random_values(outputs, 65)
            .iter()
            .map(|&v| v as f32)
            .collect(),
        (outputs,),
    );
    let weights = make(rows * outputs, 66, (rows, outputs));
    for with_bias in [true, false] {
        let run = |fused: bool| {
            let (xt, wt, bt) = (x.leaky_trace(), w.retaped(), b.retaped());
            let y = match (fused, with_bias) {
                (true, true) => linear_cpu(xt, wt, bt).unwrap(),
                (false, true) => linear_composed(xt, wt, bt),
                (true, false) => matmul_cpu(xt, wt).unwrap(),
                (false, false) => matmul_composed(xt, wt),
            };
            let value = y.as_vec();
            let grads = (y * weights.clone()).sum().backward();
            let mut out = vec![value, grads.get(&x).as_vec(), grads.get(&w).as_vec()];
            if with_bias {
                out.push(grads.get(&b).as_vec());
            }
            out
        };
        let (f, c) = (run(true), run(false));
        for (what, (a, b)) in ["y", "dx", "dW", "db"].iter().zip(f.iter().zip(&c)) {
            assert_close(a, b, 1e-4, what);
        }
    }
}
