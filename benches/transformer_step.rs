//! One training step (forward, backward, AdamW) of a 4-layer Transformer — d_model 128,
//! 4 heads, FF 512, length 1024, batch 8 — on a rayon pool of 2 threads. Reports the median
//! step time and the peak resident memory (VmHWM). The PyTorch reference of the same model is
//! `benches/reference/transformer_step.py`; figures are in `docs/PERFORMANCE.md`.
//!
//! `cargo bench --bench transformer_step [--features cuda] [-- --steps N --threads T
//!  --attention full|causal --device cpu|cuda|cuda:N]`
//!
//! On a GPU (`--device cuda`, a `--features cuda` build) the step is timed to the end of its
//! last kernel (the device is synchronised before the clock stops), and the memory figure is
//! the host's, not the GPU's.

use std::time::Instant;

use dfdx::prelude::*;
use lra::engine::layers::activation::Activation;
use lra::engine::layers::encoder::{InputKind, Inputs};
use lra::engine::layers::norm::NormKind;
use lra::engine::layers::pool::PoolKind;
use lra::engine::layers::position::PositionKind;
use lra::engine::layers::sequence::NormPlacement;
use lra::engine::models::SequenceClassifier;
use lra::engine::models::{Transformer, TransformerConfig};
use lra::engine::ops::{AttentionKind, EngineDevice};
use lra::engine::optim::{Optimizer, OptimizerConfig};
use lra::engine::params::ParamStore;
use lra::engine::step::optimise;

const BATCH: usize = 8;
const SEQ: usize = 1024;
const VOCAB: usize = 256;
const CLASSES: usize = 10;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Peak resident set size in MiB, from /proc/self/status.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// CPU seconds (user + system, all threads) this process has used, from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() {
    let steps: usize = arg("--steps").and_then(|s| s.parse().ok()).unwrap_or(5);
    let threads: usize = arg("--threads").and_then(|s| s.parse().ok()).unwrap_or(2);
    let attention = match arg("--attention").as_deref() {
        Some("causal") => AttentionKind::Causal,
        _ => AttentionKind::Full,
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .expect("rayon pool");

    let config = TransformerConfig {
        input: InputKind::Tokens { vocab: VOCAB },
        max_len: SEQ,
        d_model: 128,
        layers: 4,
        heads: 4,
        ffn: 512,
        activation: Activation::Gelu,
        dropout: 0.0,
        norm: NormPlacement::Pre,
        norm_kind: NormKind::Layer,
        position: PositionKind::Sinusoidal,
        attention,
        pool: PoolKind::Mean,
        n_classes: CLASSES,
        two_tower: false,
    };
    let device = arg("--device").unwrap_or_else(|| "cpu".into());
    match device.as_str() {
        "cpu" => bench(Cpu::seed_from_u64(0), config, threads, steps),
        cuda if cuda.starts_with("cuda") => bench_cuda(cuda, config, threads, steps),
        other => {
            eprintln!("error: `{other}` is not a device: use cpu, cuda or cuda:N");
            std::process::exit(2)
        }
    }
}

#[cfg(feature = "cuda")]
fn bench_cuda(name: &str, config: TransformerConfig, threads: usize, steps: usize) {
    let ordinal = match name.strip_prefix("cuda:") {
        Some(n) => n.parse().unwrap_or_else(|_| {
            eprintln!("error: `{name}` is not a device: use cuda or cuda:N");
            std::process::exit(2)
        }),
        None => 0,
    };
    match lra::train::cuda::open(ordinal, 0) {
        Ok(dev) => bench(dev, config, threads, steps),
        Err(e) => {
            eprintln!("{:?}", miette::Report::new(e));
            std::process::exit(1)
        }
    }
}

#[cfg(not(feature = "cuda"))]
fn bench_cuda(_: &str, _: TransformerConfig, _: usize, _: usize) {
    eprintln!("error: this bench was built without CUDA: add `--features cuda`");
    std::process::exit(2)
}

fn bench<D: EngineDevice>(dev: D, config: TransformerConfig, threads: usize, steps: usize) {
    let attention = config.attention;
    if !std::env::args().any(|a| a == "--no-cache") {
        dev.enable_cache();
    }
    let mut store = ParamStore::new(dev, 0);
    let model = Transformer::build(config.clone(), &mut store).expect("model");
    let mut optimizer = Optimizer::new(OptimizerConfig::adamw(1e-4), &store).unwrap();

    let tokens: Vec<usize> = (0..BATCH * SEQ).map(|i| (i * 31 + i / 7) % VOCAB).collect();
    let targets: Vec<usize> = (0..BATCH).map(|b| b % CLASSES).collect();
    let lengths = vec![SEQ; BATCH];
    let inputs = Inputs::tokens(&tokens, &lengths);

    println!(
        "lra transformer step on {}: {} parameters, batch {BATCH}, length {SEQ}, {attention:?} attention, {threads} threads",
        arg("--device").unwrap_or_else(|| "cpu".into()),
        model.parameter_count(&store)
    );
    let mut times = Vec::with_capacity(steps);
    let mut cpu_times = Vec::with_capacity(steps);
    // One untimed step first: it fills the allocation cache and the optimizer state.
    for step in 0..=steps {
        let (start, cpu_start) = (Instant::now(), cpu_seconds());
        let logits = model
            .logits::<D, OwnedTape<f32, D>>(&store, &inputs, true)
            .expect("forward");
        let loss = D::cross_entropy(logits, &targets, &[1.0; BATCH]).expect("loss");
        let report = optimise(loss, &mut store, &mut optimizer, 1.0, Some(1.0)).expect("step");
        store.device().synchronize();
        let seconds = start.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu_start;
        println!(
            "step {step}: {seconds:.3} s wall, {cpu:.2} CPU-s, loss {:.4}",
            report.loss
        );
        if step > 0 {
            times.push(seconds);
            cpu_times.push(cpu);
        }
    }
    let median = |mut xs: Vec<f64>| {
        xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
        xs[xs.len() / 2]
    };
    let peak = peak_rss_mib().map_or("unknown".to_string(), |m| format!("{m:.0} MiB"));
    println!(
        "median step: {:.3} s wall, {:.2} CPU-s over {steps} steps; peak memory (VmHWM): {peak}; load average {}",
        median(times),
        median(cpu_times),
        load_average()
    );
}
