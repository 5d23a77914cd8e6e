//! One training step (forward, backward, AdamW) of a 4-layer state-space model, d_model 128,
//! d_state 64, length 1,024, batch 8, on a rayon pool of `--threads` threads (default 2):
//! median step time (wall and process CPU) and peak memory (VmHWM), for S4 (NPLR,
//! HiPPO-LegS), S4D, DLR, LRU, S5 and MEGA (z 64, v 256, 16 EMA dimensions, softmax over the
//! whole sequence, feed-forward 2·d). `benches/reference/<kind>_step.py` are the same models
//! in PyTorch; `benches/compare.sh` runs both sides. Each kind runs in its own process so its
//! peak memory is its own:
//!
//!     cargo bench --bench ssm_step                               # every kind
//!     cargo bench --bench ssm_step -- s4 --threads 1 --steps 5   # one kind
//!     cargo bench --features cuda --bench ssm_step -- --device cuda s4d   # on a GPU
//!
//! On a GPU the step is timed to the end of its last kernel (the device is synchronised before
//! the clock stops), and the memory figure is the host's, not the GPU's.

#[path = "common/mod.rs"]
mod common;

use dfdx::prelude::*;
use lra::engine::layers::encoder::{InputKind, Inputs};
use lra::engine::layers::mega::chunked_attention::AttentionFunction;
use lra::engine::layers::mega::MegaConfig;
use lra::engine::layers::pool::PoolKind;
use lra::engine::layers::sequence::NormPlacement;
use lra::engine::layers::ssm::dlr::DlrConfig;
use lra::engine::layers::ssm::lru::LruConfig;
use lra::engine::layers::ssm::s4::{S4Config, S4Init, S4Mode};
use lra::engine::layers::ssm::s4d::{S4dConfig, S4dInit};
use lra::engine::layers::ssm::s5::S5Config;
use lra::engine::layers::ssm::Activation;
use lra::engine::models::SequenceClassifier;
use lra::engine::models::{SsmConfig, SsmKind, SsmModel};
use lra::engine::ops::EngineDevice;
use lra::engine::optim::{Optimizer, OptimizerConfig};
use lra::engine::params::ParamStore;
use lra::engine::step::optimise;

const LAYERS: usize = 4;
const D_MODEL: usize = 128;
const D_STATE: usize = 64;
const LEN: usize = 1024;
const BATCH: usize = 8;
const VOCAB: usize = 32;
const CLASSES: usize = 10;
const WARMUP: usize = 2;

const KINDS: [&str; 6] = ["s4", "s4d", "dlr", "lru", "s5", "mega"];

fn kind(name: &str) -> SsmKind {
    match name {
        "s4" => SsmKind::S4(S4Config {
            d_state: D_STATE,
            mode: S4Mode::Nplr,
            init: S4Init::Legs,
            dt_min: 1e-3,
            dt_max: 1e-1,
            channels: 1,
            bidirectional: true,
            kernel_len: LEN,
        }),
        "dlr" => SsmKind::Dlr(DlrConfig {
            d_state: D_STATE,
            dt_min: 1e-3,
            dt_max: 1e-1,
            channels: 1,
            bidirectional: true,
        }),
        "s4d" => SsmKind::S4d(S4dConfig {
            d_state: D_STATE,
            init: S4dInit::Lin,
            dt_min: 1e-3,
            dt_max: 1e-1,
            channels: 1,
            bidirectional: true,
        }),
        "lru" => SsmKind::Lru(LruConfig {
            d_state: D_STATE,
            r_min: 0.9,
            r_max: 0.999,
            max_phase: std::f64::consts::TAU,
            bidirectional: true,
        }),
        // The LRA runs' S5: HiPPO-N in 8 blocks, conjugate symmetry.
        "s5" => SsmKind::S5(S5Config {
            d_state: D_STATE,
            blocks: 8,
            conj_sym: true,
            clip_eigs: false,
            dt_min: 1e-3,
            dt_max: 1e-1,
            bidirectional: true,
        }),
        "mega" => SsmKind::Mega(MegaConfig {
            d_attin: 64,
            d_attout: 256,
            ema_dims: 16,
            chunk: None,
            attention: AttentionFunction::Softmax,
            ffn_expand: 2,
            bidirectional: true,
            attention_dropout: 0.0,
            max_len: LEN,
        }),
        other => panic!("unknown kind {other}: one of {KINDS:?}"),
    }
}

