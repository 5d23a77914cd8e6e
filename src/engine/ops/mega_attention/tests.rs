use super::*;
use crate::engine::ops::gradcheck::{assert_close, gradcheck, random_values};
use crate::engine::ops::laplace::{laplace_mu, laplace_sigma};

/// The reference's `SimpleRelativePositionalBias.forward(n)` step by step on a table of
/// 2P − 1 values: the middle 2n − 1, padded with n zeros, tiled n times, the last n dropped,
/// viewed as n × (3n − 2), and columns n − 1 .. 2n − 1 kept.
fn reference_bias_matrix(w: &[f64], positions: usize, n: usize) -> Vec<f64> {
    let b = &w[positions - n..positions + n - 1];
    let mut t: Vec<f64> = b.to_vec();
    t.extend(std::iter::repeat_n(0.0, n));
    let tiled: Vec<f64> = t.iter().copied().cycle().take(t.len() * n).collect();
    let t = &tiled[..tiled.len() - n];
    let width = 3 * n - 2;
    let r = (2 * n - 1) / 2;
    (0..n)
        .flat_map(|i| t[i * width + r..i * width + width - r].to_vec())
        .collect()
}

#[test]
fn the_bias_index_is_the_references_toeplitz_matrix() {
    let positions = 7;
    let w: Vec<f64> = (0..2 * positions - 1).map(|x| x as f64).collect();
    for n in 1..=positions {
        let want = reference_bias_matrix(&w, positions, n);
        let got: Vec<f64> = (0..n)
            .flat_map(|i| (0..n).map(move |j| (i, j)))
            .map(|(i, j)| w[j + positions - 1 - i])
            .collect();
        assert_eq!(got, want, "n = {n}");
    }
}

/// The definition with an explicit dense score matrix per row, in f64: every (i, j) score,
/// the bias added, unseen keys removed, f applied, dropout factors, then the product with V.
fn dense(
    [q, k, v, w]: [&[f64]; 4],
    (rows, chunk, z, e): (usize, usize, usize, usize),
    lengths: &[usize],
    spec: &ChunkSpec,
) -> Vec<f64> {
    let positions = w.len().div_ceil(2);
    let drop = DropMask::new(spec, chunk);
    let mut out = vec![0.0; rows * chunk * e];
    for (r, &len) in lengths.iter().enumerate() {
        let len = len.min(chunk);
        let mut scores = vec![vec![f64::NEG_INFINITY; chunk]; chunk];
        for (i, row) in scores.iter_mut().enumerate().take(len) {
            let seen = if spec.causal { i + 1 } else { len };
            let c = match spec.function {
                AttentionFunction::Softmax => 1.0 / (z as f64).sqrt(),
                AttentionFunction::Laplace => 1.0 / seen as f64,
            };
            for (j, s) in row.iter_mut().enumerate().take(seen) {
                let dot: f64 = (0..z)
                    .map(|x| q[(r * chunk + i) * z + x] * k[(r * chunk + j) * z + x])
                    .sum();
                *s = c * dot + w[j + positions - 1 - i];
            }
        }
        for (i, row) in scores.iter().enumerate().take(len) {
            let weights: Vec<f64> = match spec.function {
                AttentionFunction::Softmax => {
                    let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let exps: Vec<f64> = row.iter().map(|s| (s - max).exp()).collect();
                    let total: f64 = exps.iter().sum();
                    exps.iter().map(|x| x / total).collect()
                }
                AttentionFunction::Laplace => row
                    .iter()
                    .map(|&s| {
                        if s == f64::NEG_INFINITY {
                            return 0.0;
                        }
                        let zs = (s - laplace_mu()) / (laplace_sigma() * 2f64.sqrt());
                        0.5 * (1.0 + libm::erf(zs))
                    })
                    .collect(),
            };
            for (j, a) in weights.iter().enumerate() {
                let d = drop.map_or(1.0, |m| m.factor(r, i, j));
                for x in 0..e {
                    out[(r * chunk + i) * e + x] += d * a * v[(r * chunk + j) * e + x];
                }
            }
        }
    }
    out
}

