//! `lra batch`: expansion (count, order, names), shared pretraining, running every point,
//! failure isolation, resumption after `kill -9`, and the lock of a point run elsewhere. Each
//! test writes its own batch file and data under a temporary folder.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{context, lra, TempDir};
use lra::batch::plan::{plan, Plan};

const SPECS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/batches/specs/tiny.lra");

/// A batch file in `dir` over the tiny specs, its data and runs under `dir` too.
fn batch_file(dir: &Path, name: &str, body: &str) -> PathBuf {
    batch_file_setting(dir, name, "", body)
}

/// The same with more `set` lines (`  path: value\n`).
fn batch_file_setting(dir: &Path, name: &str, set: &str, body: &str) -> PathBuf {
    let text = format!(
        "version: 1\nname: {name}\nspecs: [\"{SPECS}\"]\nset:\n  task.data: \"{}\"\n{set}{body}",
        dir.join("data").display()
    );
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn planned(path: &Path, out: &Path) -> Plan {
    let planned = plan(path, &context(), Some(out)).unwrap();
    assert!(
        planned.plan.is_some(),
        "{}",
        planned.diagnostics.render(false)
    );
    planned.plan.unwrap()
}

#[test]
fn points_are_the_product_less_the_exclusions_in_a_stable_order() {
    let tmp = TempDir::new("batch-expand");
    let body = "seeds: [0, 1]\nsweep:\n  finetune.optimizer.lr: [1e-3, 3e-3]\n  model.layers: [1, 2]\nexclude:\n  - { finetune.optimizer.lr: 3e-3, seed: 1 }\n  - { model.layers: 2, finetune.optimizer.lr: 1e-3 }\n";
    let path = batch_file(&tmp.0, "expand", body);
    let first = planned(&path, &tmp.0.join("runs"));
    // 3 experiments × 2 rates × 2 depths × 2 seeds = 24; the first exclusion drops the 3 × 2
    // points of rate 3e-3 with seed 1, the second the 3 × 2 points of depth 2 at rate 1e-3.
    assert_eq!(first.points.len(), 24 - 6 - 6);
    let labels: Vec<String> = first
        .points
        .iter()
        .map(|p| format!("{} | {}", p.experiment, p.label))
        .collect();
    assert_eq!(
        &labels[..4],
        [
            "tiny/transformer | seed 0, finetune.optimizer.lr 1e-3, model.layers 1",
            "tiny/transformer | seed 1, finetune.optimizer.lr 1e-3, model.layers 1",
            "tiny/transformer | seed 0, finetune.optimizer.lr 3e-3, model.layers 1",
            "tiny/transformer | seed 0, finetune.optimizer.lr 3e-3, model.layers 2",
        ]
    );
    let mut folders: Vec<&PathBuf> = first.points.iter().map(|p| &p.run_dir).collect();
    folders.sort();
    folders.dedup();
    assert_eq!(
        folders.len(),
        first.points.len(),
        "every point has its own folder"
    );
    let again = planned(&path, &tmp.0.join("runs"));
    let same: Vec<(&str, &PathBuf)> = again
        .points
        .iter()
        .map(|p| (p.label.as_str(), &p.run_dir))
        .collect();
    let before: Vec<(&str, &PathBuf)> = first
        .points
        .iter()
        .map(|p| (p.label.as_str(), &p.run_dir))
        .collect();
    assert_eq!(
        same, before,
        "planning again gives the same points and folders"
    );
    assert!(first
        .points
        .iter()
        .all(|p| p.spec.seed == p.label[5..6].parse::<u64>().unwrap()));
}

#[test]
fn zipped_axes_advance_together() {
    let tmp = TempDir::new("batch-zip");
    let body = "only: [\"tiny/s4d\"]\nzip:\n  - { finetune.batch: [4, 8, 16], finetune.optimizer.lr: [1e-3, 2e-3, 4e-3] }\n";
    let path = batch_file(&tmp.0, "zip", body);
    let plan = planned(&path, &tmp.0.join("runs"));
    let pairs: Vec<(usize, f64)> = plan
        .points
        .iter()
        .map(|p| (p.spec.finetune.batch, p.spec.finetune.optimizer.lr()))
        .collect();
    assert_eq!(pairs, [(4, 1e-3), (8, 2e-3), (16, 4e-3)]);
}

#[test]
fn points_differing_only_in_finetuning_share_one_pretraining() {
    let tmp = TempDir::new("batch-share");
    let body = "only: [\"tiny/transformer-masked\"]\nseeds: [0, 1]\nsweep:\n  finetune.optimizer.lr: [1e-3, 3e-3]\n  pretrain: [keep, none]\n";
    let path = batch_file(&tmp.0, "share", body);
    let plan = planned(&path, &tmp.0.join("runs"));
    assert_eq!(plan.points.len(), 8);
    let leaders: Vec<usize> = plan
        .points
        .iter()
        .filter(|p| p.spec.pretrain.is_some() && p.pretrained_by.is_none())
        .map(|p| p.index)
        .collect();
    assert_eq!(leaders.len(), 2, "one pretraining per seed");
    for p in &plan.points {
        match (&p.spec.pretrain, p.pretrained_by) {
            (None, by) => assert_eq!(by, None, "a scratch point pretrains nothing"),
            (Some(_), Some(leader)) => {
                let l = &plan.points[leader];
                assert_eq!(l.spec.seed, p.spec.seed);
                assert_ne!(l.run_dir, p.run_dir);
            }
            (Some(_), None) => assert!(leaders.contains(&p.index)),
        }
    }
}

/// Test accuracy of every point, in plan order.
fn accuracies(plan: &Plan) -> Vec<f64> {
    plan.points
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p.run_dir.join("summary.json"))
                .unwrap_or_else(|e| panic!("{}: {e}", p.run_dir.display()));
            serde_json::from_str::<serde_json::Value>(&text).unwrap()["test_accuracy"]
                .as_f64()
                .unwrap()
        })
        .collect()
}

