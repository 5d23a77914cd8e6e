//! Acceptance checks: long runs on real data (`cargo test --release -- --ignored`).

mod common;

use std::path::{Path, PathBuf};

use lra::spec::{Budget, ExperimentSpec, Generate, TaskKind};

fn shared(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(name)
}

#[test]
#[ignore = "trains the quickstart for a few minutes"]
fn the_quickstart_learns_listops_above_chance() {
    let text = std::fs::read_to_string("experiments/quickstart.lra").unwrap();
    let spec = lra::check::check_source(
        Path::new("experiments/quickstart.lra"),
        text.clone(),
        &common::context(),
    )
    .spec
    .expect("the quickstart checks clean");
    let tmp = common::TempDir::new("acceptance-quickstart");
    for x in &spec.experiments {
        let summary = common::run_to_end(x, &tmp.0, &text);
        // The most frequent ListOps answers cover about 17% of examples each.
        assert!(
            summary.test_accuracy > 0.25,
            "{}: {}",
            x.name,
            summary.test_accuracy
        );
    }
}

/// `x` shrunk to a few steps on a small slice of the shared data (Path-X is generated).
fn smoke(mut x: ExperimentSpec, data_root: &Path) -> ExperimentSpec {
    x.task.data = match x.task.kind {
        TaskKind::ListOps => shared("listops"),
        TaskKind::Text => shared("imdb"),
        TaskKind::Retrieval => shared("retrieval"),
        TaskKind::Image => shared("cifar10/cifar10-jpeg.tar.xz"),
        TaskKind::Pathfinder => shared("pathfinder32"),
        TaskKind::PathX => {
            x.task.generate = Some(Generate::Pathfinder { n: 24, seed: 0 });
            data_root.join("pathx")
        }
    };
    x.task.train_limit = Some(16);
    for phase in x
        .pretrain
        .iter_mut()
        .map(|p| &mut p.phase)
        .chain([&mut x.finetune])
    {
        phase.budget = Budget::Steps(2);
        phase.batch = 4;
        phase.eval_every = Some(2);
    }
    x
}

/// Runs every experiments/<task>/<kind>-<objective>.lra for two steps on the shared data,
/// evaluating on a few examples, and asserts that none fails.
fn every_experiment_of_kind_runs(kind: &str) {
    let tmp = common::TempDir::new(&format!("acceptance-grid-{kind}"));
    let mut failures = Vec::new();
    for task in [
        "listops",
        "text",
        "retrieval",
        "image",
        "pathfinder",
        "pathx",
    ] {
        for objective in ["scratch", "masked", "causal"] {
            let file = format!("experiments/{task}/{kind}-{objective}.lra");
            let text = std::fs::read_to_string(&file).unwrap();
            let spec = lra::check::check_source(Path::new(&file), text.clone(), &common::context())
                .spec
                .expect("checks clean");
            for x in spec.experiments {
                let x = smoke(x, &tmp.0);
                let never = std::sync::atomic::AtomicBool::new(false);
                let options = lra::train::RunOptions {
                    eval_limit: Some(8),
                    ..common::run_options(&tmp.0.join("runs"), &text)
                };
                if let Err(e) = lra::train::run(&x, &options, &never) {
                    failures.push(format!("{file}: {:?}", miette::Report::new(e)));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
#[ignore = "runs every Transformer experiment of experiments/ for two steps on the shared data"]
fn every_transformer_experiment_runs() {
    every_experiment_of_kind_runs("transformer");
}

#[test]
#[ignore = "runs every S4 experiment of experiments/ for two steps on the shared data"]
fn every_s4_experiment_runs() {
    every_experiment_of_kind_runs("s4");
}

#[test]
#[ignore = "runs every DLR experiment of experiments/ for two steps on the shared data"]
fn every_dlr_experiment_runs() {
    every_experiment_of_kind_runs("dlr");
}
