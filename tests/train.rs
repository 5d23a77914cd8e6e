//! Training end to end on small generated data: the loss falls, runs are deterministic, a
//! killed run resumes to the same result, and the run folder is complete and readable.

mod common;

use std::path::Path;
use std::sync::atomic::AtomicBool;

use common::{experiment, metrics, run_options, run_to_end, TempDir};
use lra::train::{run, RunError, RunOptions};

/// A tiny ListOps experiment whose data is generated into `data`.
fn tiny(data: &Path, finetune: &str) -> String {
    format!(
        r#"experiment "tiny" {{
            threads 2
            task listops {{
                data "{}"
                max_len 64
                generate {{ train 256 val 64 test 64 min_length 8 max_length 40 seed 3 }}
            }}
            model transformer {{ layers 1 d_model 32 heads 2 ffn 64 }}
            finetune {{ {finetune} }}
        }}"#,
        data.display()
    )
}

const FINETUNE: &str =
    "steps 48 batch 16 eval_every 8 optimizer adamw { lr 3e-3 } schedule constant { warmup 4 }";

#[test]
fn a_tiny_transformer_learns_and_leaves_a_complete_run_folder() {
    let tmp = TempDir::new("learns");
    let source = tiny(&tmp.0.join("data"), FINETUNE);
    let x = experiment(&source);
    let summary = run_to_end(&x, &tmp.0.join("runs"), &source);
    let records = metrics(&summary.run_dir);
    let train: Vec<_> = records.iter().filter(|r| r.split == "train").collect();
    assert_eq!(train.len(), 6);
    assert!(
        train.last().unwrap().loss < train.first().unwrap().loss,
        "training loss should fall: {train:?}"
    );
    assert!(records.iter().any(|r| r.split == "test"));
    for file in [
        "spec.lra",
        "spec.json",
        "vocab.json",
        "metrics.jsonl",
        "summary.json",
    ] {
        assert!(summary.run_dir.join(file).exists(), "missing {file}");
    }
    assert_eq!(summary.test_examples, 64);
    assert!((0.0..=1.0).contains(&summary.test_accuracy));

    // Checkpoints are plain safetensors with the documented dotted names.
    let bytes = std::fs::read(
        summary
            .run_dir
            .join("checkpoints/finetune-best.safetensors"),
    )
    .unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let names: Vec<String> = tensors.names().into_iter().cloned().collect();
    for name in [
        "encoder.weight",
        "layers.0.attn.q.weight",
        "final_norm.weight",
        "head.out.weight",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
    }

    // A finished run is not trained again.
    let again = run_to_end(&x, &tmp.0.join("runs"), &source);
    assert_eq!(again, summary);
}

#[test]
fn runs_are_deterministic_and_resume_to_the_same_result() {
    let tmp = TempDir::new("resume");
    let source = tiny(&tmp.0.join("data"), FINETUNE);
    let x = experiment(&source);
    let straight = run_to_end(&x, &tmp.0.join("a"), &source);
    let again = run_to_end(&x, &tmp.0.join("b"), &source);
    assert_eq!(metrics(&straight.run_dir), metrics(&again.run_dir));

    // Killed between evaluations (step 13 of 48), then resumed.
    let killed = RunOptions {
        stop_at: Some(13),
        ..run_options(&tmp.0.join("c"), &source)
    };
    let err = run(&x, &killed, &AtomicBool::new(false)).unwrap_err();
    assert!(
        matches!(err, RunError::Interrupted { step: 13, .. }),
        "{err:?}"
    );
    let resumed = RunOptions {
        resume: true,
        ..run_options(&tmp.0.join("c"), &source)
    };
    let summary = run(&x, &resumed, &AtomicBool::new(false)).unwrap();
    assert_eq!(metrics(&summary.run_dir), metrics(&straight.run_dir));
    assert_eq!(summary.test_accuracy, straight.test_accuracy);
}

#[test]
fn missing_data_names_the_folder_and_the_command() {
    let tmp = TempDir::new("missing");
    let source = format!(
        "experiment \"m\" {{ task listops {{ data \"{}\" }} model transformer {{ layers 1 d_model 8 heads 2 }} finetune {{ steps 1 }} }}",
        tmp.0.join("nothing-here").display()
    );
    let x = experiment(&source);
    let err = run(
        &x,
        &run_options(&tmp.0.join("runs"), &source),
        &AtomicBool::new(false),
    )
    .unwrap_err();
    let message = format!("{:?}", miette::Report::new(err));
    assert!(message.contains("nothing-here"), "{message}");
    assert!(message.contains("lra data gen listops"), "{message}");
}

