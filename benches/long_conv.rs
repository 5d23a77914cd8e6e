//! The FFT convolution of the convolutional SSMs (S4, S4D, DLR, MEGA's EMA) alone: forward and
//! backward of inputs (batch 8, length 1,024, 128 channels) with a bidirectional kernel, the
//! shapes of the step benchmarks' layers, on a rayon pool of `--threads` threads (default 2).
//! Prints the median of 10 runs after 2 warm-up runs.
//!
//! `cargo bench --bench long_conv [-- --threads 2 --len 1024 --causal]`
//!
//! The reference in the same shapes: `python benches/reference/long_conv.py --threads 2`.

#[path = "common/mod.rs"]
mod common;

use std::time::Instant;

use common::median;
use dfdx::prelude::*;
use lra::engine::ops::ssm::long_conv::long_conv_cpu;

fn main() {
    lra::engine::allocator::retain_freed_memory();
    let threads = common::number("--threads", 2);
    let len = common::number("--len", 1024);
    let bidirectional = !std::env::args().any(|a| a == "--causal");
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .expect("rayon pool");
    let (batch, width) = (8, 128);
    let kernels = if bidirectional { 2 } else { 1 };
    let dev = Cpu::seed_from_u64(0);
    let u: Tensor<(usize, usize, usize), f32, Cpu> = dev.sample_normal_like(&(batch, len, width));
    let k: Tensor<(usize, usize, usize), f32, Cpu> = dev.sample_normal_like(&(kernels, width, len));
    let (mut forward, mut backward) = (Vec::new(), Vec::new());
    for run in 0..12 {
        let start = Instant::now();
        let y = long_conv_cpu(u.leaky_trace(), k.retaped(), bidirectional).unwrap();
        let f = start.elapsed().as_secs_f64();
        let loss = y.sum();
        let start = Instant::now();
        let _grads = loss.backward();
        if run >= 2 {
            forward.push(f);
            backward.push(start.elapsed().as_secs_f64());
        }
    }
    println!(
        "long_conv (lra), batch {batch}, length {len}, {width} channels, {}, {threads} threads: forward {:.2} ms, backward {:.2} ms, load average {}",
        if bidirectional { "bidirectional" } else { "causal" },
        median(forward) * 1e3,
        median(backward) * 1e3,
        common::load_average()
    );
}
