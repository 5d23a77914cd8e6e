//! Self-pretraining end to end: both objectives, both phases in one run folder, exact weight
//! transfer, reuse of a finished pretraining, and resumption inside the pretraining phase.

mod common;

use std::path::Path;
use std::sync::atomic::AtomicBool;

use common::{experiment, metrics, run_options, run_to_end, TempDir};
use lra::train::{run, RunError, RunOptions};

fn listops(data: &Path, model: &str, pretrain: &str) -> String {
    format!(
        r#"experiment "spt" {{
            threads 2
            task listops {{
                data "{}"
                max_len 64
                generate {{ train 256 val 64 test 64 min_length 8 max_length 40 seed 3 }}
            }}
            model transformer {{ layers 1 d_model 32 heads 2 ffn 64 {model} }}
            pretrain {pretrain}
            finetune {{ steps 16 batch 16 eval_every 8 optimizer adamw {{ lr 3e-3 }} }}
        }}"#,
        data.display()
    )
}

const MASKED: &str =
    "masked { rate 0.15 steps 32 batch 16 eval_every 8 optimizer adamw { lr 3e-3 } }";

fn phase_records(run_dir: &Path, phase: &str, split: &str) -> Vec<lra::train::metrics::Record> {
    metrics(run_dir)
        .into_iter()
        .filter(|r| r.phase == phase && r.split == split)
        .collect()
}

#[test]
fn masked_pretraining_then_fine_tuning_in_one_run_folder() {
    let tmp = TempDir::new("spt-masked");
    let source = listops(&tmp.0.join("data"), "", MASKED);
    let x = experiment(&source);
    let summary = run_to_end(&x, &tmp.0.join("runs"), &source);
    let pretrain = phase_records(&summary.run_dir, "pretrain", "train");
    assert_eq!(pretrain.len(), 4);
    assert!(
        pretrain.last().unwrap().loss < pretrain.first().unwrap().loss,
        "{pretrain:?}"
    );
    let val = phase_records(&summary.run_dir, "pretrain", "val");
    assert!(
        val.iter().all(|r| (0.0..=1.0).contains(&r.accuracy)),
        "masked-token accuracy"
    );
    assert_eq!(phase_records(&summary.run_dir, "finetune", "val").len(), 2);
    let from = summary
        .pretrained_from
        .as_ref()
        .expect("fine-tuned from the pretraining");
    assert!(
        from.ends_with("checkpoints/pretrain-best.safetensors"),
        "{from:?}"
    );

    // Every transferred tensor equals the pretraining checkpoint; the classifier is new.
    let read = |path: &Path| std::fs::read(path).unwrap();
    let pretrained = read(from);
    let pretrained = safetensors::SafeTensors::deserialize(&pretrained).unwrap();
    let mut store = lra::engine::params::ParamStore::new(dfdx::prelude::Cpu::default(), 0);
    let dataset = lra::data::load(
        &lra::train::compile::data_config(&x),
        Some(&summary.run_dir.join("vocab.json")),
    )
    .unwrap();
    let shape = lra::train::compile::DataShape::of(&dataset, lra::train::compile::Role::Finetune);
    lra::train::compile::build_model(&x, shape, &mut store).unwrap();
    let transferred = lra::train::transfer::load_pretrained(from, &mut store).unwrap();
    let mut checked = 0;
    for (id, p) in store.iter() {
        let name = p.name.clone();
        if name.starts_with("head.") {
            assert!(
                pretrained.tensor(&name).is_ok(),
                "the checkpoint has the unused classifier too"
            );
            continue;
        }
        let expected = common::tensor_values(&pretrained.tensor(&name).unwrap());
        assert_eq!(store.values(id), expected, "{name}");
        checked += 1;
    }
    assert_eq!(checked, transferred);
    assert!(pretrained.tensor("pretrain_head.out.weight").is_ok());
}

#[test]
fn causal_pretraining_of_a_causal_transformer() {
    let tmp = TempDir::new("spt-causal");
    let causal = "causal { steps 16 batch 16 eval_every 8 optimizer adamw { lr 3e-3 } }";
    let source = listops(&tmp.0.join("data"), "causal true", causal);
    let x = experiment(&source);
    let summary = run_to_end(&x, &tmp.0.join("runs"), &source);
    assert_eq!(phase_records(&summary.run_dir, "pretrain", "val").len(), 2);
    assert!(summary.pretrained_from.is_some());
}

