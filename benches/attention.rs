//! The fused attention op alone: forward and backward of batch 8 × length 1024 × 4 heads of
//! 32, on a rayon pool of 2 threads, with achieved GFLOP/s (4·L²·d per head forward, 10·L²·d
//! backward with the recomputation, halved for causal attention).
//!
//! `cargo bench --bench attention [-- --seq 1024 --threads 2 --causal --window 4096]`

#[path = "common/mod.rs"]
mod common;

use std::time::Instant;

use common::{arg, median};
use dfdx::prelude::*;
use lra::engine::ops::attention::attention_cpu;
use lra::engine::ops::{AttentionKind, AttentionSpec};

fn main() {
    lra::engine::allocator::retain_freed_memory();
    let seq: usize = arg("--seq").and_then(|s| s.parse().ok()).unwrap_or(1024);
    let threads: usize = arg("--threads").and_then(|s| s.parse().ok()).unwrap_or(2);
    let causal = std::env::args().any(|a| a == "--causal");
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .expect("rayon pool");
    let batch: usize = arg("--batch").and_then(|s| s.parse().ok()).unwrap_or(8);
    let (heads, width) = (4, 128);
    let dev = Cpu::seed_from_u64(0);
    let q: Tensor<(usize, usize, usize), f32, Cpu> = dev.sample_normal_like(&(batch, seq, width));
    let k = dev.sample_normal_like(&(batch, seq, width));
    let v = dev.sample_normal_like(&(batch, seq, width));
    let window: Option<usize> = arg("--window").and_then(|s| s.parse().ok());
    let kind = match window {
        Some(window) => AttentionKind::Local { window, causal },
        None if causal => AttentionKind::Causal,
        None => AttentionKind::Full,
    };
    let spec = AttentionSpec::new(heads, kind);
    let lengths = vec![seq; batch];
    // Visible (query, key) pairs per head, for the FLOP count.
    let pairs = match window {
        Some(w) => (0..seq)
            .map(|i| ((i / w + 2) * w).min(seq) - (i / w).saturating_sub(1) * w)
            .sum::<usize>() as f64,
        None => (seq * seq) as f64,
    };
    let flops_unit =
        (batch * heads * (width / heads)) as f64 * pairs * if causal { 0.5 } else { 1.0 };
    let (mut forward, mut backward) = (Vec::new(), Vec::new());
    for _ in 0..4 {
        let start = Instant::now();
        let out =
            attention_cpu(q.leaky_trace(), k.retaped(), v.retaped(), &spec, &lengths).unwrap();
        forward.push(start.elapsed().as_secs_f64());
        let loss = out.sum();
        let start = Instant::now();
        let _grads = loss.backward();
        backward.push(start.elapsed().as_secs_f64());
    }
    let (f, b) = (median(forward), median(backward));
    println!(
        "attention {kind:?}, batch {batch}, length {seq}, {heads} heads of {}, {threads} threads: forward {:.1} ms ({:.1} GFLOP/s), backward {:.1} ms ({:.1} GFLOP/s)",
        width / heads,
        f * 1e3,
        4.0 * flops_unit / f / 1e9,
        b * 1e3,
        10.0 * flops_unit / b / 1e9
    );
}
