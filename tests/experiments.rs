//! Every experiment the project ships checks clean.

mod common;

use std::path::{Path, PathBuf};

fn lra_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("experiments/ exists") {
        let path = entry.expect("readable entry").path();
        if path.is_dir() {
            lra_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "lra") {
            out.push(path);
        }
    }
}

pub fn experiment_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    lra_files(Path::new("experiments"), &mut files);
    files.sort();
    files
}

#[test]
fn every_experiment_file_checks_clean() {
    let context = common::paper_machine_context();
    let files = experiment_files();
    assert!(
        files.len() > 120,
        "expected the paper's grid, found {}",
        files.len()
    );
    for file in &files {
        let checked = lra::check::check(file, &context).expect("readable");
        // Preset libraries hold no experiment, and `check` says so.
        let expected: &[&str] = if file.starts_with("experiments/common") {
            &["lra::no-experiment"]
        } else {
            &[]
        };
        let codes: Vec<&str> = checked.diagnostics.iter().map(|d| d.code).collect();
        assert!(
            codes == expected,
            "{} has diagnostics:\n{}",
            file.display(),
            common::rendered(&checked)
        );
    }
}

#[test]
fn the_grid_covers_every_task_model_and_objective() {
    let files = experiment_files();
    // The experiment folders are named after the task kinds.
    for &task in lra::spec::TaskKind::NAMES {
        for model in ["transformer", "s4", "s4d", "dlr", "s5", "lru", "mega"] {
            for objective in ["scratch", "masked", "causal"] {
                let name = format!("experiments/{task}/{model}-{objective}.lra");
                assert!(
                    files.iter().any(|f| f == Path::new(&name)),
                    "missing {name}"
                );
            }
        }
    }
}

#[test]
fn clean_fixtures_resolve_presets_across_imports() {
    let checked = common::check_file(Path::new("tests/fixtures/ok/imports-and-presets.lra"));
    assert!(
        checked.diagnostics.is_empty(),
        "{}",
        common::rendered(&checked)
    );
    let spec = checked.spec.expect("clean spec");
    assert_eq!(spec.experiments.len(), 2);
    let b = &spec.experiments[1];
    assert_eq!(b.model.d_model, 256);
    assert_eq!(b.model.layers, 2);
    assert_eq!(b.finetune.batch, 16);
    assert_eq!(b.model.dropout, 0.1);
}