struct Case {
    dims: (usize, usize, usize, usize),
    lengths: Vec<usize>,
    q: Vec<f64>,
    k: Vec<f64>,
    v: Vec<f64>,
    w: Vec<f64>,
}

impl Case {
    /// Rows of one full chunk, one partial, one empty; v wider than z; a bias table longer
    /// than the chunk needs (P > C), as when the chunk is clamped to a short input.
    fn new(chunk: usize, seed: u64) -> Self {
        let (rows, z, e) = (3, 4, 6);
        let positions = chunk + 2;
        let scaled =
            |n, s, f: f64| -> Vec<f64> { random_values(n, s).iter().map(|x| f * x).collect() };
        Case {
            dims: (rows, chunk, z, e),
            lengths: vec![chunk, chunk - 2, 0],
            q: scaled(rows * chunk * z, seed, 1.5),
            k: scaled(rows * chunk * z, seed + 1, 1.5),
            v: scaled(rows * chunk * e, seed + 2, 1.0),
            w: scaled(2 * positions - 1, seed + 3, 0.5),
        }
    }

    fn want(&self, spec: &ChunkSpec) -> Vec<f64> {
        dense(
            [&self.q, &self.k, &self.v, &self.w],
            self.dims,
            &self.lengths,
            spec,
        )
    }

    /// The op on `inputs` (q, k, v, w as flat traced vectors).
    fn run(&self, inputs: Vec<Traced1>, spec: &ChunkSpec, fused: bool) -> Traced1 {
        let (rows, chunk, z, e) = self.dims;
        let mut it = inputs.into_iter();
        let mut next = || it.next().unwrap();
        let q = next().reshape_like(&(rows, chunk, z));
        let k = next().reshape_like(&(rows, chunk, z));
        let v = next().reshape_like(&(rows, chunk, e));
        let w = next();
        let out = if fused {
            mega_attention_cpu(q, k, v, w, spec, &self.lengths).unwrap()
        } else {
            mega_attention_composed(q, k, v, w, spec, &self.lengths)
        };
        out.reshape_like(&(rows * chunk * e,))
    }

    fn inputs(&self) -> [Vec<f64>; 4] {
        [
            self.q.clone(),
            self.k.clone(),
            self.v.clone(),
            self.w.clone(),
        ]
    }
}

type Traced1 = crate::engine::ops::gradcheck::Traced1;

fn specs() -> Vec<ChunkSpec> {
    let mut specs = Vec::new();
    for function in [AttentionFunction::Softmax, AttentionFunction::Laplace] {
        for causal in [false, true] {
            for dropout in [0.0, 0.3] {
                specs.push(ChunkSpec {
                    function,
                    causal,
                    dropout,
                    seed: 11,
                });
            }
        }
    }
    specs
}

/// The composed Laplace function evaluates erf by a polynomial (about 1e-7 accurate).
fn composed_tolerance(spec: &ChunkSpec) -> f64 {
    match spec.function {
        AttentionFunction::Softmax => 1e-9,
        AttentionFunction::Laplace => 1e-6,
    }
}

fn forward_of(case: &Case, spec: &ChunkSpec, fused: bool) -> Vec<f64> {
    let dev = Cpu::default();
    let inputs = case.inputs().map(|x| {
        dev.tensor_from_vec(x.clone(), (x.len(),))
            .retaped::<OwnedTape<f64, Cpu>>()
    });
    case.run(inputs.into(), spec, fused).as_vec()
}

#[test]
fn fused_and_composed_equal_the_dense_definition() {
    // A chunk of 70 puts two query blocks (64 + 6) in a row.
    for chunk in [5, 70] {
        let case = Case::new(chunk, 1);
        for spec in specs() {
            let want = case.want(&spec);
            assert_close(&forward_of(&case, &spec, true), &want, 1e-12, "fused");
            let tol = composed_tolerance(&spec);
            assert_close(&forward_of(&case, &spec, false), &want, tol, "composed");
        }
    }
}

#[test]
fn padded_queries_output_zero_and_the_empty_row_too() {
    let case = Case::new(5, 2);
    let (_, chunk, _, e) = case.dims;
    for spec in specs() {
        let out = forward_of(&case, &spec, true);
        for (r, &len) in case.lengths.iter().enumerate() {
            let padded = &out[(r * chunk + len) * e..(r + 1) * chunk * e];
            assert!(padded.iter().all(|&x| x == 0.0), "{spec:?} row {r}");
        }
    }
}