#[test]
fn a_diverging_run_stops_naming_the_step_and_keeps_its_last_good_checkpoint() {
    let tmp = TempDir::new("nan");
    // Decoupled weight decay of lr·λ = 100 multiplies every weight by −99 per step: the
    // parameters overflow to infinity within a few dozen steps.
    let source = tiny(
        &tmp.0.join("data"),
        "steps 200 batch 16 eval_every 2 optimizer adamw { lr 10 weight_decay 10 }",
    );
    let err = run(
        &experiment(&source),
        &run_options(&tmp.0.join("runs"), &source),
        &AtomicBool::new(false),
    )
    .unwrap_err();
    let (step, checkpoint) = match &err {
        RunError::Diverged {
            step, checkpoint, ..
        } => (*step, checkpoint.clone()),
        other => panic!("{other:?}"),
    };
    assert!(step > 2 && step < 200, "{step}");
    // The last checkpoint is from an earlier evaluation, and its parameters are finite.
    let saved: u64 = checkpoint
        .rsplit("-step")
        .next()
        .and_then(|s| s.strip_suffix(".safetensors"))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{checkpoint}"));
    assert!(saved < step && saved.is_multiple_of(2), "{saved} vs {step}");
    let bytes = std::fs::read(&checkpoint).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    for (name, view) in tensors.tensors() {
        if name.starts_with("optim.") {
            continue;
        }
        let finite = common::tensor_values(&view).iter().all(|v| v.is_finite());
        assert!(finite, "{name} is not finite in the kept checkpoint");
    }
    let message = format!("{:?}", miette::Report::new(err));
    assert!(message.contains(&format!("step {step}")), "{message}");
    assert!(message.contains("last good checkpoint"), "{message}");
}

#[test]
fn world_errors_say_what_is_wrong() {
    let tmp = TempDir::new("world-errors");
    let source = tiny(&tmp.0.join("data"), "steps 4 batch 16 eval_every 2");
    let x = experiment(&source);
    let never = AtomicBool::new(false);

    // CUDA asked of a build without it.
    let cuda = RunOptions {
        device: Some(lra::spec::Device::Cuda(0)),
        ..run_options(&tmp.0.join("cuda"), &source)
    };
    if !cfg!(feature = "cuda") {
        assert!(matches!(
            run(&x, &cuda, &never).unwrap_err(),
            RunError::NoCuda
        ));
    }

    // --from-pretrained on a run folder without a finished pretraining.
    let scratch = run_to_end(&x, &tmp.0.join("runs"), &source);
    let reuse = RunOptions {
        from_pretrained: Some(scratch.run_dir.clone()),
        ..run_options(&tmp.0.join("runs"), &source)
    };
    let err = run(&x, &reuse, &never).unwrap_err();
    assert!(
        matches!(&err, RunError::NoPretraining { path } if *path == scratch.run_dir),
        "{err:?}"
    );

    // --resume of a folder whose recorded spec is not this one.
    let killed = RunOptions {
        stop_at: Some(1),
        ..run_options(&tmp.0.join("other"), &source)
    };
    assert!(matches!(
        run(&x, &killed, &never).unwrap_err(),
        RunError::Interrupted { .. }
    ));
    let dir = lra::train::rundir::RunDir::new(&tmp.0.join("other"), &x, None);
    std::fs::write(dir.file("spec.json"), "{}").unwrap();
    let resumed = RunOptions {
        resume: true,
        ..run_options(&tmp.0.join("other"), &source)
    };
    let err = run(&x, &resumed, &never).unwrap_err();
    assert!(matches!(err, RunError::ResumeMismatch { .. }), "{err:?}");
    // The message itself, not the rendered report: that wraps with the temporary path's length.
    let message = err.to_string();
    assert!(
        message.contains("holds a different experiment"),
        "{message}"
    );
}

#[test]
fn runs_in_flight_on_one_task_generate_its_folder_once() {
    let tmp = TempDir::new("generate-once");
    let data = tmp.0.join("data");
    let x = experiment(&format!(
        r#"experiment "x" {{
               task listops {{ data "{}" max_len 48 generate {{ train 64 val 16 test 16 min_length 8 max_length 30 }} }}
               model transformer {{ layers 1 d_model 16 heads 2 ffn 32 }}
               finetune {{ steps 1 batch 8 }}
           }}"#,
        data.display()
    ));
    let generated: Vec<bool> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| lra::train::prepare::ensure_data(&x).unwrap()))
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert_eq!(generated.iter().filter(|&&g| g).count(), 1, "{generated:?}");
    for split in ["train", "val", "test"] {
        let file = data.join(format!("basic_{split}.tsv"));
        let lines = std::fs::read_to_string(&file).unwrap().lines().count();
        assert!(lines > 1, "{} has {lines} lines", file.display());
    }
}
