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
//!
//! `benches/compare.sh` runs it beside the reference.

#[path = "common/mod.rs"]
mod common;

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

fn main() {
    lra::engine::allocator::retain_freed_memory();
    let steps = common::number("--steps", 5);
    let threads = common::number("--threads", 2);
    let attention = match common::arg("--attention").as_deref() {
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
    let device = common::arg("--device").unwrap_or_else(|| "cpu".into());
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
        common::arg("--device").unwrap_or_else(|| "cpu".into()),
        model.parameter_count(&store)
    );
    // One untimed step first: it fills the allocation cache and the optimizer state.
    let timings = common::Timings::measure(1, steps, || {
        let logits = model
            .logits::<D, OwnedTape<f32, D>>(&store, &inputs, true)
            .expect("forward");
        let loss = D::cross_entropy(logits, &targets, &[1.0; BATCH]).expect("loss");
        optimise(loss, &mut store, &mut optimizer, 1.0, Some(1.0)).expect("step");
        // The step ends when its last kernel does.
        store.device().synchronize();
    });
    timings.report("transformer", threads, model.parameter_count(&store));
}