const RUN_BODY: &str =
    "seeds: [0, 1]\nsweep:\n  pretrain: [keep, none]\nexecutor: { kind: local, jobs: 2 }\n";

#[test]
fn a_batch_runs_every_point_once_and_a_second_run_trains_nothing() {
    let tmp = TempDir::new("batch-run");
    let path = batch_file(&tmp.0, "run", RUN_BODY);
    let out = tmp.0.join("runs");
    let out_arg = out.display().to_string();
    let args = [
        "batch",
        "run",
        path.to_str().unwrap(),
        "--out",
        &out_arg,
        "--threads",
        "2",
    ];
    let (code, stdout, stderr) = lra(&args);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let plan = planned(&path, &out);
    assert!(plan.points.len() >= 6, "{}", plan.points.len());
    assert!(accuracies(&plan).iter().all(|a| (0.0..=1.0).contains(a)));
    assert!(
        stdout.contains(&format!(
            "{0} of {0} points done, 0 failed",
            plan.points.len()
        )),
        "{stdout}"
    );
    assert!(
        plan.batch_dir.join("plan.json").is_file(),
        "the plan is frozen"
    );

    let (code, stdout, _) = lra(&["batch", "status", path.to_str().unwrap(), "--out", &out_arg]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains(&format!("{} done", plan.points.len())),
        "{stdout}"
    );
    let (code, _, stderr) = lra(&args);
    assert_eq!(code, 0);
    assert!(
        !stderr.contains("fine-tuning from"),
        "nothing is trained again: {stderr}"
    );
}