/// `--device NAME` from the arguments: cpu (default), cuda or cuda:N.
fn device_arg() -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--device")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| "cpu".into())
}

fn bench(name: &str, threads: usize, steps: usize) {
    match device_arg().as_str() {
        "cpu" => bench_on(Cpu::default(), name, threads, steps),
        cuda if cuda.starts_with("cuda") => bench_cuda(cuda, name, threads, steps),
        other => {
            eprintln!("error: `{other}` is not a device: use cpu, cuda or cuda:N");
            std::process::exit(2)
        }
    }
}

#[cfg(feature = "cuda")]
fn bench_cuda(device: &str, name: &str, threads: usize, steps: usize) {
    let ordinal = match device.strip_prefix("cuda:") {
        Some(n) => n.parse().unwrap_or_else(|_| {
            eprintln!("error: `{device}` is not a device: use cuda or cuda:N");
            std::process::exit(2)
        }),
        None => 0,
    };
    match lra::train::cuda::open(ordinal, 0) {
        Ok(dev) => bench_on(dev, name, threads, steps),
        Err(e) => {
            eprintln!("{:?}", miette::Report::new(e));
            std::process::exit(1)
        }
    }
}

#[cfg(not(feature = "cuda"))]
fn bench_cuda(_: &str, _: &str, _: usize, _: usize) {
    eprintln!("error: this bench was built without CUDA: add `--features cuda`");
    std::process::exit(2)
}

fn bench_on<D: EngineDevice>(dev: D, name: &str, threads: usize, steps: usize) {
    let config = SsmConfig {
        input: InputKind::Tokens { vocab: VOCAB },
        d_model: D_MODEL,
        layers: LAYERS,
        dropout: 0.0,
        norm: NormPlacement::Pre,
        norm_kind: lra::engine::layers::norm::NormKind::Layer,
        pool: PoolKind::Mean,
        n_classes: CLASSES,
        two_tower: false,
        kind: kind(name),
        activation: Activation::Gelu,
        glu: true,
        ssm_lr: 1e-3,
        ssm_weight_decay: 0.0,
    };
    // As `lra run` does (src/train/phase.rs): dfdx recycles its allocations.
    dev.enable_cache();
    let mut store = ParamStore::new(dev, 0);
    let model = SsmModel::build(config, &mut store).unwrap();
    let mut optimizer = Optimizer::new(OptimizerConfig::adamw(1e-3), &store).unwrap();
    let ids: Vec<usize> = (0..BATCH * LEN).map(|i| (i * 7 + i / 13) % VOCAB).collect();
    let labels: Vec<usize> = (0..BATCH).map(|b| b % CLASSES).collect();
    let lengths = vec![LEN; BATCH];
    let inputs = Inputs::tokens(&ids, &lengths);
    let timings = common::Timings::measure(WARMUP, steps, || {
        let logits = model
            .logits::<D, OwnedTape<f32, D>>(&store, &inputs, true)
            .unwrap();
        let loss = D::cross_entropy(logits, &labels, &[1.0; BATCH]).unwrap();
        optimise(loss, &mut store, &mut optimizer, 1.0, None).unwrap();
        // The step ends when its last kernel does.
        store.device().synchronize();
    });
    timings.report(name, threads, store.parameter_count());
}

fn main() {
    lra::engine::allocator::retain_freed_memory();
    let threads = common::number("--threads", 2);
    let steps = common::number("--steps", 10);
    let kinds: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| KINDS.contains(&a.as_str()))
        .collect();
    if kinds.len() == 1 {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .unwrap();
        bench(&kinds[0], threads, steps);
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let all = KINDS.map(String::from);
    for name in if kinds.is_empty() {
        &all[..]
    } else {
        &kinds[..]
    } {
        let status = std::process::Command::new(&exe)
            .args([
                name,
                "--device",
                &device_arg(),
                "--threads",
                &threads.to_string(),
                "--steps",
                &steps.to_string(),
            ])
            .status()
            .unwrap();
        assert!(status.success(), "{name} failed");
    }
}
