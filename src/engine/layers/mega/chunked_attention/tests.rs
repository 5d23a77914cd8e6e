use super::*;
use crate::engine::ops::gradcheck::random_values;
use crate::engine::ops::laplace::{laplace_mu, laplace_sigma};
use crate::engine::params::ParamStore;

/// The definition, one query at a time: the keys of the query's own chunk that are true
/// (and not later, if causal), f(scores) over them, and 0 for a query that sees no key.
#[allow(clippy::too_many_arguments)]
fn direct(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    (batch, len, z, e): (usize, usize, usize, usize),
    lengths: &[usize],
    attention: &ChunkedAttention,
) -> Vec<f32> {
    let chunk = attention.chunk.unwrap_or(len);
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
            let weights: Vec<f64> = match attention.function {
                AttentionFunction::Softmax => {
                    let scores: Vec<f64> =
                        keys.iter().map(|&j| dot(j) / (z as f64).sqrt()).collect();
                    let max = scores.iter().cloned().fold(f64::MIN, f64::max);
                    let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                    let total: f64 = exps.iter().sum();
                    exps.iter().map(|x| x / total).collect()
                }
                AttentionFunction::Laplace => keys
                    .iter()
                    .map(|&j| {
                        let s = dot(j) / keys.len() as f64;
                        let zs = (s - laplace_mu()) / (laplace_sigma() * 2f64.sqrt());
                        0.5 * (1.0 + libm::erf(zs))
                    })
                    .collect(),
            };
            for (w, &j) in weights.iter().zip(&keys) {
                for c in 0..e {
                    out[(b * len + i) * e + c] += (w * v[(b * len + j) * e + c] as f64) as f32;
                }
            }
        }
    }
    out
}

#[test]
fn chunked_attention_equals_its_definition() {
    let store = ParamStore::new(Cpu::default(), 0);
    let dev = store.device().clone();
    // v wider than z and not a multiple of it; 10 positions in chunks of 4 (the last one
    // partial); the second example ends inside its first chunk, so its later chunks are empty.
    let (batch, len, z, e) = (2, 10, 4, 6);
    let lengths = [10, 3];
    let q: Vec<f32> = random_values(batch * len * z, 1)
        .iter()
        .map(|&x| 2.0 * x as f32)
        .collect();
    let k: Vec<f32> = random_values(batch * len * z, 2)
        .iter()
        .map(|&x| 2.0 * x as f32)
        .collect();
    let v: Vec<f32> = random_values(batch * len * e, 3)
        .iter()
        .map(|&x| x as f32)
        .collect();
    let ctx = Ctx {
        params: &store,
        train: false,
        lengths: &lengths,
    };
    for function in [AttentionFunction::Softmax, AttentionFunction::Laplace] {
        for chunk in [None, Some(4), Some(5)] {
            for causal in [false, true] {
                let attention = ChunkedAttention {
                    chunk,
                    function,
                    causal,
                };
                let got = attention
                    .forward::<Cpu, NoneTape>(
                        dev.tensor_from_vec(q.clone(), (batch, len, z)),
                        dev.tensor_from_vec(k.clone(), (batch, len, z)),
                        dev.tensor_from_vec(v.clone(), (batch, len, e)),
                        &ctx,
                    )
                    .unwrap()
                    .as_vec();
                let want = direct(&q, &k, &v, (batch, len, z, e), &lengths, &attention);
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