#[test]
fn lra_report_of_a_batch_reports_its_points_only() {
    let tmp = TempDir::new("batch-report");
    let out = tmp.0.join("runs");
    let set = format!("  out: \"{}\"\n", out.display());
    let path = batch_file_setting(
        &tmp.0,
        "reported",
        &set,
        "only: [\"tiny/s4d\"]\nseeds: [0, 1]\n",
    );
    // A run of the same runs folder that is not in the batch.
    let other = batch_file_setting(&tmp.0, "other", &set, "only: [\"tiny/transformer\"]\n");
    for file in [&path, &other] {
        let (code, stdout, stderr) = lra(&["batch", "run", file.to_str().unwrap()]);
        assert_eq!(code, 0, "{stdout}\n{stderr}");
    }
    let (code, stdout, stderr) = lra(&["report", path.to_str().unwrap(), "--format", "csv"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("s4d"), "{stdout}");
    assert!(
        !stdout.contains("transformer"),
        "only the batch's runs: {stdout}"
    );
}

#[test]
fn a_failing_point_fails_alone_and_is_named() {
    let tmp = TempDir::new("batch-fail");
    // The second data folder holds a damaged file: its points fail when they load it.
    let bad = tmp.0.join("bad-data");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        bad.join("basic_train.tsv"),
        "Source\tTarget\nnot a tree\tx\n",
    )
    .unwrap();
    let body = format!(
        "only: [\"tiny/s4d\", \"tiny/transformer\"]\nsweep:\n  task.data: [\"{}\", \"{}\"]\n",
        tmp.0.join("data").display(),
        bad.display()
    );
    let text = format!("version: 1\nname: fail\nspecs: [\"{SPECS}\"]\n{body}");
    let path = tmp.0.join("fail.yaml");
    std::fs::write(&path, text).unwrap();
    let out = tmp.0.join("runs");
    let out_arg = out.display().to_string();
    let (code, stdout, stderr) = lra(&["batch", "run", path.to_str().unwrap(), "--out", &out_arg]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stdout.contains("2 of 4 points done, 2 failed"), "{stdout}");
    assert!(
        stdout.contains("bad-data"),
        "each failure is named: {stdout}"
    );
    let (_, status, _) = lra(&["batch", "status", path.to_str().unwrap(), "--out", &out_arg]);
    assert!(status.contains("2 done, 2 failed"), "{status}");
    // Failed points are left alone unless asked.
    let (code, _, stderr) = lra(&["batch", "run", path.to_str().unwrap(), "--out", &out_arg]);
    assert_eq!(code, 1);
    assert!(stderr.contains("--retry-failed"), "{stderr}");
}

#[test]
fn a_batch_killed_with_sigkill_resumes_to_the_results_of_an_uninterrupted_one() {
    let tmp = TempDir::new("batch-kill");
    let path = batch_file_setting(&tmp.0, "kill", "  finetune.steps: 24\n", RUN_BODY);
    let whole = tmp.0.join("whole");
    let killed = tmp.0.join("killed");
    let (code, stdout, stderr) = lra(&[
        "batch",
        "run",
        path.to_str().unwrap(),
        "--out",
        whole.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lra"))
        .args([
            "batch",
            "run",
            path.to_str().unwrap(),
            "--out",
            killed.to_str().unwrap(),
            "-q",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once some point has written metrics, so it dies in the middle of training.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(120) {
        let any_metrics = walk(&killed).iter().any(|p| p.ends_with("metrics.jsonl"));
        if any_metrics {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let (code, stdout, stderr) = lra(&[
        "batch",
        "run",
        path.to_str().unwrap(),
        "--out",
        killed.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let a = accuracies(&planned(&path, &whole));
    let b = accuracies(&planned(&path, &killed));
    assert_eq!(a, b, "same results with and without the kill");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn a_point_running_elsewhere_is_left_alone() {
    let tmp = TempDir::new("batch-lock");
    let path = batch_file(&tmp.0, "lock", "only: [\"tiny/s4d\"]\nseeds: [0, 1]\n");
    let out = tmp.0.join("runs");
    let plan = planned(&path, &out);
    let held = lra::rundir::RunLock::acquire(&plan.points[0].run_dir).unwrap();
    let (code, stdout, stderr) = lra(&[
        "batch",
        "run",
        path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("running in process {}", std::process::id())),
        "{stdout}"
    );
    let (_, status, _) = lra(&[
        "batch",
        "status",
        path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(status.contains("1 done, 1 running"), "{status}");
    drop(held);
}
