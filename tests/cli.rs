//! The command line as a user meets it: exit codes and what is printed.

mod common;

use common::lra;

#[test]
fn check_exits_zero_on_a_clean_file_and_prints_the_cost() {
    let (code, stdout, _) = lra(&[
        "check",
        "--no-data",
        "experiments/listops/transformer-masked.lra",
    ]);
    assert_eq!(code, 0);
    assert!(stdout.contains("parameters"), "{stdout}");
    assert!(stdout.contains("FLOPs/step"), "{stdout}");
    assert!(stdout.contains("peak memory"), "{stdout}");
}

#[test]
fn check_exits_one_on_errors_and_shows_them() {
    let (code, _, stderr) = lra(&["check", "tests/fixtures/bad/several-mistakes.lra"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("lra::unknown-field"), "{stderr}");
    assert!(stderr.contains("did you mean `dropout`?"), "{stderr}");
}

#[test]
fn check_exits_two_on_usage_errors() {
    assert_eq!(lra(&["check", "no/such/file.lra"]).0, 2);
    assert_eq!(lra(&["check"]).0, 2);
    assert_eq!(lra(&["frobnicate"]).0, 2);
}

#[test]
fn warnings_never_fail_a_check() {
    let (code, _, stderr) = lra(&["check", "tests/fixtures/bad/rule-window-covers-input.lra"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("lra::rule::window-covers-input"));
}

#[test]
fn explain_shows_every_value_with_its_origin() {
    let (code, stdout, _) = lra(&["explain", "tests/fixtures/ok/imports-and-presets.lra"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("preset `small`, tests/fixtures/ok/models.lra:1"),
        "{stdout}"
    );
    assert!(stdout.contains("task preset `image`"), "{stdout}");
    assert!(stdout.contains("default"), "{stdout}");
    let (code, json, _) = lra(&[
        "explain",
        "--json",
        "tests/fixtures/ok/imports-and-presets.lra",
    ]);
    assert_eq!(code, 0);
    let value: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(value["spec"]["experiments"][1]["model"]["d_model"], 256);
    assert!(value["origins"].as_array().is_some_and(|o| !o.is_empty()));
}

/// A fresh folder holding `two.lra`: two tiny ListOps experiments (scratch and masked SPT)
/// on a set generated into the folder on first use.
fn two_experiments(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("lra-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("two.lra");
    let data = dir.join("data");
    std::fs::write(
        &spec,
        format!(
            r#"task tiny = listops {{
                data "{}"
                max_len 48
                generate {{ train 64 val 16 test 16 min_length 8 max_length 30 }}
            }}
            model small = transformer {{ layers 1 d_model 16 heads 2 ffn 32 }}
            experiment "a" {{ task tiny model small finetune {{ steps 2 batch 8 }} }}
            experiment "b" {{ task tiny model small pretrain masked {{ steps 2 batch 8 }} finetune {{ steps 2 batch 8 }} }}"#,
            data.display()
        ),
    )
    .unwrap();
    (dir, spec)
}

#[test]
fn run_trains_every_experiment_and_ends_with_a_table() {
    let (dir, spec) = two_experiments("run");
    let out = dir.join("runs");
    let (code, stdout, stderr) = lra(&[
        "run",
        spec.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--threads",
        "2",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("| experiment | model | self-pretraining | test accuracy | minutes |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| a | transformer 1×16 | none |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| b | transformer 1×16 | masked (0.1) |"),
        "{stdout}"
    );
    assert!(stderr.contains("generated"), "{stderr}");
    let (code, _, stderr) = lra(&["run", spec.to_str().unwrap(), "--only", "c"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no experiment named \"c\""), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn side_by_side_runs_match_runs_one_after_the_other() {
    let (dir, spec) = two_experiments("jobs");
    let test_results = |out: &std::path::Path| -> Vec<(f64, f64)> {
        ["a", "b"]
            .iter()
            .map(|name| {
                let run = std::fs::read_dir(out.join(name)).unwrap().next().unwrap();
                let summary: serde_json::Value = serde_json::from_str(
                    &std::fs::read_to_string(run.unwrap().path().join("summary.json")).unwrap(),
                )
                .unwrap();
                (
                    summary["test_accuracy"].as_f64().unwrap(),
                    summary["test_loss"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    let spec = spec.to_str().unwrap();
    let run_into = |out: &std::path::Path, threads: &str, jobs: &str| {
        let out = out.to_str().unwrap();
        let (code, stdout, stderr) = lra(&[
            "run",
            spec,
            "--threads",
            threads,
            "--jobs",
            jobs,
            "--out",
            out,
        ]);
        assert_eq!(code, 0, "{stderr}");
        stdout
    };
    let one_by_one = dir.join("one-by-one");
    run_into(&one_by_one, "1", "1");
    let side_by_side = dir.join("side-by-side");
    let stdout = run_into(&side_by_side, "2", "2");
    // Both rows, in the file's order whichever finished first.
    let a = stdout.find("| a | transformer").expect("row a");
    let b = stdout.find("| b | transformer").expect("row b");
    assert!(a < b, "{stdout}");
    // One thread per run either way, so the same sums in the same order.
    assert_eq!(test_results(&one_by_one), test_results(&side_by_side));
    let (code, _, stderr) = lra(&["run", spec, "--jobs", "0"]);
    assert_eq!(code, 2, "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[test]
fn check_refuses_a_device_as_a_spec_file_without_reading_it() {
    let (code, _, stderr) = lra(&["check", "--no-data", "/dev/zero"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("not a regular file"), "{stderr}");
}

#[test]
fn a_file_without_experiments_is_a_warning_for_check_and_an_error_for_run() {
    let dir = std::env::temp_dir().join(format!("lra-cli-presets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("presets.lra");
    std::fs::write(&file, "model small = transformer { layers 1 }\n").unwrap();
    let path = file.to_str().unwrap();
    let (code, _, stderr) = lra(&["check", "--no-data", path]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("holds no experiment"), "{stderr}");
    let (code, _, stderr) = lra(&["run", "--quiet", path]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("nothing to run"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn run_refuses_a_model_far_beyond_the_machine_before_allocating() {
    let started = std::time::Instant::now();
    let (code, stdout, stderr) = lra(&["run", "--quiet", "tests/fixtures/bad/rule-memory.lra"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("lra::rule::memory"), "{stderr}");
    assert!(started.elapsed().as_secs() < 30);
}

/// A CPU-only build asked for a GPU fails at once (nothing generated or trained), saying the
/// build is the reason, not the machine.
#[cfg(not(feature = "cuda"))]
#[test]
fn run_on_cuda_in_a_cpu_only_build_exits_one_and_says_so() {
    let (dir, spec) = two_experiments("cuda");
    let out = dir.join("runs");
    let (code, _, stderr) = lra(&[
        "run",
        spec.to_str().unwrap(),
        "--only",
        "a",
        "--device",
        "cuda",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("lra::run::no_cuda"), "{stderr}");
    assert!(stderr.contains("CPU-only build"), "{stderr}");
    assert!(stderr.contains("--features cuda"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !dir.join("data").exists(),
        "nothing is generated before the device is opened"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same spec on a spec-level `device cuda`: `lra check` warns that this machine has no
/// GPU (and that the build has no CUDA), and still exits 0.
#[test]
fn check_warns_when_a_spec_asks_for_a_gpu_the_machine_lacks() {
    if std::process::Command::new("nvidia-smi").output().is_ok() {
        return; // a machine with a driver: whether it has GPU 0 is its own business
    }
    let (code, _, stderr) = lra(&["check", "tests/fixtures/bad/rule-no-gpu.lra"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("lra::rule::no-gpu"), "{stderr}");
    assert!(stderr.contains("this machine has no GPU"), "{stderr}");
}

#[test]
fn the_paper_grid_plan_sets_the_sources_epoch_times_beside_its_estimate() {
    let (code, stdout, stderr) = lra(&["batch", "plan", "experiments/batches/paper.yaml"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("GPU-hours on Slurm"), "{stdout}");
    assert!(
        stdout.contains("one fine-tuning epoch on one GPU"),
        "{stdout}"
    );
    // S4 on LRA Image: the S4 repository's 2 minutes per epoch on an A100, and one row per
    // task and model however many points share them.
    let image_s4: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("| image | s4 |"))
        .collect();
    assert_eq!(image_s4.len(), 1, "{stdout}");
    assert!(image_s4[0].contains("2 min (A100)"), "{stdout}");
    assert!(stdout
        .lines()
        .any(|l| l.starts_with("| pathx | s4 |") && l.contains("56 min (A100)")));
}