#[test]
fn a_run_killed_during_pretraining_resumes_to_the_same_result() {
    let tmp = TempDir::new("spt-resume");
    let source = listops(&tmp.0.join("data"), "", MASKED);
    let x = experiment(&source);
    let straight = run_to_end(&x, &tmp.0.join("a"), &source);
    let killed = RunOptions {
        stop_at: Some(11),
        ..run_options(&tmp.0.join("b"), &source)
    };
    let err = run(&x, &killed, &AtomicBool::new(false)).unwrap_err();
    assert!(
        matches!(&err, RunError::Interrupted { phase, step: 11, .. } if phase == "pretrain"),
        "{err:?}"
    );
    let resumed = RunOptions {
        resume: true,
        ..run_options(&tmp.0.join("b"), &source)
    };
    let summary = run(&x, &resumed, &AtomicBool::new(false)).unwrap();
    assert_eq!(metrics(&summary.run_dir), metrics(&straight.run_dir));
}

#[test]
fn fine_tuning_reuses_a_finished_pretraining_and_refuses_a_mismatched_one() {
    let tmp = TempDir::new("spt-reuse");
    let data = tmp.0.join("data");
    let source = listops(&data, "", MASKED);
    let first = run_to_end(&experiment(&source), &tmp.0.join("runs"), &source);

    // Another fine-tuning learning rate from the same pretraining.
    let sweep = source.replace("lr 3e-3 } }\n        }", "lr 1e-3 } }\n        }");
    assert_ne!(sweep, source);
    let options = RunOptions {
        from_pretrained: Some(first.run_dir.clone()),
        ..run_options(&tmp.0.join("runs"), &sweep)
    };
    let second = run(&experiment(&sweep), &options, &AtomicBool::new(false)).unwrap();
    assert_eq!(second.pretrained_from, first.pretrained_from);
    assert!(
        phase_records(&second.run_dir, "pretrain", "train").is_empty(),
        "no second pretraining"
    );

    // A wider model cannot take these weights: the error names the tensor.
    let wider = listops(&data, "", MASKED).replace("d_model 32", "d_model 48");
    let options = RunOptions {
        from_pretrained: Some(first.run_dir.clone()),
        ..run_options(&tmp.0.join("runs"), &wider)
    };
    match run(&experiment(&wider), &options, &AtomicBool::new(false)).unwrap_err() {
        RunError::Transfer { name, detail } => {
            assert_eq!(name, "encoder.weight");
            assert!(
                detail.contains("[19, 32]") && detail.contains("[19, 48]"),
                "{detail}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn continuous_masked_pretraining_with_l1_drops_the_indicator_column() {
    let tmp = TempDir::new("spt-pixels");
    let source = format!(
        r#"experiment "pixels" {{
            threads 2
            task pathfinder {{
                data "{}"
                encoding continuous
                max_len 1024
                generate {{ n 60 seed 1 }}
            }}
            model transformer {{ layers 1 d_model 16 heads 2 ffn 32 }}
            pretrain masked {{ loss l1 steps 4 batch 8 eval_every 2 }}
            finetune {{ steps 2 batch 8 }}
        }}"#,
        tmp.0.join("data").display()
    );
    let x = experiment(&source);
    let summary = run_to_end(&x, &tmp.0.join("runs"), &source);
    let val = phase_records(&summary.run_dir, "pretrain", "val");
    assert!(
        val.iter().all(|r| r.mae.is_some() && r.r2.is_some()),
        "{val:?}"
    );
    let read = |p: &Path| std::fs::read(p).unwrap();
    let pre = read(summary.pretrained_from.as_ref().unwrap());
    let pre = safetensors::SafeTensors::deserialize(&pre).unwrap();
    let fine = read(
        &summary
            .run_dir
            .join("checkpoints/finetune-step2.safetensors"),
    );
    let fine = safetensors::SafeTensors::deserialize(&fine).unwrap();
    assert_eq!(pre.tensor("encoder.weight").unwrap().shape(), &[2, 16]);
    assert_eq!(fine.tensor("encoder.weight").unwrap().shape(), &[1, 16]);
}
