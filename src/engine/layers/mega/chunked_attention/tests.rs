use super::*;
use crate::engine::ops::gradcheck::random_values;
use crate::engine::ops::laplace::{laplace_mu, laplace_sigma};
use crate::engine::params::ParamStore;

/// The definition, one query at a time: the keys of the query's own chunk that are true
/// (and not later, if causal), f(scores + bias) over them, the bias indexed by the offset
/// within the chunk, and 0 for a query that sees no key.
#[allow(clippy::too_many_arguments)]
fn direct(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    w: &[f32],
    (batch, len, z, e): (usize, usize, usize, usize),
    lengths: &[usize],
    attention: &ChunkedAttention,
) -> Vec<f32> {
    let chunk = attention.chunk.unwrap_or(len).min(len);
    let positions = attention.positions;
    let mut out = vec![0.0f32; batch * len * e];
    for b in 0..batch {
        for i in 0..len {
            let start = i / chunk * chunk;
            let keys: Vec<usize> = (start..(start + chunk).min(len))
                .filter(|&j| j < lengths[b] && (!attention.causal || j <= i))
                .collect();
            if keys.is_empty() {
                continue;
            }
            let dot = |j: usize| -> f64 {
                (0..z)
                    .map(|c| (q[(b * len + i) * z + c] * k[(b * len + j) * z + c]) as f64)
                    .sum()
            };
            // B_ij = w[j − i + P − 1] with i, j counted within the chunk.
            let bias = |j: usize| w[(j - start) + positions - 1 - (i - start)] as f64;
            let weights: Vec<f64> = match attention.function {
                AttentionFunction::Softmax => {
                    let scores: Vec<f64> = keys
                        .iter()
                        .map(|&j| dot(j) / (z as f64).sqrt() + bias(j))
                        .collect();
                    let max = scores.iter().cloned().fold(f64::MIN, f64::max);
                    let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                    let total: f64 = exps.iter().sum();
                    exps.iter().map(|x| x / total).collect()
                }
                AttentionFunction::Laplace => keys
                    .iter()
                    .map(|&j| {
                        let s = dot(j) / keys.len() as f64 + bias(j);
                        let zs = (s - laplace_mu()) / (laplace_sigma() * 2f64.sqrt());
                        0.5 * (1.0 + libm::erf(zs))
                    })
                    .collect(),
            };
            for (a, &j) in weights.iter().zip(&keys) {
                for c in 0..e {
                    out[(b * len + i) * e + c] += (a * v[(b * len + j) * e + c] as f64) as f32;
                }
            }
        }
    }
    out
}

fn values(n: usize, seed: u64, scale: f64) -> Vec<f32> {
    random_values(n, seed)
        .iter()
        .map(|&x| (scale * x) as f32)
        .collect()
}

#[test]
fn chunked_attention_equals_its_definition() {
    let store = ParamStore::new(Cpu::default(), 0);
    let dev = store.device().clone();
    // v wider than z and not a multiple of it; 10 positions in chunks of 4 (the last one
    // partial); the second example ends inside its first chunk, so its later chunks are empty.
    let (batch, len, z, e) = (2, 10, 4, 6);
    let lengths = [10, 3];
    let q = values(batch * len * z, 1, 2.0);
    let k = values(batch * len * z, 2, 2.0);
    let v = values(batch * len * e, 3, 1.0);
    let ctx = Ctx {
        params: &store,
        train: false,
        lengths: &lengths,
    };
    for function in [AttentionFunction::Softmax, AttentionFunction::Laplace] {
        // A chunk longer than the input is clamped to it (P = the longest input, 12 here).
        for chunk in [None, Some(4), Some(5), Some(16)] {
            for causal in [false, true] {
                let attention = ChunkedAttention {
                    chunk,
                    function,
                    causal,
                    // Not in training: no weight is dropped.
                    dropout: 0.5,
                    positions: ChunkedAttention::positions(chunk, 12),
                };
                let w = values(attention.bias_len(), 4, 1.0);
                let got = attention
                    .forward::<Cpu, NoneTape>(
                        dev.tensor_from_vec(q.clone(), (batch, len, z)),
                        dev.tensor_from_vec(k.clone(), (batch, len, z)),
                        dev.tensor_from_vec(v.clone(), (batch, len, e)),
                        dev.tensor_from_vec(w.clone(), (w.len(),)),
                        &ctx,
                    )
                    .unwrap()
                    .as_vec();
                let want = direct(&q, &k, &v, &w, (batch, len, z, e), &lengths, &attention);
                for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                    // Only the true positions matter (padded queries are never read).
                    let (b_idx, pos) = (i / (len * e), (i / e) % len);
                    if pos < lengths[b_idx] {
                        assert!(
                            (a - b).abs() < 1e-5,
                            "{attention:?} element {i}: {a} vs {b}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn the_bias_table_bounds_the_chunk() {
    let store = ParamStore::new(Cpu::default(), 0);
    let dev = store.device().clone();
    let attention = ChunkedAttention {
        chunk: None,
        function: AttentionFunction::Softmax,
        causal: false,
        dropout: 0.0,
        positions: ChunkedAttention::positions(None, 6),
    };
    assert_eq!(attention.bias_len(), 11);
    let ctx = Ctx {
        params: &store,
        train: false,
        lengths: &[8],
    };
    let x = || dev.zeros_like(&(1, 8, 2));
    let err = attention
        .forward::<Cpu, NoneTape>(x(), x(), x(), dev.zeros_like(&(11,)), &ctx)
        .unwrap_err();
    assert!(err.to_string().contains("relative position bias"), "{err}");
}

#[test]
fn attention_dropout_acts_in_training_only() {
    let store = ParamStore::new(Cpu::default(), 0);
    let dev = store.device().clone();
    let (len, z, e) = (12, 4, 4);
    let lengths = [len];
    let run = |dropout: f32, train: bool| {
        let attention = ChunkedAttention {
            chunk: Some(6),
            function: AttentionFunction::Softmax,
            causal: false,
            dropout,
            positions: 6,
        };
        let ctx = Ctx {
            params: &store,
            train,
            lengths: &lengths,
        };
        attention
            .forward::<Cpu, NoneTape>(
                dev.tensor_from_vec(values(len * z, 5, 1.0), (1, len, z)),
                dev.tensor_from_vec(values(len * z, 6, 1.0), (1, len, z)),
                dev.tensor_from_vec(values(len * e, 7, 1.0), (1, len, e)),
                dev.tensor_from_vec(values(11, 8, 0.1), (11,)),
                &ctx,
            )
            .unwrap()
            .as_vec()
    };
    let plain = run(0.0, true);
    assert_eq!(run(0.5, false), plain, "evaluation drops nothing");
    let (a, b) = (run(0.5, true), run(0.5, true));
    assert_ne!(a, plain, "training drops weights");
    assert_ne!(a, b, "each call draws a fresh mask");
}