#[test]
fn causal_outputs_ignore_later_positions() {
    let case = Case::new(6, 3);
    let (_, chunk, z, e) = case.dims;
    for function in [AttentionFunction::Softmax, AttentionFunction::Laplace] {
        let spec = ChunkSpec {
            function,
            causal: true,
            dropout: 0.0,
            seed: 0,
        };
        let before = forward_of(&case, &spec, true);
        // Change every input at position 3 of row 0: outputs 0..3 must not move.
        let mut changed = Case::new(6, 3);
        for x in 0..z {
            changed.q[3 * z + x] += 1.0;
            changed.k[3 * z + x] -= 1.0;
        }
        for x in 0..e {
            changed.v[3 * e + x] += 2.0;
        }
        let after = forward_of(&changed, &spec, true);
        assert_eq!(before[..3 * e], after[..3 * e], "{function:?}");
        assert_ne!(before[3 * e..chunk * e], after[3 * e..chunk * e]);
    }
}

#[test]
fn gradients_match_finite_differences() {
    for chunk in [5, 70] {
        let case = Case::new(chunk, 4);
        // Two query blocks per row: the dropout specs suffice (each coordinate costs two
        // forward passes).
        let specs = specs()
            .into_iter()
            .filter(|s| chunk < 64 || s.dropout > 0.0);
        for spec in specs {
            gradcheck(&case.inputs(), |inputs| case.run(inputs, &spec, true), 1e-6);
        }
    }
}

#[test]
fn composed_gradients_equal_the_fused_ones() {
    let case = Case::new(5, 5);
    let dev = Cpu::default();
    for spec in specs() {
        let grads = |fused: bool| -> Vec<Vec<f64>> {
            let tensors = case
                .inputs()
                .map(|x| dev.tensor_from_vec(x.clone(), (x.len(),)));
            let traced = tensors
                .iter()
                .map(|t| t.retaped::<OwnedTape<f64, Cpu>>())
                .collect();
            let out = case.run(traced, &spec, fused);
            let n = out.shape().0;
            let weights = dev.tensor_from_vec(random_values(n, 9), (n,));
            let grads = (out * weights).sum().backward();
            tensors.iter().map(|t| grads.get(t).as_vec()).collect()
        };
        for (which, (a, b)) in grads(true).iter().zip(&grads(false)).enumerate() {
            let tol = 10.0 * composed_tolerance(&spec);
            assert_close(a, b, tol, &format!("{spec:?} input {which}"));
        }
    }
}

#[test]
fn dropout_drops_its_share_and_changes_with_the_seed() {
    let spec = |seed| ChunkSpec {
        function: AttentionFunction::Softmax,
        causal: false,
        dropout: 0.25,
        seed,
    };
    let chunk = 64;
    let mask = DropMask::new(&spec(1), chunk).unwrap();
    let cells: Vec<(usize, usize, usize)> = (0..8)
        .flat_map(|r| (0..chunk).flat_map(move |i| (0..chunk).map(move |j| (r, i, j))))
        .collect();
    let dropped = cells
        .iter()
        .filter(|&&(r, i, j)| mask.factor(r, i, j) == 0.0)
        .count() as f64
        / cells.len() as f64;
    assert!((dropped - 0.25).abs() < 0.01, "dropped {dropped}");
    assert!(cells
        .iter()
        .all(|&(r, i, j)| [0.0, 1.0 / 0.75].contains(&mask.factor(r, i, j))));
    let other = DropMask::new(&spec(2), chunk).unwrap();
    let same = cells
        .iter()
        .filter(|&&(r, i, j)| mask.factor(r, i, j) == other.factor(r, i, j))
        .count() as f64
        / cells.len() as f64;
    // Two independent masks agree on 0.75² + 0.25² of the cells.
    assert!((same - 0.625).abs() < 0.02, "agree on {same}");
    assert!(DropMask::new(
        &ChunkSpec {
            dropout: 0.0,
            ..spec(1)
        },
        chunk
    )
    .is_none());
}
